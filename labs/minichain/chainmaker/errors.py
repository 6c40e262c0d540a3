"""The refusal every ChainMaker module raises: one of ChainMaker's status codes and why.

Kept apart so that the modules which decide (executor, configuration updates, certificates,
queries) raise the same thing without importing one another.
"""

from __future__ import annotations

from . import pb


def code(name: str) -> int:
    return int(pb.TxStatusCode.Value(name))


class RequestRefused(ValueError):
    """A request refused at the door (never enters a block): a ChainMaker status code and why."""

    def __init__(self, status: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code(status)
