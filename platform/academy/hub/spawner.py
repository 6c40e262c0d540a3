"""The embedded spawner: each learner's JupyterLab as a local process with its own folder.

It adds to JupyterHub's ``SimpleLocalProcessSpawner`` what a learner's server needs from the
platform: how to reach academy (``ACADEMY_URL`` and ``ACADEMY_TOKEN``, the server's own hub token,
which academy accepts because the hub grants it ``access:services!service=academy``), the RPC URLs
of the learner's own lab chain (``ACADEMY_RPC_URL``/``ACADEMY_RPC_URLS``), and the academy
JupyterLab extension (the Fetch/Submit menu and toolbar button, and its server side).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import httpx
from jupyterhub.spawner import SimpleLocalProcessSpawner
from traitlets import Any as AnyTrait
from traitlets import Unicode, default

import academy

#: where JupyterLab finds the built frontend extension (``labextensions/<name>`` below it)
LABEXT_DATA = Path(academy.__file__).parent / "labext" / "share"
#: enables the academy server extension (``academy.learner``) in every learner's server
JUPYTER_CONFIG = Path(academy.__file__).parent / "learner" / "jupyter-config"


class AcademySpawner(SimpleLocalProcessSpawner):
    """A learner's JupyterLab on this machine, started with academy's environment."""

    academy_url = Unicode(
        config=True,
        help="academy's URL as the learner's server reaches it, base path included "
        "(e.g. http://127.0.0.1:8000/services/academy)",
    )
    academy_internal_url = Unicode(
        config=True, help="academy as the hub reaches it directly, base path included"
    )
    service_token = Unicode(config=True, help="token academy accepts from the hub (scope `hub`)")
    lab_env = AnyTrait(
        None,
        allow_none=True,
        config=True,
        help="async callable(username) -> dict of env vars for the learner's lab chain "
        "(ACADEMY_RPC_URL, ACADEMY_RPC_URLS, ...); None: no chain",
    )

    @default("cmd")
    def _cmd(self) -> list[str]:
        # the hub's own interpreter, so the learner's server has the same pinned packages
        return [sys.executable, "-m", "jupyterhub.singleuser"]

    @default("default_url")
    def _default_url(self) -> str:
        return "/lab"

    @default("args")
    def _args(self) -> list[str]:
        # Jupyter Server refuses to start as root unless told; the hub then only sees a bare 500
        return ["--allow-root"] if os.geteuid() == 0 else []

    def get_env(self) -> dict[str, Any]:
        env = super().get_env()
        env["ACADEMY_URL"] = self.academy_url
        env["ACADEMY_TOKEN"] = getattr(self, "_academy_token", "") or self.api_token
        env["JUPYTER_PATH"] = os.pathsep.join(
            p for p in (str(LABEXT_DATA), env.get("JUPYTER_PATH", "")) if p
        )
        env["JUPYTER_CONFIG_PATH"] = os.pathsep.join(
            p for p in (str(JUPYTER_CONFIG), env.get("JUPYTER_CONFIG_PATH", "")) if p
        )
        env.update(getattr(self, "_lab_vars", {}))
        return env

    async def start(self) -> Any:
        """Ensure the learner's lab chain first, so the server starts with its RPC URLs."""
        self._lab_vars: dict[str, str] = {}
        self._academy_token = await self._learner_token()
        if self.lab_env is not None:
            try:
                self._lab_vars = dict(await self.lab_env(self.user.name))
            except Exception:
                # a learner without a chain can still read, fetch and submit
                self.log.exception(
                    "no lab chain for %s; starting the server without one", self.user.name
                )
        return await super().start()

    async def _learner_token(self) -> str:
        """A token academy issues for this learner (scope ``learn``); empty if academy is away."""
        if not (self.academy_internal_url and self.service_token):
            return ""
        url = f"{self.academy_internal_url.rstrip('/')}/api/internal/users/{self.user.name}/token"
        try:
            async with httpx.AsyncClient(timeout=15.0) as http:
                reply = await http.post(
                    url, headers={"Authorization": f"Bearer {self.service_token}"}
                )
            reply.raise_for_status()
            return str(reply.json()["token"])
        except (httpx.HTTPError, KeyError, ValueError) as exc:
            self.log.warning(
                "academy gave no token for %s (%s): using the hub token", self.user.name, exc
            )
            return ""
