"""Each learner's server on an origin of its own, academy and the hub on theirs.

Whatever a learner's server answers is the learner's to choose (their code runs in it). Were it on
academy's origin, a page from it opened by staff (an instructor looking at a learner's work) could
read academy's answers and post to academy with the staff member's cookie. JupyterHub's
``subdomain_host`` serves learner NAME's server at ``NAME.<hub host>`` instead: another origin,
which the browser keeps from reading academy's answers, and whose posts academy's Origin check
refuses. academy, a hub service, stays on the hub's own host (:func:`subdomain_hook`), so its
URLs do not change.

The embedded platform on a loopback address uses ``localhost`` as the hub's host: browsers send
``localhost`` and every ``*.localhost`` name to loopback without asking DNS (RFC 6761), so the
subdomains work with nothing set up. Python's resolver does not do this for ``*.localhost``
(glibc asks DNS), so Python clients of the embedded platform (tests, benchmarks) go through
:class:`LoopbackNames`, which does it the way a browser does. A hub on another address needs a
host name whose subdomains resolve to it (``ACADEMY_HUB_DOMAIN``, wildcard DNS).
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import httpx

if TYPE_CHECKING:
    from academy.settings import Settings

#: the hub's host name when it listens on loopback: its subdomains need no DNS in a browser
LOOPBACK_DOMAIN = "localhost"


def subdomain_hook(name: str, domain: str, kind: str) -> str:
    """JupyterHub's ``subdomain_hook``: users get JupyterHub's own (``idna``) subdomains; services
    (academy) stay on the hub's host, where their pages and their OAuth callback always were."""
    from jupyterhub.utils import subdomain_hook_idna

    if kind == "service":
        return domain
    return str(subdomain_hook_idna(name, domain, kind))


def learner_subdomains(public_url: str, setting: str) -> str:
    """``JupyterHub.subdomain_host`` for a production hub (compose and Kubernetes alike): the
    public URL, refused when its host cannot have subdomains (none, or an IP address), rather
    than serving learners' servers on academy's origin. ``setting`` names where the URL was set."""
    host = urlsplit(public_url).hostname or ""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if host:
            return public_url
    raise ValueError(
        f"{setting}={public_url!r}: learners' servers are served from subdomains of its host, "
        "so it must be a host name with a wildcard DNS record (*.NAME), not an address"
    )


def _is_loopback(ip: str) -> bool:
    if ip == "localhost":
        return True
    try:
        return ipaddress.ip_address(ip).is_loopback
    except ValueError:
        return False


def hub_domain(settings: Settings) -> str:
    """The hub's host name, below which every learner's server gets its own.

    An IP address has no subdomains: a hub that listens on a non-loopback address must be told a
    name (with a wildcard DNS record) rather than put learners' servers on academy's origin.
    """
    if settings.hub_domain:
        return settings.hub_domain.strip().strip(".").lower()
    if _is_loopback(settings.hub_ip):
        return LOOPBACK_DOMAIN
    raise ValueError(
        f"the hub listens on {settings.hub_ip}, which has no subdomains for learners' servers: "
        "set ACADEMY_HUB_DOMAIN to a host name whose subdomains resolve to this machine "
        "(a wildcard DNS record, *.NAME), or keep ACADEMY_HUB_IP on a loopback address"
    )


def learner_origin(hub_url: str, name: str) -> str:
    """Where ``name``'s server lives, given the hub's public URL (``scheme://host:port``)."""
    parts = urlsplit(hub_url)
    host = subdomain_hook(name, parts.hostname or "", "user")
    return f"{parts.scheme}://{host}" + (f":{parts.port}" if parts.port else "")


def _to_loopback(request: httpx.Request) -> httpx.Request:
    """The same request sent to 127.0.0.1 when its host is below ``localhost``; the Host header
    (made from the original URL) still names the learner's server for the proxy."""
    host = request.url.host
    if not host.endswith("." + LOOPBACK_DOMAIN):
        return request
    return httpx.Request(
        request.method,
        request.url.copy_with(host="127.0.0.1"),
        headers=request.headers,
        stream=request.stream,
        extensions=request.extensions,
    )


class LoopbackNames(httpx.HTTPTransport):
    """An httpx transport that resolves ``*.localhost`` to loopback, as browsers do.

    The client keeps its cookies and redirects by the names it asked for: only the connection
    goes to 127.0.0.1.
    """

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return super().handle_request(_to_loopback(request))


class AsyncLoopbackNames(httpx.AsyncHTTPTransport):
    """:class:`LoopbackNames` for ``httpx.AsyncClient``."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await super().handle_async_request(_to_loopback(request))
