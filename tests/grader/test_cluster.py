"""autograde on a real Dask cluster on loopback: a scheduler and two workers, one killed -9 while
it holds jobs. Every submission is graded exactly once, with the same points as the local pool."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest

from grader.autograde import autograde
from grader.cluster import ClusterError, autograde_on_cluster
from grader.executor import SANDBOX_UIDS, leftover_pids
from grader.limits import Limits
from labs.minichain.waiting import wait_until
from tests.grader.coursegen import KERNELSPEC, _cell

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the grading sandbox needs root")

ASSIGNMENT = "slow"
STUDENTS = [f"learner{i:02d}" for i in range(16)]


def _notebook(answer: str) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook(metadata={"kernelspec": KERNELSPEC})
    nb.cells = [
        _cell("solution", answer, "answer"),
        _cell("test", "assert x == 42", "check", points=2),
    ]
    return nb


def write_course(root: Path) -> dict[str, float]:
    """Each submission sleeps 0.5 s, so the batch is still running when a worker is killed."""
    source = root / "source" / ASSIGNMENT
    source.mkdir(parents=True)
    nbformat.write(_notebook("### BEGIN SOLUTION\nx = 42\n### END SOLUTION"), source / "lab.ipynb")
    expected = {}
    for i, student in enumerate(STUDENTS):
        folder = root / "submitted" / student / ASSIGNMENT
        folder.mkdir(parents=True)
        value = 42 if i % 3 else 41
        nbformat.write(
            _notebook(f"import time\ntime.sleep(0.5)\nx = {value}"), folder / "lab.ipynb"
        )
        expected[student] = 2.0 if value == 42 else 0.0
    return expected


def _spawn(*args: str, log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as fh:
        return subprocess.Popen(
            [sys.executable, "-m", *args],
            stdout=fh,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[tuple[str, list[subprocess.Popen[bytes]]]]:
    info = tmp_path / "scheduler.json"
    log = tmp_path / "cluster.log"
    procs = [
        _spawn(
            "distributed.cli.dask_scheduler",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--no-dashboard",
            "--dashboard-address",
            "127.0.0.1:0",  # its HTTP server still listens: loopback
            "--scheduler-file",
            str(info),
            log=log,
        )
    ]
    try:
        wait_until(info.exists, 60, message=lambda: log.read_text()[-3000:])
        for _ in range(2):
            procs.append(
                _spawn(
                    "distributed.cli.dask_worker",
                    "--scheduler-file",
                    str(info),
                    "--host",
                    "127.0.0.1",
                    "--nthreads",
                    "2",
                    "--no-nanny",
                    "--no-dashboard",
                    "--dashboard-address",
                    "127.0.0.1:0",
                    "--preload",
                    "grader.autograde",
                    log=log,
                )
            )
        import json

        yield json.loads(info.read_text())["address"], procs
    finally:
        for proc in reversed(procs):
            if proc.poll() is None:
                proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    wait_until(
        lambda: leftover_pids(SANDBOX_UIDS) == [],
        10,
        interval=0.2,
        message="a sandbox process outlived its worker",
    )


def test_a_worker_killed_mid_batch_loses_nothing_and_counts_nothing_twice(
    tmp_path: Path, cluster: tuple[str, list[subprocess.Popen[bytes]]]
) -> None:
    from distributed import Client

    address, procs = cluster
    root = tmp_path / "course"
    expected = write_course(root)
    watcher = Client(address, timeout="30s")
    watcher.wait_for_workers(2, timeout=60)
    pid_of = watcher.run(os.getpid)  # {worker address: pid}
    by_pid = {p.pid: p for p in procs[1:]}
    killed: list[tuple[int, list[str]]] = []
    done: Counter[str] = Counter()

    def kill_one_busy_worker() -> None:
        """SIGKILL the first worker seen holding jobs, once the batch has started."""
        while not killed and len(done) < len(STUDENTS):
            for addr, keys in watcher.processing().items():
                pid = pid_of.get(addr)
                if keys and len(done) >= 2 and pid in by_pid:
                    by_pid[pid].send_signal(signal.SIGKILL)
                    killed.append((pid, list(keys)))
                    return
            time.sleep(0.05)

    killer = threading.Thread(target=kill_one_busy_worker)
    killer.start()
    try:
        graded = autograde(
            root,
            ASSIGNMENT,
            scheduler=address,
            limits=Limits(cell_timeout=20),
            on_done=lambda r: done.update([r.student]),
        )
    finally:
        killer.join(timeout=60)
        watcher.close()
    assert killed, "no worker was killed while it held jobs"
    pid, keys = killed[0]
    assert by_pid[pid].wait(timeout=10) == -signal.SIGKILL
    assert keys, "the killed worker held no jobs"
    assert set(graded) == set(STUDENTS)
    assert all(n == 1 for n in done.values()) and set(done) == set(STUDENTS)
    for student, result in graded.items():
        cell = result.notebooks["lab"]["check"]
        assert cell.points == expected[student], (student, cell)
        assert result.problem is None
    # the killed worker's jobs were graded elsewhere
    held = {k.split("-")[2] for k in keys}
    assert held <= set(graded)
    assert len(pid_of) == 2  # both workers had joined before the batch


def test_an_unreachable_scheduler_is_one_clear_error() -> None:
    from labs.minichain.ports import free_port

    port = free_port()
    with pytest.raises(ClusterError, match="cannot reach the Dask scheduler at tcp://127.0.0.1"):
        autograde_on_cluster(f"tcp://127.0.0.1:{port}", [], connect_timeout=1.0)
