"""A warm parent: import the heavy modules once, then fork one child per request on a unix socket.

Starting a Python program that imports py-evm (a chain) or jupyter_server and JupyterLab (a
learner's server) costs seconds of CPU, nearly all of it imports. A parent that has done those
imports forks a child in milliseconds, and every child shares the imported pages copy-on-write, so
a hundred chains or servers pay for the imports once in memory too. The chain zygote
(``labs.sandbox.launcher zygote``) and the hub's server parent (``academy.hub.forkserver``) are both
this loop with their own imports and their own child body.

A request is one JSON line (a dict); the answer is ``{"pid": PID}`` of the child, which runs in its
own session. With ``"log": FILE`` in the request, the child's stdout and stderr go to that file;
otherwise it keeps the parent's. Standard library only: this runs in the node image too.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

Child = Callable[[dict[str, Any]], int]


def serve_forks(
    sock_path: Path,
    child: Child,
    idle_exit: float = 300.0,
    parent_pid: int | None = None,
    check: Callable[[dict[str, Any]], None] | None = None,
) -> int:
    """Answer fork requests on ``sock_path`` until SIGTERM, ``idle_exit`` seconds without a request,
    the socket file's removal (its state folder was deleted), or the death of ``parent_pid``.

    ``check(request)`` runs in the parent and may raise ``KeyError``/``ValueError`` to refuse a
    request (the caller gets ``{"error": ...}``); ``child(request)`` runs in the forked child and
    returns its exit code. Children are reaped here; they outlive this parent.
    """
    import gc

    # Objects that exist now are never collected in the children, so the collector's bookkeeping
    # does not write to (and thereby copy) the pages every child shares with this process.
    gc.collect()
    gc.freeze()

    with contextlib.suppress(FileNotFoundError):
        sock_path.unlink()
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(str(sock_path))
    os.chmod(sock_path, 0o600)
    srv.listen(64)
    srv.settimeout(0.2)
    stopping = False
    last_request = time.monotonic()

    def _stop(signum: int, frame: Any) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    while not stopping and time.monotonic() - last_request < idle_exit and sock_path.exists():
        if parent_pid is not None and os.getppid() != parent_pid:
            break  # whoever started us is gone: so are the callers
        with contextlib.suppress(ChildProcessError):
            while os.waitpid(-1, os.WNOHANG)[0]:
                pass
        try:
            conn, _ = srv.accept()
        except (TimeoutError, InterruptedError):
            continue
        last_request = time.monotonic()
        with conn:
            conn.settimeout(5)
            try:
                request = json.loads(conn.makefile("rb").readline())
                if not isinstance(request, dict):
                    raise ValueError("a request is a JSON object")
                if check is not None:
                    check(request)
            except (OSError, ValueError, KeyError) as exc:
                with contextlib.suppress(OSError):
                    conn.sendall(json.dumps({"error": str(exc)}).encode() + b"\n")
                continue
            pid = os.fork()
            if pid == 0:
                srv.close()
                conn.close()
                _run_child(child, request)
            with contextlib.suppress(OSError):
                conn.sendall(json.dumps({"pid": pid}).encode() + b"\n")
    srv.close()
    with contextlib.suppress(FileNotFoundError):
        sock_path.unlink()
    return 0


def _run_child(child: Child, request: dict[str, Any]) -> None:
    """The forked child: its own session, default signals, its log; never returns."""
    code = 1
    try:
        os.setsid()
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGCHLD):
            signal.signal(sig, signal.SIG_DFL)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        if request.get("log"):
            fd = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            os.dup2(fd, 1)
            os.dup2(fd, 2)
            sys.stdout = os.fdopen(1, "w", buffering=1)
            sys.stderr = os.fdopen(2, "w", buffering=1)
        code = child(request)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException as exc:
        with contextlib.suppress(Exception):
            print(f"forked child: {exc!r}", file=sys.stderr, flush=True)
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


def fork_request(sock_path: Path, request: dict[str, Any], timeout: float = 10.0) -> int:
    """Ask a running parent for a child; returns its pid.

    Raises ``OSError`` when no parent answers there, ``RuntimeError`` when it refused the request.
    """
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(str(sock_path))
        s.sendall(json.dumps(request).encode() + b"\n")
        reply = json.loads(s.makefile("rb").readline() or b"{}")
    if "pid" not in reply:
        raise RuntimeError(f"the warm parent refused: {reply.get('error', 'no answer')}")
    return int(reply["pid"])


def answers(sock_path: Path) -> bool:
    """A parent listens on ``sock_path``."""
    if not sock_path.exists():
        return False
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        try:
            s.connect(str(sock_path))
            return True
        except OSError:
            return False
