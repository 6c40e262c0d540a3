"""Password checks stay scrypt-strong yet cheap on a second login: a correct password is
remembered (as a keyed hash, in memory only) and a wrong one never is."""

from __future__ import annotations

import time

from academy.services import security


def test_a_correct_password_is_checked_once_then_remembered_and_a_wrong_one_never() -> None:
    stored = security.hash_password("right horse battery")
    calls: list[int] = []
    real = security._scrypt

    def counting(password: str, salt: bytes, dklen: int) -> bytes:
        calls.append(1)
        return real(password, salt, dklen)

    security._scrypt = counting
    try:
        assert security.verify_password("right horse battery", stored)
        t0 = time.perf_counter()
        assert security.verify_password("right horse battery", stored)
        remembered = time.perf_counter() - t0
        assert len(calls) == 1 and remembered < 0.005  # a lookup, not a scrypt
        for _ in range(2):  # wrong passwords pay the full scrypt every time
            assert not security.verify_password("wrong horse battery", stored)
        assert len(calls) == 3
        # a new password (new salt and hash) is not vouched for by the old one's memory
        changed = security.hash_password("right horse battery")
        calls.clear()
        assert security.verify_password("right horse battery", changed)
        assert len(calls) == 1
        # another user with the very same hash (one shared digest) pays their own scrypt
        assert security.verify_password("right horse battery", changed, "someone-else")
        assert len(calls) == 2
        assert not security.verify_password("right horse battery", None)
        assert not security.verify_password("right horse battery", "md5$x$y")
    finally:
        security._scrypt = real
