"""Processes that follow their parent's death (labs.minichain.lifetime), on Linux."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap

import psutil
import pytest

from labs.minichain.lifetime import following
from labs.minichain.waiting import wait_until

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG")

DEADLINE = 60.0  # generous: the machine may be busy


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _wait_gone(pids: list[int]) -> list[int]:
    """The pids still running after DEADLINE seconds (none, once all are gone)."""
    with contextlib.suppress(TimeoutError):
        wait_until(lambda: all(_gone(p) for p in pids), DEADLINE)
    return [p for p in pids if not _gone(p)]


def test_children_in_their_own_session_follow_a_parent_killed_with_sigkill() -> None:
    """One child through the ``preexec_fn``, one through the ``python -m`` wrapper (as the hub
    starts its proxy and academy): both outlive nothing, though no one stops them."""
    parent = textwrap.dedent(
        """
        import os, subprocess, sys, time
        from labs.minichain.lifetime import follow_parent_preexec, following
        sleep = [sys.executable, "-c", "import time; time.sleep(300)"]
        a = subprocess.Popen(sleep, preexec_fn=follow_parent_preexec(), start_new_session=True)
        b = subprocess.Popen(following(os.getpid(), sleep), start_new_session=True)
        print(a.pid, b.pid, flush=True)
        time.sleep(300)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", parent], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    children = [int(p) for p in proc.stdout.readline().split()]
    try:
        assert len(children) == 2
        assert not any(_gone(p) for p in children)  # they run while their parent runs
        proc.kill()
        proc.wait()
        assert _wait_gone(children) == []
    finally:
        for pid in children:
            if not _gone(pid):
                os.kill(pid, signal.SIGKILL)


def test_a_parent_that_died_before_the_wrapper_ran_is_not_waited_for() -> None:
    """The wrapper finds its parent is not the one it was started for (it died between the fork
    and the wrapper's start): the signal comes at once instead of never."""
    not_my_parent = 1 if os.getpid() != 1 else os.getppid()
    proc = subprocess.Popen(following(not_my_parent, ["sleep", "300"]))
    try:
        assert proc.wait(DEADLINE) == -signal.SIGTERM
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_the_wrapper_becomes_the_command() -> None:
    """exec, not a child: the pid its starter holds is the program's (the hub signals that pid),
    so the program's parent is the starter itself."""
    code = "import os; print(os.getppid())"
    out = subprocess.run(
        following(os.getpid(), [sys.executable, "-c", code]),
        capture_output=True,
        text=True,
        check=True,
    )
    assert int(out.stdout) == os.getpid()
