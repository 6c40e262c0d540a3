"""A warm parent for learners' JupyterLab servers: the imports once, a fork per spawn.

A single-user server spends ~5 s of CPU before it listens, nearly all of it importing
jupyter_server, JupyterLab and their extensions; twenty learners logging in at once on two cores
wait a minute for that alone. This parent imports all of it once, when the hub starts; at each
spawn it forks a child that takes the learner's own environment (hub token, base URL, academy
token, RPC URLs), working folder and arguments, and only then builds its server. It holds nothing
of another learner because the parent never saw one before forking, and the parent runs with a
minimal environment (no hub secrets). With a jail in the request (:mod:`academy.hub.jail`) the
child becomes the relay of the learner's jail and the server is forked once more, into the
learner's namespaces and user: the imported pages are shared all the same.

    python -m academy.hub.forkserver --socket PATH [--parent PID]

The loop is :func:`labs.sandbox.forkserver.serve_forks`; :class:`WarmParent` starts and asks it.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from academy.hub.jail import Jail, jail
from labs.minichain.waiting import wait_until
from labs.sandbox.forkserver import answers, fork_request, serve_forks

#: what a learner's server imports before it listens (the server extensions it loads included)
PRELOAD = (
    "jupyterhub.singleuser",
    "jupyterhub.singleuser.extension",
    "jupyter_server.serverapp",
    "jupyter_server.services.kernels.kernelmanager",
    "jupyter_server.services.contents.largefilemanager",
    "jupyterlab.labapp",
    "jupyterlab.handlers.announcements",
    "jupyterlab_server",
    "jupyter_lsp.serverextension",
    "jupyter_server_terminals.app",
    "notebook.app",
    "academy.learner.server_extension",
    # imported while a server initializes (its handlers, the kernel machinery, JupyterLab's
    # extension manager): measured with a profile of one server start after the lines above
    "IPython.core.interactiveshell",
    "httpx",
    "jinja2.ext",
    "tornado.platform.asyncio",
    "jupyter_lsp.virtual_documents_shadow",
    "jupyterlab.extensions.readonly",
    "jupyter_server.kernelspecs.handlers",
    "jupyter_server.nbconvert.handlers",
    "jupyter_server.view.handlers",
    *(
        f"jupyter_server.services.{name}.handlers"
        for name in (
            [
                "api",
                "config",
                "contents",
                "events",
                "kernels",
                "kernelspecs",
                "nbconvert",
                "security",
                "sessions",
            ]
        )
    ),
    "jupyter_server.services.shutdown",
    # the relay of a jailed server reads the learner's chains (academy.hub.jail): the manager
    # and the backend it builds, or each relay imports them as its server starts
    "labs.sandbox.manager",
    "labs.sandbox.process",
)

#: variables the parent keeps from the hub's environment (everything else, secrets included, stays out)
KEEP_ENV = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "PYTHONPATH", "VIRTUAL_ENV", "TMPDIR")

#: a learner's request may not pick another single-user application: the parent imported this one
_APP_VARS = ("JUPYTERHUB_SINGLEUSER_APP", "JUPYTERHUB_SINGLEUSER_EXTENSION")


def preload() -> list[str]:
    """Import what a server needs; returns the modules that failed (optional extensions)."""
    missing = []
    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    return missing


def _check(request: dict[str, Any]) -> None:
    argv, env, cwd = request["argv"], request["env"], request["cwd"]
    if not (isinstance(argv, list) and isinstance(env, dict) and isinstance(cwd, str)):
        raise ValueError("a spawn request is {argv: [...], env: {...}, cwd: '...'}")
    if any(env.get(k) for k in _APP_VARS):
        raise ValueError("the warm parent runs the default single-user app only")
    if request.get("jail") is not None:
        Jail.from_json(json.dumps(request["jail"]))  # every field there and of its type


def _server(request: dict[str, Any]) -> int:
    """The forked child: become the learner's server (runs until the hub stops it), or, with
    ``"jail"`` in the request, the relay of a server in the learner's jail (:mod:`.jail`)."""
    os.environ.clear()
    os.environ.update({str(k): str(v) for k, v in request["env"].items()})
    sys.argv = [str(a) for a in request["argv"]]
    if request.get("jail") is not None:
        return jail(Jail.from_json(json.dumps(request["jail"])), _singleuser)
    cwd = Path(request["cwd"])
    cwd.mkdir(parents=True, exist_ok=True)
    os.chdir(cwd)
    return _singleuser()


def _singleuser() -> int:
    from jupyterhub.singleuser import main

    main()
    return 0


def serve(sock_path: Path, parent_pid: int | None = None) -> int:
    missing = preload()
    if missing:
        print(f"forkserver: not preloaded (not installed): {', '.join(missing)}", flush=True)
    return serve_forks(
        sock_path, _server, idle_exit=float("inf"), parent_pid=parent_pid, check=_check
    )


class WarmParent:
    """The hub's side: start the parent once (in the background), then fork servers through it."""

    def __init__(self, sock_path: Path, start_timeout: float = 120.0) -> None:
        self.sock_path = sock_path
        self.start_timeout = start_timeout
        self._lock = threading.Lock()
        self._proc: subprocess.Popen | None = None

    def start(self) -> None:
        """Start the parent unless it answers already; returns at once (it imports meanwhile)."""
        with self._lock:
            if self._proc is not None and self._proc.poll() is None:
                return
            if answers(self.sock_path):
                return
            self.sock_path.parent.mkdir(parents=True, exist_ok=True)
            env = {k: os.environ[k] for k in KEEP_ENV if k in os.environ}
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "academy.hub.forkserver", "--socket", str(self.sock_path)]
                + ["--parent", str(os.getpid())],
                env=env,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # a Ctrl-C at the hub's terminal is the hub's to handle
            )

    def ready(self, timeout: float | None = None) -> bool:
        """Wait (blocking) until the parent answers; False when it died or took too long."""
        self.start()

        def up() -> bool:
            if answers(self.sock_path):
                return True
            if self._proc is not None and self._proc.poll() is not None:
                raise ChildProcessError  # the parent died: no point waiting
            return False

        try:
            return wait_until(up, self.start_timeout if timeout is None else timeout, interval=0.05)
        except (TimeoutError, ChildProcessError):
            return False

    def spawn(
        self, argv: list[str], env: dict[str, str], cwd: str, jail: Jail | None = None
    ) -> int:
        """Fork a learner's server (in ``jail`` if given); returns its pid. Raises
        ``OSError``/``RuntimeError`` if the parent cannot (the caller then starts it otherwise)."""
        if not self.ready():
            raise OSError(f"no warm parent answers at {self.sock_path}")
        request: dict[str, Any] = {"argv": argv, "env": env, "cwd": cwd}
        if jail is not None:
            request["jail"] = json.loads(jail.to_json())
        return fork_request(self.sock_path, request)

    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None and self._proc.poll() is None else None

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(10)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="academy.hub.forkserver", description=__doc__)
    parser.add_argument("--socket", type=Path, required=True)
    parser.add_argument("--parent", type=int, default=None, help="exit when this process is gone")
    args = parser.parse_args(argv)
    return serve(args.socket, args.parent)


if __name__ == "__main__":
    sys.exit(main())
