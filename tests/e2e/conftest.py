"""End-to-end fixtures: the whole platform behind a real JupyterHub (see ``hubharness``)."""

from tests.e2e.hubharness import platform_hub  # noqa: F401  (pytest fixture)
