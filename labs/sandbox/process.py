"""The embedded default backend: each learner's validators are local processes on loopback.

One launcher process per chain (``labs.sandbox.launcher network``) imports minichain once and forks
one child per validator, so a 4-validator chain costs about one import's worth of memory. The chain
folder lives under ``state_dir/<env_id>/``; ports are picked free at every start (several chains and
other programs share this machine). There is no isolation between learners beyond what the OS gives
local users: this backend is for one machine, one developer or a small trusted cohort. Use the
``docker`` backend for real learners.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from traitlets import Float

from . import launcher
from .backend import Backend, BackendError
from .spec import LabSpec


def _alive_launcher(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    zombie = stat.rsplit(")", 1)[-1].split()[0] == "Z"
    return b"labs.sandbox.launcher" in cmdline and not zombie


class ProcessBackend(Backend):
    """Validators as local processes (see the module docstring)."""

    name = "process"

    start_timeout = Float(60.0, help="Seconds to wait for every validator to answer.").tag(
        config=True
    )

    def _root(self, env_id: str) -> Path:
        return self.state_path / env_id

    def _pid(self, env_id: str) -> int | None:
        with contextlib.suppress(OSError, ValueError):
            return int((self._root(env_id) / "launcher.pid").read_text())
        return None

    def exists(self, env_id: str) -> bool:
        return (self._root(env_id) / "chain" / "genesis.json").exists()

    def is_running(self, env_id: str) -> bool:
        return _alive_launcher(self._pid(env_id))

    def _urls(self, env_id: str) -> list[str]:
        return launcher.local_urls(self._root(env_id) / "chain")

    def start(self, env_id: str, learner: str, spec: LabSpec) -> list[str]:
        from labs.minichain.netconfig import NetworkConfig
        from labs.minichain.network import assign_ports

        if spec.chain is None:
            raise BackendError(f"lab {spec.id} has no [chain] table: it needs no environment")
        root = self._root(env_id)
        data = root / "chain"
        if self.is_running(env_id):
            urls = self._urls(env_id)
            launcher.wait_answering(urls, self.start_timeout)
            return urls
        root.mkdir(parents=True, exist_ok=True)
        c = spec.chain
        launcher.init_chain(data, c.validators, c.consensus, c.identity, fixed_ports=False)
        cfg = NetworkConfig.load(data)
        for node in cfg.nodes:
            node.pid = None
        assign_ports(cfg)
        cfg.save()
        log = open(root / "launcher.log", "ab")  # noqa: SIM115 - handed to the child
        proc = subprocess.Popen(
            [sys.executable, "-m", "labs.sandbox.launcher", "network", "--data", str(data)]
            + ["--listen", "127.0.0.1"],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env=dict(os.environ, PYTHONUNBUFFERED="1"),
        )
        log.close()
        (root / "launcher.pid").write_text(str(proc.pid))
        urls = self._urls(env_id)
        try:
            launcher.wait_answering(urls, self.start_timeout)
        except launcher.LaunchError as exc:
            self.stop(env_id)
            tail = (root / "launcher.log").read_text(errors="replace").strip().splitlines()[-3:]
            raise BackendError(f"{env_id}: {exc}: {' | '.join(tail)}") from None
        return urls

    def info(self, env_id: str) -> dict[str, Any]:
        data = self._root(env_id) / "chain"
        return launcher.info(data, self._urls(env_id) if self.is_running(env_id) else [])

    def preload(self, env_id: str, items: list[dict[str, Any]]) -> dict[str, Any]:
        data = self._root(env_id) / "chain"
        try:
            return launcher.preload(data, items, self._urls(env_id)[0])
        except launcher.LaunchError as exc:
            raise BackendError(f"{env_id}: {exc}") from None

    def stop(self, env_id: str) -> bool:
        pid = self._pid(env_id)
        if not _alive_launcher(pid):
            return False
        os.kill(pid, signal.SIGTERM)  # type: ignore[arg-type]
        deadline = time.monotonic() + 10
        while _alive_launcher(pid) and time.monotonic() < deadline:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)  # type: ignore[arg-type]
            time.sleep(0.02)
        if _alive_launcher(pid):
            os.killpg(pid, signal.SIGKILL)  # type: ignore[arg-type]
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)  # type: ignore[arg-type]
        return True

    def destroy(self, env_id: str) -> None:
        self.stop(env_id)
        shutil.rmtree(self._root(env_id), ignore_errors=True)

    def pids(self, env_id: str) -> list[int]:
        """The launcher and its validator children (for memory measurements)."""
        pid = self._pid(env_id)
        if not _alive_launcher(pid):
            return []
        kids = []
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{pid}/task").iterdir():
                text = (task / "children").read_text().split()
                kids.extend(int(k) for k in text)
        return [pid, *kids]  # type: ignore[list-item]


def _dump(obj: Any) -> str:
    return json.dumps(obj)
