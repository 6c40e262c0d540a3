"""Server-rendered pages of academy (HTML, English and Simplified Chinese): the learner's own
pages, the instructor dashboard, the public certificate verification page and the chain explorer."""

from __future__ import annotations

from fastapi import APIRouter


def routers() -> list[APIRouter]:
    """Every page router, mounted by ``create_app`` under the base path."""
    from .dashboard import router as dashboard
    from .explorer import router as explorer
    from .learner import router as learner
    from .verify import router as verify

    return [learner, dashboard, verify, explorer]
