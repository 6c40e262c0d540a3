"""Security headers on every response academy sends, and ``Secure`` cookies under https.

- ``Content-Security-Policy``: scripts only from academy itself plus the one inline script the
  verify page has (pinned by its hash), no plugins, no ``<base>`` tricks, forms post only to
  academy, and no framing (``frame-ancestors 'none'``);
- ``X-Content-Type-Options: nosniff``: a stored file is never sniffed into HTML or script;
- ``X-Frame-Options`` for browsers without ``frame-ancestors``;
- ``Referrer-Policy: same-origin``: share links (``/verify?share=...``) do not leak to other sites.

Two kinds of response get their own policy: the graded feedback (HTML built from a learner's
submission) runs sandboxed, with no script at all, and only academy's own pages may frame it; the
API docs page loads Swagger UI from its CDN.
"""

from __future__ import annotations

import base64
import hashlib
import re
from typing import Any

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .pages.verify import DROP_SCRIPT

_SCRIPT_HASH = base64.b64encode(hashlib.sha256(DROP_SCRIPT.encode()).digest()).decode()

PAGE_POLICY = (
    "default-src 'self'; "
    f"script-src 'self' 'sha256-{_SCRIPT_HASH}'; "
    "style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
FEEDBACK_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
    "sandbox; base-uri 'none'; form-action 'none'; frame-ancestors 'self'"
)
DOCS_POLICY = (
    "default-src 'self'; "
    "script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    "img-src 'self' data: https://fastapi.tiangolo.com; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)
_FEEDBACK = re.compile(r"/api/submissions/\d+/feedback$")


def headers_for(path: str, base: str) -> dict[str, str]:
    if _FEEDBACK.search(path):
        policy, frame = FEEDBACK_POLICY, "SAMEORIGIN"
    elif path == f"{base}/docs":
        policy, frame = DOCS_POLICY, "DENY"
    else:
        policy, frame = PAGE_POLICY, "DENY"
    return {
        "Content-Security-Policy": policy,
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": frame,
        "Referrer-Policy": "same-origin",
    }


class SecurityHeaders:
    """ASGI middleware: the headers above on every HTTP response (a route may set its own)."""

    def __init__(self, app: ASGIApp, base: str = "") -> None:
        self.app = app
        self.base = base

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = headers_for(scope.get("path", ""), self.base)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in extra.items():
                    if name not in headers:
                        headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)


def cookie_secure(request: Any, public_url: str) -> bool:
    """Whether cookies get ``Secure``: the request came over https (directly, or through a proxy
    uvicorn trusts), or academy's public address is https."""
    return request.url.scheme == "https" or public_url.startswith("https://")
