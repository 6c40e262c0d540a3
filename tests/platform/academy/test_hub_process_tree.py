"""What ``academy up`` stops: the hub's whole process tree, and when a process counts as gone."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from academy.hub.launcher import _alive, _descendants

# A child that starts a grandchild, says its pid, and waits for it.
PARENT = """
import subprocess, sys
g = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
print(g.pid, flush=True)
g.wait()
"""


def test_descendants_are_every_process_below_not_the_process_itself() -> None:
    child = subprocess.Popen([sys.executable, "-c", PARENT], stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    grandchild = int(child.stdout.readline())
    try:
        assert set(_descendants(os.getpid())) >= {child.pid, grandchild}
        assert set(_descendants(child.pid)) == {grandchild}
        assert _descendants(grandchild) == []
    finally:
        os.kill(grandchild, signal.SIGKILL)
        child.wait(30)
    assert _descendants(child.pid) == []  # gone (and reaped)


def test_a_zombie_counts_as_gone() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    assert _alive(child.pid)
    os.kill(child.pid, signal.SIGKILL)
    os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)  # dead, not yet reaped: a zombie
    assert not _alive(child.pid)
    child.wait(30)
    assert not _alive(child.pid)
    assert _alive(os.getpid())
