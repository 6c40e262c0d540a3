"""Fetching JSON from an address a credential names, within bounds.

A credential is data from whoever made it: the addresses it names (its issuer's DID document, a
status list) may point at a port on a private network, at a server that answers one byte a minute,
or at an endless body. Only ``academy verify`` on the command line fetches them (academy's public
page and API use what academy holds), and it does so here:

- one deadline for the whole fetch (resolving, connecting, every read, every redirect), not a
  timeout per read, so a slow-drip server cannot hold the caller longer than the deadline;
- at most ``max_bytes`` of body;
- at most ``max_redirects`` redirects, each new address checked like the first;
- only ``http``/``https``, and never an address in a private, loopback, link-local, multicast or
  otherwise non-global range unless ``allow_private`` is set. The host is resolved once and the
  connection goes to the address that was checked, so a name that resolves differently the
  second time (DNS rebinding) cannot slip past the check.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

from .jcs import CanonicalizationError, loads

DEFAULT_DEADLINE = 10.0
DEFAULT_MAX_BYTES = 1024 * 1024
DEFAULT_MAX_REDIRECTS = 3
_CHUNK = 16 * 1024


class FetchError(Exception):
    """The address could not be fetched within the bounds, or is not allowed."""


@dataclass(frozen=True)
class FetchLimits:
    deadline: float = DEFAULT_DEADLINE
    max_bytes: int = DEFAULT_MAX_BYTES
    max_redirects: int = DEFAULT_MAX_REDIRECTS
    allow_private: bool = False


def address_allowed(ip: str, allow_private: bool = False) -> bool:
    """Whether a connection to ``ip`` is allowed: only globally routable unicast addresses,
    unless private ones are explicitly allowed."""
    addr = ipaddress.ip_address(ip.split("%", 1)[0])
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    if allow_private:
        return not addr.is_multicast and not addr.is_unspecified
    return addr.is_global and not addr.is_multicast


class _Deadline:
    def __init__(self, seconds: float) -> None:
        self.end = time.monotonic() + seconds

    def left(self) -> float:
        left = self.end - time.monotonic()
        if left <= 0:
            raise FetchError("took longer than the deadline")
        return left


def _resolve(host: str, port: int, limits: FetchLimits, deadline: _Deadline) -> str:
    deadline.left()
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise FetchError(f"cannot resolve {host}") from exc
    addresses = [str(info[4][0]) for info in infos]
    if not addresses:
        raise FetchError(f"cannot resolve {host}")
    refused = [a for a in addresses if not address_allowed(a, limits.allow_private)]
    if refused:
        raise FetchError(
            f"{host} resolves to a private, loopback or link-local address: refused "
            "(allow it explicitly to fetch from your own network)"
        )
    return addresses[0]


class _PinnedHTTPS(http.client.HTTPSConnection):
    """HTTPS to a checked address, with the certificate checked for the host name."""

    def __init__(self, host: str, ip: str, port: int, timeout: float) -> None:
        self._tls = ssl.create_default_context()
        super().__init__(host, port, timeout=timeout, context=self._tls)
        self._ip = ip

    def connect(self) -> None:
        sock = socket.create_connection((self._ip, self.port), self.timeout)
        self.sock = self._tls.wrap_socket(sock, server_hostname=self.host)


class _PinnedHTTP(http.client.HTTPConnection):
    def __init__(self, host: str, ip: str, port: int, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._ip = ip

    def connect(self) -> None:
        self.sock = socket.create_connection((self._ip, self.port), self.timeout)


def _one(url: str, limits: FetchLimits, deadline: _Deadline) -> tuple[int, str | None, bytes]:
    """(status, Location, body) of one GET, never past the deadline or the size cap."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise FetchError("only http and https addresses are fetched")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise FetchError("malformed address") from exc
    ip = _resolve(parts.hostname, port, limits, deadline)
    cls = _PinnedHTTPS if parts.scheme == "https" else _PinnedHTTP
    conn = cls(parts.hostname, ip, port, deadline.left())
    try:
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        conn.request("GET", path, headers={"Accept": "application/json", "Connection": "close"})
        if conn.sock is not None:
            conn.sock.settimeout(deadline.left())
        response = conn.getresponse()
        if response.status in (301, 302, 303, 307, 308):
            return response.status, response.getheader("Location"), b""
        length = response.getheader("Content-Length")
        if length and length.isdigit() and int(length) > limits.max_bytes:
            raise FetchError(f"the answer is larger than {limits.max_bytes} bytes")
        body = bytearray()
        while True:
            if conn.sock is not None:
                conn.sock.settimeout(deadline.left())
            chunk = response.read1(_CHUNK) if hasattr(response, "read1") else response.read(_CHUNK)
            if not chunk:
                break
            body += chunk
            if len(body) > limits.max_bytes:
                raise FetchError(f"the answer is larger than {limits.max_bytes} bytes")
            deadline.left()
        return response.status, None, bytes(body)
    except FetchError:
        raise
    except TimeoutError as exc:
        raise FetchError("took longer than the deadline") from exc
    except (OSError, http.client.HTTPException, ssl.SSLError) as exc:
        raise FetchError(f"connection failed ({type(exc).__name__})") from exc
    finally:
        conn.close()


def fetch_json(url: str, limits: FetchLimits | None = None) -> Any:
    """The JSON at ``url``, fetched within ``limits``; :class:`FetchError` otherwise."""
    limits = limits or FetchLimits()
    deadline = _Deadline(limits.deadline)
    for _hop in range(limits.max_redirects + 1):
        status, location, body = _one(url, limits, deadline)
        if location is None:
            if not 200 <= status < 300:
                raise FetchError(f"answered HTTP {status}")
            try:
                return loads(body, max_bytes=limits.max_bytes)
            except CanonicalizationError as exc:
                raise FetchError(f"the answer is not usable JSON: {exc}") from exc
        url = urljoin(url, location)
    raise FetchError(f"more than {limits.max_redirects} redirects")
