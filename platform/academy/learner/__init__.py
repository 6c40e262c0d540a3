"""The learner's side of academy inside their Jupyter server: the server extension behind the
JupyterLab Academy menu and Submit button (see ``server_extension``)."""

from __future__ import annotations

from typing import Any


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    return [{"module": "academy.learner.server_extension"}]
