"""Secrets at rest: API tokens are stored as SHA-256 (they are long random strings), passwords
as scrypt with a per-password salt (the stdlib has it, no native extension needed).

scrypt is slow on purpose (~50-200 ms of CPU and 16 MiB here), which is what makes a stolen hash
costly to attack, and also what makes a burst of logins queue. Two things keep logins quick
without weakening it: at most one scrypt per CPU runs at a time (more only fight for the same
cores and memory bandwidth, and starve the requests around them), and a correct password, once
checked, is remembered for a while as an HMAC under a key that lives only in this process, so a
user who logs in again (another tab, an expired hub cookie) costs a hash lookup. Wrong passwords
are never remembered: each one pays the full scrypt.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import threading
import time

TOKEN_PREFIX = "aca_"
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}
_SCRYPT_SLOTS = threading.BoundedSemaphore(max(1, os.cpu_count() or 1))
VERIFIED_SECONDS = 600.0
_VERIFIED_MAX = 20_000
_verified_key = secrets.token_bytes(32)
_verified: dict[bytes, float] = {}  # HMAC(key, stored hash, password) -> when it expires
_verified_lock = threading.Lock()


def new_token() -> str:
    """A fresh API token: recognisable prefix + 32 random bytes."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = _scrypt(password, salt, 32)
    return "scrypt$" + base64.b64encode(salt).decode() + "$" + base64.b64encode(digest).decode()


def _scrypt(password: str, salt: bytes, dklen: int) -> bytes:
    with _SCRYPT_SLOTS:
        return hashlib.scrypt(
            password.encode("utf-8", "surrogatepass"), salt=salt, dklen=dklen, **_SCRYPT
        )


def _verified_id(password: str, stored: str, who: str) -> bytes:
    message = "\0".join((who, stored, password)).encode("utf-8", "surrogatepass")
    return hmac.new(_verified_key, message, hashlib.sha256).digest()


_DUMMY_SALT = secrets.token_bytes(16)


def burn_password_check(password: str) -> None:
    """The work of one wrong-password check, for a login whose user does not exist (or has no
    password): without it that answer comes back at once, and the delay tells which names do."""
    _scrypt(password, _DUMMY_SALT, 32)


def verify_password(password: str, stored: str | None, who: str = "") -> bool:
    """Constant-time check; a user without a password never matches. ``who`` (the user name)
    keeps one user's remembered login from vouching for another's, even with equal hashes."""
    if not stored or not stored.startswith("scrypt$"):
        return False
    try:
        _, salt_b64, digest_b64 = stored.split("$")
        salt, digest = base64.b64decode(salt_b64), base64.b64decode(digest_b64)
    except ValueError:
        return False
    key = _verified_id(password, stored, who)
    now = time.monotonic()
    with _verified_lock:
        if _verified.get(key, 0.0) > now:
            return True
    if not hmac.compare_digest(_scrypt(password, salt, len(digest)), digest):
        return False
    with _verified_lock:
        if len(_verified) >= _VERIFIED_MAX:
            for old in [k for k, until in _verified.items() if until <= now] or list(_verified):
                del _verified[old]
        _verified[key] = now + VERIFIED_SECONDS
    return True
