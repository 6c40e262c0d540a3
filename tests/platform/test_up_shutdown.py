"""Stopping the real ``academy up``: Ctrl-C (SIGINT to its process group), SIGTERM to its process
group, and ``kill -9`` of ``academy up`` alone. After each, nothing it started runs any more (the
hub, its proxy, academy, the warm parent and a learner's server, the academy ledger, the chain
zygote, the pre-started and the learner's chains) and nothing listens on its ports, within the 30 s
the platform promises; then a second ``academy up`` on the same state folder and ports serves.

Every wait polls against a generous deadline: an ``academy up`` start takes a minute and more on
a busy two-core machine. Processes are told apart from other programs on the machine by this
test's own state folder (in their command line, working folder or ``ACADEMY_STATE_DIR``) and by
being below ``academy up`` when it is stopped.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import httpx
import psutil
import pytest

from labs.minichain.ports import free_port, port_free
from labs.minichain.waiting import wait_until
from tests.e2e.hubharness import HubBrowser, chain_lab
from tests.platform.academy.builders import write_course

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT = 600.0  # generous: an academy up start can take a minute and more under load
# The platform's own bound on a stop is the hub's 10 s grace before SIGKILL (about 7-15 s measured
# here); the test asserts that everything goes, with room for a CI machine whose two cores are busy,
# not how fast (speed is for bench/, never a timed test).
GONE_WITHIN = 120.0


class Up:
    """One ``academy up`` in a process group of its own, logging to a file in the state folder."""

    def __init__(self, root: Path, ports: dict[str, int], name: str) -> None:
        self.root, self.ports = root, ports
        self.state = root / "state"
        env = {k: v for k, v in os.environ.items() if not k.startswith("ACADEMY_")}
        env.update(
            {
                "ACADEMY_STATE_DIR": str(self.state),
                "ACADEMY_COURSES_DIR": str(root / "courses"),
                "ACADEMY_HUB_LAB": str(root / "chain-lab" / "lab.toml"),
                "ACADEMY_SANDBOX_POOL_SIZE": "1",
                "ACADEMY_GRADE_WORKERS": "1",
                "PYTHONUNBUFFERED": "1",
                **{f"ACADEMY_{k}": str(v) for k, v in ports.items()},
            }
        )
        self.log = root / f"{name}.log"
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "academy.cli", "up", "--chains", "sandbox"]
                + ["--data", str(root / "chain")],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # its own process group, as in a terminal
            )
        self.url = f"http://localhost:{ports['HUB_PORT']}"  # the hub by its host name

    def output(self) -> str:
        hub_log = self.state / "hub" / "jupyterhub.log"
        tail = hub_log.read_text(errors="replace")[-3000:] if hub_log.exists() else ""
        return f"academy up said:\n{self.log.read_text(errors='replace')}\nhub log ends:\n{tail}"

    def wait_serving(self) -> None:
        """Until the hub and academy both answer through the proxy."""
        checks = [self.url + "/hub/health", self.url + "/services/academy/health"]
        with httpx.Client(timeout=10.0) as http:

            def serving() -> bool:
                assert self.proc.poll() is None, f"academy up exited:\n{self.output()}"
                while checks and http.get(checks[0]).status_code == 200:
                    checks.pop(0)
                return not checks

            wait_until(
                serving,
                START_TIMEOUT,
                interval=0.5,
                ignore=(httpx.HTTPError,),
                message=lambda: f"not serving:\n{self.output()}",
            )

    def browser(self) -> HubBrowser:
        run = SimpleNamespace(
            url=self.url,
            settings=SimpleNamespace(base_path="/services/academy"),
            log_tail=self.output,
        )
        return HubBrowser(run, timeout=120.0)  # a stand-in HubEndpoint for the hub academy up runs

    def ledger_ports(self) -> set[int]:
        cfg = json.loads((self.state / "ledger" / "network.json").read_text())
        return {p for n in cfg["nodes"] for p in (n["rpc_port"], n["p2p_port"])}

    def family(self) -> set[psutil.Process]:
        """``academy up`` and every process below it now."""
        me = psutil.Process(self.proc.pid)
        return {me, *me.children(recursive=True)}


def _ours(proc: psutil.Process, state: Path) -> bool:
    """The process works for this test's platform: its state folder is in its command line,
    its working folder or its environment."""
    mark = str(state)
    try:
        if any(mark in arg for arg in proc.cmdline()) or proc.cwd().startswith(mark):
            return True
        return proc.environ().get("ACADEMY_STATE_DIR", "").startswith(mark)
    except (psutil.Error, OSError):
        return False


def _running(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _describe(proc: psutil.Process) -> str:
    with contextlib.suppress(psutil.Error):
        return f"{proc.pid} {' '.join(proc.cmdline())[:160]}"
    return str(proc.pid)


def wait_all_gone(up: Up, family: set[psutil.Process], ports: set[int]) -> None:
    """Within GONE_WITHIN seconds: none of ``family``, no process of this platform, nothing
    listening on ``ports``."""
    left: set[psutil.Process] = set()
    busy: set[int] = set()

    def all_gone() -> bool:
        nonlocal left, busy
        # a stopped academy up is our child: reap it, or it stays a zombie
        with contextlib.suppress(subprocess.TimeoutExpired):
            up.proc.wait(0)
        left = {p for p in family if _running(p)}
        left |= {p for p in psutil.process_iter() if _running(p) and _ours(p, up.state)}
        busy = {port for port in ports if not port_free(port)}
        return not left and not busy

    wait_until(
        all_gone,
        GONE_WITHIN,
        interval=0.5,
        message=lambda: (
            f"still running {GONE_WITHIN:.0f} s after the stop:\n"
            + "\n".join(_describe(p) for p in left)
            + f"\nports in use: {sorted(busy)}\n{up.output()}"
        ),
    )


@pytest.fixture
def platform_root(tmp_path: Path) -> Iterator[Path]:
    """A fresh state folder and course; afterwards nothing of its platform is left running."""
    write_course(tmp_path / "courses")
    chain_lab(tmp_path)  # one solo validator per learner, and one pre-started
    yield tmp_path
    for proc in psutil.process_iter():
        if _running(proc) and _ours(proc, tmp_path / "state"):
            with contextlib.suppress(psutil.Error):
                proc.kill()


def _stop(up: Up, how: str) -> None:
    if how == "ctrl-c":
        os.killpg(up.proc.pid, signal.SIGINT)
    elif how == "sigterm":
        os.killpg(up.proc.pid, signal.SIGTERM)
    else:
        os.kill(up.proc.pid, signal.SIGKILL)


@pytest.mark.parametrize("how", ["ctrl-c", "sigterm", "kill-9"])
def test_a_stopped_academy_up_leaves_nothing_and_starts_again(
    platform_root: Path, how: str
) -> None:
    names = ("HUB_PORT", "HUB_API_PORT", "HUB_PROXY_API_PORT", "PORT")
    ports = {name: free_port() for name in names}
    first = Up(platform_root, ports, "first")
    try:
        first.wait_serving()
        learner = first.browser()
        try:
            learner.login("learner1", "learner1-demo")
            learner.spawn(timeout=START_TIMEOUT)  # a server forked by the warm parent, its chain
        finally:
            learner.close()
        family = first.family()
        # every kind of process academy up starts is there to be stopped
        kinds = " ".join(" ".join(p.cmdline()) for p in family if _running(p))
        for kind in (
            "jupyterhub",
            "configurable-http-proxy",
            "academy.cli serve",
            "academy.hub.forkserver",
            "labs.minichain.node",  # the academy ledger
            "labs.sandbox.launcher zygote",  # the chain zygote and the chains it forked
        ):
            assert kind in kinds, f"no {kind} below academy up: {kinds}"
        used = set(ports.values()) | first.ledger_ports()
        _stop(first, how)
        wait_all_gone(first, family, used)
    finally:
        if first.proc.poll() is None:
            first.proc.kill()
            first.proc.wait()

    second = Up(platform_root, ports, "second")
    try:
        second.wait_serving()
        learner = second.browser()
        try:
            page = learner.login("learner1", "learner1-demo")
            assert page.status_code == 200 and "/hub/login" not in str(page.url), second.output()
        finally:
            learner.close()
        family = second.family()
        used = set(ports.values()) | second.ledger_ports()
        _stop(second, "ctrl-c")
        wait_all_gone(second, family, used)
    finally:
        if second.proc.poll() is None:
            second.proc.kill()
            second.proc.wait()
