"""The embedded default backend: each learner's validators are local processes on loopback.

One launcher process per chain (``labs.sandbox.launcher network``) imports minichain once and forks
one child per validator, so a 4-validator chain costs about one import's worth of memory. The chain
folder lives under ``state_dir/<env_id>/``; ports are picked free at every start (several chains and
other programs share this machine). The chains themselves are not isolated: any program of this
machine's own reaches every chain on loopback. What keeps learners off each other's chains is the
embedded hub's jail around each learner's server (``academy.hub.jail``: its network reaches only
the ports of that learner's running chains). The ``docker`` backend gives each learner a network
of their own instead.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, TypeGuard

from traitlets import Bool, Float

from labs.minichain import procfs
from labs.minichain.waiting import wait_until

from . import launcher
from .backend import Backend, BackendError
from .forkserver import answers
from .spec import LabSpec


def _alive_launcher(pid: int | None) -> TypeGuard[int]:
    """True when ``pid`` is a live chain launcher (so, for the type checker, a pid and not None)."""
    if not pid:
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    st = procfs.stat(pid)
    return b"labs.sandbox.launcher" in cmdline and st is not None and st[0] != "Z"


def _read_pid(path: Path) -> int | None:
    with contextlib.suppress(OSError, ValueError):
        return int(path.read_text())
    return None


def _pause(pid: int | None) -> None:
    """Stop a chain's launcher and validators (one process group) where they stand."""
    if _alive_launcher(pid):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGSTOP)

        def stopped() -> bool:
            st = procfs.stat(pid)
            return st is not None and st[0] == "T"

        with contextlib.suppress(TimeoutError):  # the signal lands asynchronously: see it land
            wait_until(stopped, 2, interval=0.01)


def _resume(pid: int | None) -> None:
    if pid:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGCONT)


