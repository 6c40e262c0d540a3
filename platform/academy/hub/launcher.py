"""Start JupyterHub with academy behind it, for ``academy up`` and for the integration tests.

The hub runs as a child process (``jupyterhub -f embedded_config.py``) that starts its own proxy,
academy (a hub-managed service) and, on login, each learner's JupyterLab. Everything it needs comes
in ``ACADEMY_*`` environment variables made from one :class:`~academy.settings.Settings`, so the hub,
academy and this launcher always agree on ports, paths and tokens.

Lifetimes: the hub, and the chains ``academy up`` starts, run in sessions of their own (a Ctrl-C at
the terminal reaches only ``academy up``, which stops them in order) and follow the process that
started them when it dies without stopping them (``kill -9``): the kernel sends them SIGTERM
(:mod:`labs.minichain.lifetime`), and the hub then stops its proxy, academy, learners' servers and
their chains as on any SIGTERM.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

import httpx
import psutil

from academy.hub.embedded_config import public_url
from labs.minichain.lifetime import follow_parent_preexec
from labs.minichain.ports import port_free
from labs.minichain.waiting import wait_until

if TYPE_CHECKING:
    from academy.settings import Settings

CONFIG = Path(__file__).with_name("embedded_config.py")


class HubError(RuntimeError):
    """The hub could not start; the message says why and what to do."""


def with_secrets(settings: Settings) -> Settings:
    """Fill the hub<->academy tokens, kept in ``STATE_DIR/hub/secrets.json`` across restarts."""
    path = Path(settings.state_dir) / "hub" / "secrets.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        stored = json.loads(path.read_text())
    except (OSError, ValueError):
        stored = {}
    changed = False
    for name in ("service_token", "hub_api_token"):
        if getattr(settings, name):
            continue
        if not stored.get(name):
            # academy tells its own tokens from hub tokens by their prefix
            prefix = "aca_" if name == "service_token" else ""
            stored[name] = prefix + secrets.token_urlsafe(32)
            changed = True
        setattr(settings, name, stored[name])
    if changed:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(stored, fh)
    return settings


def settings_env(settings: Settings) -> dict[str, str]:
    """Every setting as the ``ACADEMY_*`` variable that reproduces it in a child process."""
    env: dict[str, str] = {}
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        if value is None or value == "":
            continue  # unset: an empty variable would shadow JUPYTERHUB_* fallbacks
        if isinstance(value, bool):
            value = "true" if value else "false"
        elif isinstance(value, Path):
            value = str(value.resolve())
        elif isinstance(value, list | dict):
            value = json.dumps(value)
        env[f"ACADEMY_{name.upper()}"] = str(value)
    return env


@dataclass
class HubRun:
    """A running hub: its public URL, the process and where it logs."""

    settings: Settings
    proc: subprocess.Popen
    log_path: Path
    url: str
    family: set[int] = field(default_factory=set)
    """processes seen below the hub (the proxy, academy): stopped with it even if it died first"""

    @property
    def academy_url(self) -> str:
        return self.url + self.settings.base_path

    def log_tail(self, lines: int = 30) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the hub; it stops academy, the proxy and every learner's server it started.

        Whatever of those outlives the hub (a hub that died while starting leaves its proxy and
        services behind) is stopped here, by process id.
        """
        family = sorted(self.family | set(_descendants(self.proc.pid)))
        # everyone at once: academy, the proxy and learners' servers stop side by side, not one
        # after the other behind the hub's own clean-up
        _terminate([self.proc.pid, *family])
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout)
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        # the chains started at spawn and those academy started for the labs learners opened
        stop_lab_chains(
            Path(self.settings.sandbox_dir or Path(self.settings.state_dir) / "sandbox").resolve()
        )


