"""What the benchmarks measure about processes: trees, memory (PSS) and CPU time, and percentiles.

One module for every benchmark, so two hubs (bench/time_to_lab.py's stock hub, bench/ours_hub.py's
own) are measured by the same code. Process trees come from psutil, which reads the parent links
for the whole host: a server forked by a warm parent, or a daemonised chain, is still found.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from pathlib import Path

import psutil


def process_tree(pid: int) -> list[int]:
    """``pid`` and every process below it (empty when ``pid`` is gone)."""
    try:
        root = psutil.Process(pid)
        return [pid, *(child.pid for child in root.children(recursive=True))]
    except psutil.NoSuchProcess:
        return []


def pss_mib(pids: Iterable[int]) -> float:
    """Proportional set size of ``pids`` together, in MiB: pages shared between them (a zygote's,
    a warm parent's) are divided among their sharers, so sums over learners do not double count."""
    total = 0
    for pid in set(pids):
        with contextlib.suppress(psutil.Error):
            total += psutil.Process(pid).memory_full_info().pss
    return total / 1024**2


def server_pids(root: int, home: Path) -> list[int]:
    """A learner's server and its kernels: the processes below ``root`` working in ``home``.

    By folder, not by environment: a server forked from a warm parent shows the parent's
    environment in /proc, not the learner's.
    """
    home = home.resolve()
    out: list[int] = []
    for pid in process_tree(root):
        with contextlib.suppress(psutil.Error, OSError):
            if Path(psutil.Process(pid).cwd()) == home:
                out.append(pid)
    return sorted(set(out))


def learner_tree(pids: Iterable[int], parents: Iterable[int]) -> list[int]:
    """``pids`` with every process of theirs below one of ``parents`` (the warm parent): a
    jailed server's relay and the bubblewrap processes holding its namespaces count as its own."""
    parents, roots = set(parents), set()
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            proc = psutil.Process(pid)
            while proc.ppid() not in parents and proc.ppid() > 1:
                parent = proc.parent()
                if parent is None:
                    break
                proc = parent
            if proc.ppid() in parents:
                roots.add(proc.pid)
    return sorted({*pids, *(p for root in roots for p in process_tree(root))})


def children_running(pid: int, marker: str) -> list[int]:
    """The direct children of ``pid`` whose command line contains ``marker``."""
    found = []
    with contextlib.suppress(psutil.NoSuchProcess):
        for child in psutil.Process(pid).children():
            with contextlib.suppress(psutil.Error):
                if marker in " ".join(child.cmdline()):
                    found.append(child.pid)
    return found


def process_cpu_seconds(pid: int) -> float:
    """User and system CPU time of ``pid`` so far, with that of the children it reaped (0 once
    gone): per learner, it does not depend on what else the host runs."""
    try:
        t = psutil.Process(pid).cpu_times()
    except psutil.Error:
        return 0.0
    return t.user + t.system + t.children_user + t.children_system


def command_line(pid: int) -> str:
    """The command line of ``pid``, space-joined ("" once gone)."""
    try:
        return " ".join(psutil.Process(pid).cmdline())
    except psutil.Error:
        return ""


def pct(values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) of ``values``, nearest rank; nan when there are none."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, int(round(q * (len(ordered) - 1)))))]
