"""Time per trivial submission in the sandboxed executor, beside a kernel-start anchor.

A submission here is three trivial cells run by ``grader.executor.execute`` (fork of the warm
zygote, namespaces, chroot, rlimits, uid drop, three cells, teardown). The anchor, measured in the
same run, is what a kernel-per-submission design pays before running any cell: a Jupyter kernel
start with ``jupyter_client`` when it is installed, otherwise a cold interpreter that imports
IPython and builds an InteractiveShell (a lower bound on any kernel start).

    .venv/bin/python bench/executor_start.py [--runs 20]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

from grader.executor import CellSpec, Limits, execute, shutdown

CELLS = [CellSpec("a = 1"), CellSpec("b = a + 1"), CellSpec("b", hidden=True)]


def time_submission() -> float:
    t0 = time.perf_counter()
    out = execute(CELLS, limits=Limits())
    elapsed = time.perf_counter() - t0
    assert [o.status for o in out] == ["ok", "ok", "ok"], out
    return elapsed


def time_cold_ipython() -> float:
    """A fresh interpreter that imports IPython, builds a shell and runs one cell."""
    code = (
        "from IPython.core.interactiveshell import InteractiveShell;"
        "InteractiveShell.instance().run_cell('b = 1 + 1')"
    )
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True)
    return time.perf_counter() - t0


def time_kernel_start() -> float | None:
    """nbgrader's per-submission cost before any cell: a Jupyter kernel start (if installed)."""
    try:
        from jupyter_client.manager import start_new_kernel
    except ImportError:
        return None
    t0 = time.perf_counter()
    km, kc = start_new_kernel(stderr=subprocess.DEVNULL)
    elapsed = time.perf_counter() - t0
    kc.stop_channels()
    km.shutdown_kernel(now=True)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    t0 = time.perf_counter()
    time_submission()  # starts the zygote once
    warmup = time.perf_counter() - t0
    ours: list[float] = []
    cold: list[float] = []
    kernel: list[float] = []
    for _ in range(args.runs):  # interleaved so all see the same machine load
        ours.append(time_submission())
        cold.append(time_cold_ipython())
        k = time_kernel_start()
        if k is not None:
            kernel.append(k)
    shutdown()
    mine = statistics.median(ours)
    print(f"zygote start (once per grader process):      {warmup * 1000:8.1f} ms")
    print(f"sandboxed 3-cell submission (median):        {mine * 1000:8.1f} ms")
    anchors = [("cold python + IPython shell + 1 cell", cold)]
    if kernel:
        anchors.insert(0, ("jupyter_client kernel start, no cell", kernel))
    for name, values in anchors:
        theirs = statistics.median(values)
        print(
            f"anchor: {name:37s} {theirs * 1000:8.1f} ms   ratio anchor/ours {theirs / mine:6.1f}x"
        )


if __name__ == "__main__":
    main()
