"""One JSON-RPC 2.0 call to a node, for every client in the project.

Two transports, one behaviour. By default the call goes through the process's pooled httpx
client (:mod:`.httpclient`), which keeps connections alive for callers that poll a chain many
times a second. ``pooled=False`` sends it over a plain :mod:`http.client` connection instead:
for the chain launcher, which is forked once per chain from a zygote that never imports httpx,
so that a chain start pays neither the import nor a client (with its CA bundle) per fork.

An error reply raises :class:`RpcReplyError` (a ``RuntimeError`` whose text is the node's message).
Transport failures propagate as the transport raises them: ``httpx.HTTPError`` when pooled,
``OSError`` or ``http.client.HTTPException`` when not; a reply that is not JSON raises
``ValueError``. Callers turn these into their own error types.
"""

from __future__ import annotations

import http.client
import json
from typing import Any
from urllib.parse import urlsplit


class RpcReplyError(RuntimeError):
    """The node answered the call with a JSON-RPC error object (the client's side of what
    :class:`labs.minichain.rpc.RpcError` is on the server's)."""

    def __init__(self, error: Any) -> None:
        message = error.get("message", str(error)) if isinstance(error, dict) else str(error)
        super().__init__(message)
        self.error = error
        self.code = error.get("code") if isinstance(error, dict) else None


def call(
    url: str, method: str, params: list | None = None, timeout: float = 5.0, *, pooled: bool = True
) -> Any:
    """Call ``method`` on the node at ``url`` and return its result (see the module docstring)."""
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params or []}
    if pooled:
        from .httpclient import client

        reply = client().post(url, json=body, timeout=timeout).json()
    else:
        reply = _post_plain(url, json.dumps(body), timeout)
    if "error" in reply:
        raise RpcReplyError(reply["error"])
    return reply.get("result")


def _post_plain(url: str, body: str, timeout: float) -> Any:
    parts = urlsplit(url)
    if not parts.hostname:
        raise ValueError(f"no host in the URL {url!r}")
    conn = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=timeout)
    try:
        conn.request("POST", parts.path or "/", body, {"Content-Type": "application/json"})
        return json.loads(conn.getresponse().read())
    finally:
        conn.close()
