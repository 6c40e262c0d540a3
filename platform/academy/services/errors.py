"""Errors the services raise; the API turns each into one clear HTTP answer."""

from __future__ import annotations

from typing import TypeVar

T = TypeVar("T")


class AcademyError(Exception):
    """A request that cannot be done as asked; ``status`` is the HTTP status it maps to."""

    status = 400

    def __init__(self, message: str, *, detail: object | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail


class NotFound(AcademyError):
    status = 404


class Forbidden(AcademyError):
    status = 403


class Unauthorized(AcademyError):
    status = 401


class Conflict(AcademyError):
    status = 409


class Invalid(AcademyError):
    status = 422


class TooLarge(AcademyError):
    status = 413


class Unavailable(AcademyError):
    """Something academy depends on (JupyterHub) cannot be reached; the client may retry."""

    status = 503


def found(row: T | None, message: str) -> T:
    """``row``, or NotFound(message) when the lookup that fetched it came back empty: every
    "no such thing" answer of a lookup by name or slug reads the same way."""
    if row is None:
        raise NotFound(message)
    return row
