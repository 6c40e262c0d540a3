"""Processes that end with the process that started them, however it ended (Linux).

A process started in a session of its own (so that a Ctrl-C at the terminal reaches only its
starter, which then stops it in order) lives on when its starter is killed with SIGKILL: nobody is
left to stop it, and it keeps its ports. ``PR_SET_PDEATHSIG`` asks the kernel to send the child a
signal when its parent dies; SIGTERM is every process's ordinary "stop", so what follows its parent
this way shuts down as cleanly as if it had been told to.

The pitfall: the kernel sends the signal when the *thread* that forked the child ends, not the
process. Start such a child only from a thread that lives as long as its process (the main thread,
or the thread of an event loop); a child started from a pool's worker thread would be stopped when
that thread ends while the process runs on. Processes started from worker threads (the sandbox's
chain zygote, the hub's warm parent) watch their parent by pid instead.

Two ways in: :func:`follow_parent_preexec` for a ``subprocess.Popen`` we call ourselves, and the
command line ``python -m labs.minichain.lifetime --parent PID -- COMMAND ...`` for a program started
by someone else's ``Popen`` (JupyterHub's proxy and services): it sets the signal, then becomes
COMMAND (the setting survives ``exec``). Standard library only: the node image has it too.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import signal
import sys
from collections.abc import Callable

PR_SET_PDEATHSIG = 1


def _prctl() -> Callable[..., int] | None:
    """libc's ``prctl``, looked up now (never in a child between fork and exec); None off Linux."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


def follow_parent(parent: int, sig: int = signal.SIGTERM) -> None:
    """Have this process get ``sig`` when its parent (whose pid is ``parent``) dies.

    A parent that died before this call (between the fork and here) is not waited for: the
    signal comes at once, as it would have a moment later.
    """
    prctl = _prctl()
    if prctl is not None:
        prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
    if os.getppid() != parent:
        os.kill(os.getpid(), sig)


def follow_parent_preexec(sig: int = signal.SIGTERM) -> Callable[[], None]:
    """A ``preexec_fn`` for ``subprocess.Popen``: the child gets ``sig`` when the calling thread
    (see the module docstring) or its process ends."""
    parent = os.getpid()
    prctl = _prctl()

    def preexec() -> None:
        if prctl is not None:
            prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
        if os.getppid() != parent:
            os.kill(os.getpid(), sig)

    return preexec


def following(parent: int, command: list[str], sig: signal.Signals = signal.SIGTERM) -> list[str]:
    """``command`` run so that it gets ``sig`` when process ``parent`` (which starts it) dies."""
    wrapper = [sys.executable, "-m", "labs.minichain.lifetime", "--parent", str(parent)]
    return [*wrapper, "--signal", sig.name, "--", *command]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="labs.minichain.lifetime",
        description="Run COMMAND so that it gets a signal when its parent process dies.",
    )
    parser.add_argument("--parent", type=int, required=True, help="pid of the expected parent")
    parser.add_argument("--signal", default="SIGTERM", help="signal name (default SIGTERM)")
    parser.add_argument("command", nargs="+", help="the program and its arguments")
    args = parser.parse_args(argv)
    try:
        sig = signal.Signals[args.signal if args.signal.startswith("SIG") else "SIG" + args.signal]
    except KeyError:
        parser.error(f"--signal {args.signal}: not a signal name")
    follow_parent(args.parent, sig)
    try:
        os.execvp(args.command[0], args.command)
    except OSError as exc:
        print(f"labs.minichain.lifetime: cannot run {args.command[0]}: {exc}", file=sys.stderr)
        return 127
    return 0  # not reached: exec replaced this process


if __name__ == "__main__":
    sys.exit(main())
