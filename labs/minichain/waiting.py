"""Waiting for something to become true: a chain answering, a process gone, a page served.

Stdlib only, like the rest of what the node image may import. Everything in the project that
polls a condition until a deadline goes through :func:`wait_until`, so each caller states only
what it waits for, how long, and what to say when it does not happen.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(
    condition: Callable[[], T],
    timeout: float,
    *,
    interval: float = 0.1,
    message: str | Callable[[], str] = "",
    ignore: tuple[type[BaseException], ...] = (),
) -> T:
    """Call ``condition`` every ``interval`` seconds until it returns something true; return that.

    After ``timeout`` seconds raise :class:`TimeoutError` with ``message`` (a callable is asked
    only then, so the message can say what was still missing). The condition is always tried
    once more at the deadline, so a timeout of 0 means "try once". An exception from
    ``condition`` ends the wait at once: that is how a waiter gives up early, for instance when
    the process it waits for has died. Exceptions listed in ``ignore`` count as "not yet"
    instead (a server that does not accept connections yet).
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = condition()
        except ignore:
            pass
        else:
            if value:
                return value
        left = deadline - time.monotonic()
        if left <= 0:
            text = message() if callable(message) else message
            raise TimeoutError(text or f"not done within {timeout:g} s")
        time.sleep(min(interval, left))
