"""HTTP routers of academy.  ``ROUTERS`` is the registry ``create_app`` mounts under
``{base_path}/api``; an area adds its module and one line here (e.g. credentials)."""

from __future__ import annotations

import importlib

from fastapi import APIRouter

ROUTER_MODULES = [
    "academy.api.learner",
    "academy.api.labs",
    "academy.api.teaching",
    "academy.api.admin",
    "academy.api.internal",
    "academy.api.credentials",
]


def routers() -> list[APIRouter]:
    """Every registered router (modules imported lazily so an app build stays cheap)."""
    return [importlib.import_module(name).router for name in ROUTER_MODULES]
