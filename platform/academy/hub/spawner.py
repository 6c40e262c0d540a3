"""The embedded spawner: each learner's JupyterLab as a local process with its own folder.

It adds to JupyterHub's ``SimpleLocalProcessSpawner`` what a learner's server needs from the
platform: how to reach academy (``ACADEMY_URL`` and ``ACADEMY_TOKEN``, the server's own hub token,
which academy accepts because the hub grants it ``access:services!service=academy``), the RPC URLs
of the learner's own lab chain (``ACADEMY_RPC_URL``/``ACADEMY_RPC_URLS``), and the academy
JupyterLab extension (the Fetch/Submit menu and toolbar button, and its server side).

With ``isolate`` (the embedded platform's default where bubblewrap is installed and the hub runs
as root) each server and its kernels run in the learner's jail (:mod:`academy.hub.jail`): a user
of their own, no other process in sight, the platform's folders hidden, and on the network only
the hub, academy and their own chain.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import psutil
from jupyterhub.spawner import SimpleLocalProcessSpawner
from jupyterhub.utils import random_port
from traitlets import Any as AnyTrait
from traitlets import Bool, Float, Integer, List, Unicode, default

import academy
from academy.hub.forkserver import WarmParent
from academy.hub.jail import Jail
from grader.language import CHINESE, ENGLISH, LANGUAGE_ENV, normalise

#: where JupyterLab finds the built frontend extension (``labextensions/<name>`` below it)
LABEXT_DATA = Path(academy.__file__).parent / "labext" / "share"
#: enables the academy server extension (``academy.learner``) in every learner's server
JUPYTER_CONFIG = Path(academy.__file__).parent / "learner" / "jupyter-config"
#: JupyterLab in Chinese by default (the learner may still switch in Settings > Language), for
#: a learner working in Chinese
JUPYTER_CONFIG_ZH = Path(academy.__file__).parent / "learner" / "jupyter-config-zh-CN"


class AcademySpawner(SimpleLocalProcessSpawner):
    """A learner's JupyterLab on this machine, started with academy's environment."""

    # Spawner's traits that start() reads and sets, declared for the type checker: jupyterhub
    # ships no type information, so mypy would infer them from start()'s own assignments
    port: int
    api_token: str
    cmd: list[str]

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

    warm_start = Bool(
        True,
        config=True,
        help="Fork each learner's server from a parent that imported JupyterLab once (about 10x "
        "faster, and the imported pages are shared); False: a fresh interpreter per server. "
        "Used only with the default cmd.",
    )
    warm_parent_socket = Unicode(
        "",
        config=True,
        help="Unix socket of the warm parent (default: next to the learners' folders)",
    )
    ready_poll_interval = Float(
        0.05,
        config=True,
        help="Seconds between checks that a starting server listens: start() returns as soon as "
        "it does, so the hub's own (exponential back-off) check answers at its first try",
    )

    isolate = Bool(
        False,
        config=True,
        help="Run each server and its kernels in the learner's jail (academy.hub.jail); needs "
        "bubblewrap and a hub running as root",
    )
    isolate_hide = List(
        Unicode(),
        config=True,
        help="Folders a jailed server sees empty (the platform's state, courses, chains), "
        "besides /tmp, /run and the like; the learner's own folder is put back inside",
    )
    isolate_chains = Unicode(
        "",
        config=True,
        help="labs.sandbox state folder of the learners' chains: a jailed server reaches its "
        "learner's running chains there, whatever their ports; empty: only the chain named in "
        "ACADEMY_RPC_URLS at spawn (a chain shared by everyone, say)",
    )
    isolate_uid_base = Integer(
        200000,
        config=True,
        help="A jailed server runs as user isolate_uid_base + the hub's id of the learner",
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
        language = self.learner_language()
        chinese = str(JUPYTER_CONFIG_ZH) if language == "zh-CN" else ""
        env["JUPYTER_CONFIG_PATH"] = os.pathsep.join(
            p for p in (chinese, str(JUPYTER_CONFIG), env.get("JUPYTER_CONFIG_PATH", "")) if p
        )
        env[LANGUAGE_ENV] = language  # grader.checks' messages in the learner's own kernel
        env.update(getattr(self, "_lab_vars", {}))
        return env

    def learner_language(self) -> str:
        """``en`` or ``zh-CN``: the learner's choice as academy told it with their token, else
        the language of the browser that asked for the server (as academy's pages follow it)."""
        from academy.pages.i18n import pick_language

        chosen = normalise(self._language)
        if chosen is not None:
            return chosen
        handler = getattr(self, "handler", None)
        request = getattr(handler, "request", None)
        accept = request.headers.get("Accept-Language") if request is not None else None
        return CHINESE if pick_language(accept) == "zh" else ENGLISH

    _lab_vars: dict[str, str] = {}  # noqa: RUF012 - replaced per start, never mutated
    _academy_token = ""
    _language: str | None = None
    _drawn_port = False

    async def start(self) -> Any:
        """Ensure the learner's lab chain (while academy issues their token), so the server starts
        with its RPC URLs; fork the server from the warm parent; return once it listens."""
        self._academy_token, self._lab_vars = await asyncio.gather(
            self._timed("academy token", self._learner_token()),
            self._timed("lab chain", self._lab_chain()),
        )
        # a port set in the configuration stays; otherwise each start draws one
        fixed, token = (0 if self._drawn_port else self.port), self.api_token
        for _attempt in range(3):
            # a free port is only free until someone binds it: with many servers, kernels and
            # chains starting at once two may draw the same one, so a server that could not
            # listen gets another port (and a listener that is not ours never counts as ready)
            self.port = fixed or _draw_port()
            self._drawn_port = not fixed
            address = await (self._fork() if self._warm() else self._start_anew())
            if await self._timed("server listening", self._listening(*address)):
                return address
            if fixed or await self.poll() is None:
                break  # no other port to try, or it still runs (slow): the hub's timeout decides
            _PORTS.discard(self.port)
            self.log.warning(
                "%s's server did not listen on %i: once more", self.user.name, self.port
            )
            self.api_token = token  # poll() cleared it with the exited server's state
        return address  # the hub finds the server gone and reports the failed spawn

    async def stop(self, now: bool = False) -> None:
        await super().stop(now=now)
        _PORTS.discard(self.port)

    async def _timed(self, what: str, step: Any) -> Any:
        """Await ``step``, logging how long it took (where a spawn's time goes)."""
        t0 = time.perf_counter()
        try:
            return await step
        finally:
            self.log.info("%s: %s in %.2f s", self.user.name, what, time.perf_counter() - t0)

    async def _lab_chain(self) -> dict[str, str]:
        if self.lab_env is None:
            return {}
        try:
            env = dict(await self.lab_env(self.user.name))
        except Exception:
            # a learner without a chain can still read, fetch and submit
            self.log.exception(
                "no lab chain for %s; starting the server without one", self.user.name
            )
            return {}
        sdk_config = env.get("ACADEMY_CHAINMAKER_SDK_CONFIG")
        if sdk_config:
            handed = await asyncio.to_thread(
                self._hand_over, sdk_config, env.get("ACADEMY_LAB_ID") or "lab"
            )
            env["ACADEMY_CHAINMAKER_SDK_CONFIG"] = handed
        return env

    def _hand_over(self, sdk_config: str, lab_id: str) -> str:
        """The chain's SDK configuration and its orgs' users, copied into the learner's folder:
        the chain's own folder is no place a (jailed) learner's server may read."""
        from labs.minichain.chainmaker.handover import hand_over

        try:
            return str(hand_over(Path(sdk_config), Path(self.home_dir), lab_id))
        except (OSError, KeyError, ValueError) as exc:
            self.log.warning("no ChainMaker SDK configuration for %s: %s", self.user.name, exc)
            return ""

    def _warm(self) -> bool:
        return (
            self.warm_start
            and list(self.cmd) == self._cmd()
            and not self.shell_cmd
            and not self.popen_kwargs
        )

    async def _fork(self) -> tuple[str, int]:
        """The learner's server, forked from the warm parent (the ordinary start if it cannot)."""
        env = self.get_env()
        argv = ["jupyterhub-singleuser", *self.get_args()]
        cell = self._jail(env) if self.isolate else None
        try:
            pid = await asyncio.to_thread(
                warm_parent(self.warm_parent_socket).spawn, argv, env, self.home_dir, cell
            )
        except (OSError, RuntimeError) as exc:
            self.log.warning("no warm parent (%s): starting %s's server anew", exc, self.user.name)
            return await self._start_anew()
        self.proc = None  # not our child: poll() and stop() go by pid, as after a hub restart
        self.pid = pid
        self.log.info("Forked %s's server (pid %i) from the warm parent", self.user.name, pid)
        return (self.ip or "127.0.0.1", self.port)

    async def _start_anew(self) -> Any:
        """The server as a fresh program (no warm parent): inside the jail when isolating."""
        if not self.isolate:
            return await super().start()
        cmd = list(self.cmd)
        cell = self._jail(self.get_env())
        self.cmd = [sys.executable, "-m", "academy.hub.jail", cell.to_json(), "--", *cmd]
        try:
            return await super().start()
        finally:
            self.cmd = cmd

    def _jail(self, env: dict[str, Any]) -> Jail:
        """The jail of this start; rewrites ``env`` so every address it names is reachable inside
        (each forwarded to the same port on the machine's loopback, and nothing else is)."""
        forward: dict[int, str] = {}
        for name in ("JUPYTERHUB_API_URL", "JUPYTERHUB_ACTIVITY_URL", "ACADEMY_URL"):
            if env.get(name):
                env[name] = _forwarded(str(env[name]), forward)
        for name in ("ACADEMY_RPC_URL", "ACADEMY_RPC_URLS"):
            if env.get(name) and not self.isolate_chains:  # else the relay follows the chains
                urls = str(env[name]).split(",")
                env[name] = ",".join(_forwarded(u.strip(), forward) for u in urls if u.strip())
        return Jail(
            home=str(Path(self.home_dir).resolve()),
            uid=self.isolate_uid_base + int(self.user.id),
            port=self.port,
            forward=[[port, host] for port, host in sorted(forward.items())],
            hide=[str(Path(h).resolve()) for h in self.isolate_hide],
            learner=self.user.name,
            chains=str(Path(self.isolate_chains).resolve()) if self.isolate_chains else "",
        )

    async def _listening(self, ip: str, port: int) -> bool:
        """Wait until *this* server listens (True), or it has exited or timed out (False)."""
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            try:
                _reader, writer = await asyncio.open_connection(ip or "127.0.0.1", port)
            except OSError:
                pass
            else:
                writer.close()
                if _listens(self.pid, port):
                    return True
            if await self.poll() is not None:
                return False
            await asyncio.sleep(self.ready_poll_interval)
        return False

    async def _learner_token(self) -> str:
        """A token academy issues for this learner (scope ``learn``); empty if academy is away."""
        if not (self.academy_internal_url and self.service_token):
            return ""
        url = f"{self.academy_internal_url.rstrip('/')}/api/internal/users/{self.user.name}/token"
        try:
            reply = await _academy_http().post(
                url, headers={"Authorization": f"Bearer {self.service_token}"}
            )
            reply.raise_for_status()
            body = reply.json()
            self._language = body.get("language")
            return str(body["token"])
        except (httpx.HTTPError, KeyError, ValueError) as exc:
            self.log.warning(
                "academy gave no token for %s (%s): using the hub token", self.user.name, exc
            )
            return ""


_PARENTS: dict[str, WarmParent] = {}


def warm_parent(sock: str = "") -> WarmParent:
    """This hub's warm parent for learners' servers (started on first use, in the background).

    The default socket is unique to the hub process, so hubs side by side never share one.
    """
    path = sock or os.path.join(tempfile.gettempdir(), f"academy-hub-{os.getpid()}.sock")
    if path not in _PARENTS:
        _PARENTS[path] = WarmParent(Path(path))
    parent = _PARENTS[path]
    parent.start()
    return parent


def _forwarded(url: str, forward: dict[int, str]) -> str:
    """``url`` as a jailed server reaches it (loopback, same port); notes the port to forward."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if not parts.hostname or not parts.port:
        return url
    target = "127.0.0.1" if parts.hostname in ("localhost", "0.0.0.0") else parts.hostname
    forward[parts.port] = target
    if parts.hostname == "localhost":
        # the proxy routes by host name (each learner's server has an origin of its own), so the
        # name stays; inside the jail it resolves to the jail's loopback, where the relay listens
        return url
    netloc = f"127.0.0.1:{parts.port}"
    if parts.username:
        netloc = f"{parts.username}{':' + parts.password if parts.password else ''}@{netloc}"
    return parts._replace(netloc=netloc).geturl()


#: ports this hub handed to servers that may still run (never drawn twice)
_PORTS: set[int] = set()


def _draw_port() -> int:
    port = random_port()
    while port in _PORTS:
        port = random_port()
    _PORTS.add(port)
    return port


def _listens(pid: int, port: int) -> bool:
    """Process ``pid`` holds the listening TCP socket on ``port`` (not some other program)."""
    try:
        sockets = psutil.Process(pid).net_connections(kind="tcp")
    except psutil.Error:
        return False
    return any(s.status == psutil.CONN_LISTEN and s.laddr and s.laddr.port == port for s in sockets)


_HTTP: httpx.AsyncClient | None = None


def _academy_http() -> httpx.AsyncClient:
    """One client for every spawn: a new one per call costs the hub's event loop ~0.2 s of CPU
    (its TLS context loads the CA bundle), twenty of them in a login burst."""
    global _HTTP
    if _HTTP is None or _HTTP.is_closed:
        _HTTP = httpx.AsyncClient(
            timeout=15.0, limits=httpx.Limits(max_connections=32, max_keepalive_connections=8)
        )
    return _HTTP