def _descendants(pid: int) -> list[int]:
    """Every process below ``pid``, also those a learner's server or a chain daemonised (their
    parent links are followed for the whole host); empty when ``pid`` is gone."""
    try:
        return [child.pid for child in psutil.Process(pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def _terminate(pids: list[int], grace: float = 10.0) -> None:
    """SIGTERM to each, SIGKILL to whoever still runs ``grace`` seconds later."""
    alive = [p for p in pids if _signal(p, signal.SIGTERM)]
    for p in alive:
        _signal(p, signal.SIGCONT)  # paused ones (the sandbox's idle pool chains) act on it too
    with contextlib.suppress(TimeoutError):
        wait_until(lambda: not any(_alive(p) for p in alive), grace, interval=0.2)
    for p in alive:
        if _alive(p):
            _signal(p, signal.SIGKILL)


def _alive(pid: int) -> bool:
    """Running (a zombie waiting for its parent to reap it counts as gone)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _signal(pid: int, sig: int) -> bool:
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def stop_lab_chains(sandbox_dir: Path) -> int:
    """Stop every learner's lab chain the hub's spawns started (their state is kept) and the
    chains pre-started for learners to come."""
    if not sandbox_available() or not sandbox_dir.exists():
        return 0
    from academy.hub.labchains import stop_chains
    from labs.sandbox import SandboxManager

    return stop_chains(SandboxManager(state_dir=str(sandbox_dir)))


def start_hub(settings: Settings, timeout: float = 180.0, quiet: bool = True) -> HubRun:
    """Start the hub and return once the hub and academy both answer through the proxy.

    The hub gets SIGTERM when the calling thread's process dies (call this from the main thread:
    see :mod:`labs.minichain.lifetime`), so it never outlives its caller holding the ports.
    """
    settings = with_secrets(settings)
    try:
        url = public_url(settings)  # learners' servers need a host name with subdomains
    except ValueError as exc:
        raise HubError(str(exc)) from None
    for port, what in (
        (settings.hub_port, "HUB_PORT"),
        (settings.hub_api_port, "HUB_API_PORT"),
        (settings.hub_proxy_api_port, "HUB_PROXY_API_PORT"),
        (settings.port, "PORT"),
    ):
        if not port_free(port):
            raise HubError(
                f"port {port} is in use: stop what runs there or set ACADEMY_{what} to a free port"
            )
    hub_dir = Path(settings.state_dir).resolve() / "hub"
    hub_dir.mkdir(parents=True, exist_ok=True)
    log_path = hub_dir / "jupyterhub.log"
    env = dict(os.environ)
    env.update(settings_env(settings))
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    log = open(log_path, "ab")  # noqa: SIM115  (the child writes to it for its whole life)
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyterhub", "-f", str(CONFIG)],
        cwd=os.getcwd(),
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
        preexec_fn=follow_parent_preexec(),
    )
    log.close()
    run = HubRun(settings, proc, log_path, url)
    try:
        wait_ready(run, timeout)
    except BaseException:
        run.stop()
        raise
    return run


def wait_ready(run: HubRun, timeout: float) -> None:
    checks = [run.url + "/hub/api", run.academy_url + "/health"]
    with httpx.Client(timeout=5.0) as http:

        def answered() -> bool:
            run.family.update(_descendants(run.proc.pid))
            if run.proc.poll() is not None:
                raise HubError(
                    f"JupyterHub exited ({run.proc.returncode}); its log {run.log_path} ends:\n"
                    + run.log_tail()
                )
            while checks and http.get(checks[0]).status_code == 200:
                checks.pop(0)
            return not checks

        try:
            wait_until(answered, timeout, interval=0.3, ignore=(httpx.HTTPError,))
        except TimeoutError:
            raise HubError(
                f"{checks[0]} did not answer within {timeout:.0f}s; see {run.log_path}:\n"
                + run.log_tail()
            ) from None


def first_chain_lab(courses_dir: Path) -> Path | None:
    """The first lab (in course order) whose ``lab.toml`` asks for a chain."""
    import tomllib

    courses = []
    for course_toml in sorted(Path(courses_dir).glob("*/course.toml")):
        try:
            course = tomllib.loads(course_toml.read_text())
        except (OSError, tomllib.TOMLDecodeError):
            continue
        courses.append((course.get("course", {}).get("order", 999), course_toml.parent, course))
    for _order, root, course in sorted(courses, key=lambda c: (c[0], str(c[1]))):
        for lab in course.get("labs", []):
            lab_toml = root / "source" / str(lab.get("id")) / "lab.toml"
            with contextlib.suppress(OSError, tomllib.TOMLDecodeError):
                if "chain" in tomllib.loads(lab_toml.read_text()):
                    return lab_toml
    return None


def sandbox_available() -> bool:
    try:
        import labs.sandbox  # noqa: F401
    except ImportError:
        return False
    return True


def settings_help() -> str:
    """The ``ACADEMY_*`` variables with their defaults, for ``academy up --help``."""
    from academy.settings import Settings

    lines = [
        "Settings (environment variables, e.g. ACADEMY_DATABASE_URL=postgresql+psycopg://...):"
    ]
    for name, info in Settings.model_fields.items():
        default = info.default if info.default not in ("", None) else "(empty)"
        lines.append(f"ACADEMY_{name.upper()} (default {default}): {info.description or ''}")
    return "\n\n".join(lines)


class _Interrupts:
    """Ctrl-C (SIGINT), SIGTERM and SIGHUP (its terminal closed) stop ``academy up`` in order,
    whenever they come, also while it is still starting: the first one raises
    ``KeyboardInterrupt`` in the main thread, so every clean-up registered so far runs. From then
    on (and from :meth:`shield` on) they are ignored: a second Ctrl-C must not cut the stopping
    short and leave half of the platform running."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

    def __enter__(self) -> _Interrupts:
        self._previous = {sig: signal.getsignal(sig) for sig in self.SIGNALS}
        for sig in self.SIGNALS:
            signal.signal(sig, self._interrupt)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def _interrupt(self, signum: int, frame: FrameType | None) -> None:
        self.shield()
        raise KeyboardInterrupt

    def shield(self) -> None:
        for sig in self.SIGNALS:
            signal.signal(sig, self._ignore)

    @staticmethod
    def _ignore(signum: int, frame: FrameType | None) -> None:
        pass


def run_up(
    chains: str,
    data: Path,
    nodes: int,
    consensus: str,
    say: Callable[[str], object] = print,
    ledger: bool = True,
) -> None:
    """``academy up``: the whole platform in the foreground until Ctrl-C, SIGTERM or SIGHUP.

    Each part's stop is registered before the part starts, so a signal that comes while it starts
    stops it too. Killed outright, ``academy up`` leaves nothing behind either: what it started
    follows it (see the module docstring).
    """
    from academy.settings import Settings

    settings = Settings()
    settings.seed_demo = True
    with _Interrupts() as interrupts, contextlib.ExitStack() as cleanup:
        try:
            if ledger:
                _start_ledger(settings, say, cleanup)
            _run_up(settings, chains, data, nodes, consensus, say, cleanup)
        except KeyboardInterrupt:
            pass
        finally:
            interrupts.shield()
    say(f"stopped; everything is kept in {settings.state_dir}")


def _start_ledger(
    settings: Settings, say: Callable[[str], object], cleanup: contextlib.ExitStack
) -> None:
    """Run the academy ledger under STATE_DIR/ledger unless ACADEMY_LEDGER_RPC_URL names one, so
    certificates are anchored out of the box; ``cleanup`` stops it."""
    if settings.ledger_rpc_url:
        return
    from academy.credentials.ledger import start_local_ledger

    folder = Path(settings.state_dir).resolve() / "ledger"
    cleanup.callback(_stop_chain, folder)
    settings.ledger_rpc_url, settings.ledger_private_key = start_local_ledger(
        folder, follow_caller=True
    )
    say(f"academy ledger (certificates are anchored there): {settings.ledger_rpc_url}")


def _stop_chain(data: Path) -> None:
    """Stop the nodes of the network in ``data`` that run (none, if it never started)."""
    from labs.minichain.netconfig import NetworkError
    from labs.minichain.network import stop_network

    with contextlib.suppress(NetworkError, OSError):
        stop_network(data)


def _run_up(
    settings: Settings,
    chains: str,
    data: Path,
    nodes: int,
    consensus: str,
    say: Callable[[str], object],
    cleanup: contextlib.ExitStack,
) -> None:
    if chains == "auto":
        chains = (
            "sandbox" if sandbox_available() and first_chain_lab(settings.courses_dir) else "shared"
        )
    if chains == "sandbox":
        lab = settings.hub_lab or first_chain_lab(settings.courses_dir)
        if lab is None:
            raise HubError(
                f"no lab under {settings.courses_dir} asks for a chain: use --chains shared"
            )
        settings.hub_lab = Path(lab).resolve()
    elif chains == "shared":
        from labs.minichain.netconfig import ensure_network
        from labs.minichain.network import start_network

        if ensure_network(data, nodes, consensus):
            say(f"initialised a {nodes}-node {consensus} chain in {data} (permissionedWithCert)")
        cleanup.callback(_stop_chain, data)
        cfg = start_network(data, follow_caller=True)
        settings.hub_chain_rpc_urls = ",".join(cfg.rpc_url(i) for i in range(len(cfg.nodes)))
    elif chains != "none":
        raise HubError(f"--chains {chains!r}: use auto, sandbox, shared or none")
    say(
        f"starting JupyterHub and academy (log: {Path(settings.state_dir) / 'hub' / 'jupyterhub.log'}) ..."
    )
    run = start_hub(settings)  # stops what it started if it fails or is interrupted
    cleanup.callback(_stop_hub, run, say)
    _welcome(run, chains, say)
    while run.proc.poll() is None:
        time.sleep(1)
    say(f"JupyterHub stopped by itself ({run.proc.returncode}); its log ends:\n{run.log_tail()}")


def _stop_hub(run: HubRun, say: Callable[[str], object]) -> None:
    say("stopping JupyterHub, academy and learners' servers ...")
    run.stop()


def _welcome(run: HubRun, chains: str, say: Callable[[str], object]) -> None:
    from academy.services.seed import DEMO_ADMIN, DEMO_INSTRUCTOR, DEMO_LEARNERS

    say(f"\nChainAcademy is up: {run.url}/   (Ctrl-C stops it)")
    say(f"  academy API  {run.academy_url}/api/   OpenAPI {run.academy_url}/openapi.json")
    say("  demo logins (user / password):")
    for name, _display, password in [DEMO_ADMIN, DEMO_INSTRUCTOR, *DEMO_LEARNERS]:
        say(f"    {name:<12} {password}")
    if chains == "sandbox":
        say(f"  each learner gets their own chain for {run.settings.hub_lab} at login,")
        say("  and for each lab they open the chain its lab.toml asks for")
    elif chains == "shared":
        say(f"  learners' chain (shared): {run.settings.hub_chain_rpc_urls.split(',')[0]}")