class ProcessBackend(Backend):
    """Validators as local processes (see the module docstring)."""

    name = "process"

    start_timeout = Float(60.0, help="Seconds to wait for every validator to answer.").tag(
        config=True
    )

    use_zygote = Bool(
        True,
        help="Start chains from one pre-imported process (shared pages, no import per start); "
        "False: a fresh interpreter per chain.",
    ).tag(config=True)

    _zygote_proc: subprocess.Popen | None = None
    _draining = False

    def _zygote(self) -> Path:
        """The zygote's socket, starting the zygote when none answers there."""
        sock = (self.state_path / "zygote.sock").resolve()
        self.state_path.mkdir(parents=True, exist_ok=True)
        if answers(sock):
            return sock
        log = open(self.state_path / "zygote.log", "ab")  # noqa: SIM115 - handed to the child
        self._zygote_proc = subprocess.Popen(
            [sys.executable, "-m", "labs.sandbox.launcher", "zygote", "--socket", str(sock)],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env=dict(os.environ, PYTHONUNBUFFERED="1"),
        )
        log.close()
        (self.state_path / "zygote.pid").write_text(str(self._zygote_proc.pid))
        proc = self._zygote_proc

        def failed() -> BackendError:
            tail = (self.state_path / "zygote.log").read_text(errors="replace")[-300:]
            return BackendError(f"the chain zygote did not start: {tail}")

        def started() -> bool:
            if answers(sock):
                return True
            if proc.poll() is not None:
                raise failed()
            return False

        try:
            wait_until(started, self.start_timeout, interval=0.05)
        except TimeoutError:
            raise failed() from None
        return sock

    def close(self) -> None:
        """Stop the zygote (chains it started keep running; ``stop`` ends those; ``drain_pool``
        ends the unclaimed pool chains)."""
        with contextlib.suppress(OSError, ValueError):
            pid = int((self.state_path / "zygote.pid").read_text())
            if _alive_launcher(pid):
                os.kill(pid, signal.SIGTERM)
                if self._zygote_proc is not None and self._zygote_proc.pid == pid:
                    self._zygote_proc.wait(10)

    def _root(self, env_id: str) -> Path:
        return self.state_path / env_id

    def _pid(self, env_id: str) -> int | None:
        return _read_pid(self._root(env_id) / "launcher.pid")

    def exists(self, env_id: str) -> bool:
        return (self._root(env_id) / "chain" / "genesis.json").exists()

    def is_running(self, env_id: str) -> bool:
        return _alive_launcher(self._pid(env_id))

    def _urls(self, env_id: str) -> list[str]:
        return launcher.local_urls(self._root(env_id) / "chain")

    def start(self, env_id: str, learner: str, spec: LabSpec) -> list[str]:
        if spec.chain is None:
            raise BackendError(f"lab {spec.id} has no [chain] table: it needs no environment")
        root = self._root(env_id)
        if self.is_running(env_id):
            urls = self._urls(env_id)
            launcher.wait_answering(urls, self.start_timeout)
            return urls
        if not self.exists(env_id) and self._claim(root, spec):
            return self._urls(env_id)
        return self._launch(root, spec)

    def _launch(self, root: Path, spec: LabSpec) -> list[str]:
        """Create (first time) and start the chain in ``root``; wait until it answers."""
        from labs.minichain.genesis import load_genesis
        from labs.minichain.netconfig import NetworkConfig
        from labs.minichain.network import assign_ports

        assert spec.chain is not None
        data = root / "chain"
        root.mkdir(parents=True, exist_ok=True)
        c = spec.chain
        launcher.init_chain(
            data, c.validators, c.consensus, c.identity, fixed_ports=False, params=c.params
        )
        cfg = NetworkConfig.load(data)
        for node in cfg.nodes:
            node.pid = None
        assign_ports(cfg)
        cfg.save()
        chainmaker = load_genesis(cfg.genesis_path).chainmaker
        if chainmaker is not None:  # the SDK's config names the gRPC ports just picked
            cfg.write_sdk_config(chainmaker)
        if self.use_zygote:
            args = (data.resolve(), "127.0.0.1", (root / "launcher.log").resolve())
            try:
                pid = launcher.zygote_request(self._zygote(), *args)
            except OSError:  # it idled out between our check and the request: once more
                pid = launcher.zygote_request(self._zygote(), *args)
        else:
            log = open(root / "launcher.log", "ab")  # noqa: SIM115 - handed to the child
            pid = subprocess.Popen(
                [sys.executable, "-m", "labs.sandbox.launcher", "network", "--data", str(data)]
                + ["--listen", "127.0.0.1"],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                env=dict(os.environ, PYTHONUNBUFFERED="1"),
            ).pid
            log.close()
        (root / "launcher.pid").write_text(str(pid))
        urls = launcher.local_urls(data)
        try:
            launcher.wait_answering(urls, self.start_timeout)
        except launcher.LaunchError as exc:
            self._stop_pid(pid)
            tail = (root / "launcher.log").read_text(errors="replace").strip().splitlines()[-3:]
            raise BackendError(f"{root.name}: {exc}: {' | '.join(tail)}") from None
        return urls

    def sdk_config(self, env_id: str) -> str | None:
        path = self._root(env_id) / "chain" / "chainmaker" / "sdk_config.yml"
        return str(path.resolve()) if path.is_file() else None

    # -- the warm pool ------------------------------------------------------------------------
    def _pool(self) -> Path:
        return self.state_path / "_pool"

    def _claim(self, root: Path, spec: LabSpec) -> bool:
        """Hand a pre-started pool chain to this environment (a symlink); refill in background."""
        if not self._pool_fits(spec) or not self._pool().is_dir():
            return False
        claimed = False
        for slot in sorted(self._pool().glob("slot-*")):
            try:
                os.rename(slot / "ready", slot / "claimed")  # atomic: one claimer wins
            except OSError:
                continue
            pid = _read_pid(slot / "launcher.pid")
            if not _alive_launcher(pid):
                shutil.rmtree(slot, ignore_errors=True)
                continue
            _resume(pid)
            root.parent.mkdir(parents=True, exist_ok=True)
            os.symlink(slot.resolve(), root)
            claimed = True
            break
        threading.Thread(target=self.fill_pool, name="sandbox-pool", daemon=True).start()
        return claimed

    def fill_pool(self) -> int:
        """Start pool chains until ``pool_size`` are ready; returns how many were started.

        One filler at a time per state folder (a lock file); the others return at once.
        """
        if self.pool_size <= 0:
            return 0
        import fcntl

        self._pool().mkdir(parents=True, exist_ok=True)
        with open(self._pool() / "fill.lock", "w") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return 0
            spec = LabSpec.simple("pool", self.pool_validators, self.pool_consensus)
            started = 0
            while not self._draining and len(list(self._pool().glob("*/ready"))) < self.pool_size:
                slot = self._pool() / f"slot-{time.time_ns()}"
                try:
                    self._launch(slot, spec)
                except BackendError as exc:
                    self.log.warning("pool chain failed to start: %s", exc)
                    shutil.rmtree(slot, ignore_errors=True)
                    break
                # paused until claimed: an idle pool chain then costs memory but no CPU (TBFT
                # commits an empty block every second, 2-3 % of a core per chain)
                _pause(_read_pid(slot / "launcher.pid"))
                (slot / "ready").touch()
                started += 1
            return started

    def drain_pool(self) -> None:
        """Stop and delete every unclaimed pool chain (after a running filler's current one)."""
        import fcntl

        if not self._pool().is_dir():
            return
        self._draining = True
        try:
            with open(self._pool() / "fill.lock", "w") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                for slot in self._pool().glob("slot-*"):
                    if not (slot / "claimed").exists():
                        self._stop_pid(_read_pid(slot / "launcher.pid"))
                        shutil.rmtree(slot, ignore_errors=True)
        finally:
            self._draining = False

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
        return self._stop_pid(self._pid(env_id))

    @staticmethod
    def _stop_pid(pid: int | None) -> bool:
        if not _alive_launcher(pid):
            return False
        with contextlib.suppress(ProcessLookupError):  # it ended since: someone else stopped it
            os.kill(pid, signal.SIGTERM)
        _resume(pid)  # a paused pool chain handles the signal only once it runs

        def gone() -> bool:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
            return not _alive_launcher(pid)

        with contextlib.suppress(TimeoutError):
            wait_until(gone, 10, interval=0.02)
        if _alive_launcher(pid):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        return True

    def destroy(self, env_id: str) -> None:
        self.stop(env_id)
        root = self._root(env_id)
        if root.is_symlink():  # a claimed pool chain: delete the slot it points to
            shutil.rmtree(root.resolve(), ignore_errors=True)
            root.unlink()
        else:
            shutil.rmtree(root, ignore_errors=True)

    def zygote_pids(self) -> list[int]:
        """The zygote's pid, if it runs (its pages are shared by every chain it started)."""
        pid = _read_pid(self.state_path / "zygote.pid")
        return [pid] if pid and _alive_launcher(pid) else []

    def pids(self, env_id: str) -> list[int]:
        """The launcher and its validator children (for memory measurements)."""
        pid = self._pid(env_id)
        if not _alive_launcher(pid):
            return []
        kids: list[int] = []
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{pid}/task").iterdir():
                text = (task / "children").read_text().split()
                kids.extend(int(k) for k in text)
        return [pid, *kids]
