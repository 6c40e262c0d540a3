"""The benchmarks' process measurements (bench/measuring.py) on real processes."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.measuring import (
    children_running,
    command_line,
    learner_tree,
    pct,
    process_cpu_seconds,
    process_tree,
    pss_mib,
    server_pids,
)

# A parent that starts one child in ``work`` and another elsewhere, then says their pids once
# both interpreters are up (each says so): on a busy host a child measured before that is still
# loading Python, with no memory of its own yet.
PARENT = """
import subprocess, sys
code = "import sys, time; print('up', flush=True); sys.stdout.close(); time.sleep(120)"
sleep = [sys.executable, "-c", code, "bench-child"]
a = subprocess.Popen(sleep, cwd=sys.argv[1], stdout=subprocess.PIPE, text=True)
b = subprocess.Popen(sleep, cwd="/", stdout=subprocess.PIPE, text=True)
assert a.stdout.readline() == "up\\n" and b.stdout.readline() == "up\\n"
print(a.pid, b.pid, flush=True)
a.wait()
"""


@pytest.fixture
def family(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], int, int, Path]]:
    work = tmp_path / "home"
    work.mkdir()
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, str(work)], stdout=subprocess.PIPE, text=True
    )
    assert parent.stdout is not None
    in_work, elsewhere = (int(p) for p in parent.stdout.readline().split())
    try:
        yield parent, in_work, elsewhere, work
    finally:
        for pid in (in_work, elsewhere):
            os.kill(pid, 9)
        parent.wait(30)


def test_a_process_tree_holds_the_process_and_everything_below_it(family) -> None:
    parent, in_work, elsewhere, _work = family
    assert sorted(process_tree(parent.pid)) == sorted([parent.pid, in_work, elsewhere])
    assert process_tree(in_work) == [in_work]
    assert sorted(children_running(parent.pid, "bench-child")) == sorted([in_work, elsewhere])
    assert children_running(parent.pid, "no-such-marker") == []
    assert "bench-child" in command_line(in_work)


def test_a_learners_server_is_found_by_its_folder(family) -> None:
    parent, in_work, _elsewhere, work = family
    assert server_pids(parent.pid, work) == [in_work]
    assert server_pids(parent.pid, work / "nowhere") == []


def test_memory_and_cpu_of_live_and_gone_processes(family) -> None:
    _parent, in_work, _elsewhere, _work = family
    assert pss_mib([in_work]) > 1.0  # a Python interpreter
    assert process_cpu_seconds(os.getpid()) > 0
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    dead = int(gone.stdout)
    assert process_tree(dead) == []
    assert pss_mib([dead]) == 0.0
    assert process_cpu_seconds(dead) == 0.0
    assert command_line(dead) == ""


def test_pct_is_the_nearest_rank_quantile() -> None:
    values = [5.0, 1.0, 4.0, 2.0, 3.0]
    assert (pct(values, 0.0), pct(values, 0.5), pct(values, 0.95), pct(values, 1.0)) == (
        1.0,
        3.0,
        5.0,
        5.0,
    )
    assert math.isnan(pct([], 0.5))


def test_a_learners_tree_reaches_up_to_the_child_of_the_warm_parent(family) -> None:
    """The server in ``work`` is the learner's; so is everything below the parent's parent's
    child it descends from (a jail's relay and its siblings), and nothing beside it."""
    parent, in_work, elsewhere, _work = family
    grandparent = os.getpid()  # the test process plays the warm parent
    assert learner_tree([in_work], [grandparent]) == sorted([parent.pid, in_work, elsewhere])
    # a server that is itself the warm parent's child: only its own tree
    assert learner_tree([in_work], [parent.pid]) == [in_work]
