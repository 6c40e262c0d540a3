"""Per-sandbox CPU accounting: a fair share of the CPUs and a clock that stops while starved.

A cell's time limit is wall time, as in nbgrader, but wall time alone makes a verdict depend on
the neighbours: a submission that forks busy processes takes the CPUs from every other sandbox on
the host, and a cell that fits its limit alone times out beside it. So each sandbox gets

* **its own cgroup**, which the scheduler treats as one entity however many processes it holds:
  a hog's 30 processes get the share of one sandbox, not 30 (cgroup v2 ``cpu.weight`` where the
  host delegates the cpu controller, else a cgroup v1 ``cpu`` hierarchy's ``cpu.shares``);
* **a stall clock**: the time all of the sandbox's runnable tasks waited for a CPU at once (the
  cgroup's pressure-stall ``full`` total, ``cpu.pressure``). The supervisor moves a cell's
  deadline back by that much, so a cell is timed as if it had had a CPU whenever it wanted one:
  a sleeping cell still times out on the wall clock, a busy one on its own progress. The
  stretch is capped (``Limits.wall_factor``) so a starved sandbox still ends;
* **its CPU time** (the cgroup's ``cpu.stat``): the sandbox's processes together, not each
  process's RLIMIT_CPU, are held to ``Limits.cpu_seconds``.

Without a writable cgroup v2 hierarchy (no pressure stall information) the stall clock falls back
to the scheduler's run-queue delay of the sandbox's main process (``/proc/PID/schedstat``), which
covers cells that compute in the interpreter itself but not in processes they fork, and CPU time
is what the kernel reports for the sandbox's reaped processes plus RLIMIT_CPU on each one.
:func:`host_mode` says which parts this host gives.

The supervisor moves the sandbox into its groups while the sandbox builds its jail, before any
learner code. Moving a process into a cgroup v2 group waits for an RCU grace period (a few
milliseconds) unless the hierarchy is mounted with ``favordynmods``; that wait overlaps the jail.
"""

from __future__ import annotations

import contextlib
import functools
import os
from dataclasses import dataclass

GROUP = "chainacademy-sandboxes"


@dataclass(frozen=True)
class HostCgroups:
    """What this host lets the grader use (found once per process)."""

    v2: str | None  # our parent group in the cgroup v2 hierarchy, when we may create groups
    pressure: bool  # the v2 groups report cpu.pressure (pressure stall information)
    v2_cpu: bool  # cpu controller enabled for our v2 groups: cpu.weight applies
    v1_cpu: str | None  # our parent group in a cgroup v1 ``cpu`` hierarchy, when usable

    def describe(self) -> str:
        share = (
            "cgroup v2 cpu.weight"
            if self.v2_cpu
            else "cgroup v1 cpu.shares"
            if self.v1_cpu
            else "none (processes compete one by one)"
        )
        clock = (
            "cgroup v2 cpu.pressure (all tasks of the sandbox)"
            if self.pressure
            else "/proc/PID/schedstat run delay (main process only)"
        )
        cpu = "cgroup v2 cpu.stat" if self.v2 else "reaped rusage + RLIMIT_CPU per process"
        return f"fair share: {share}; stall clock: {clock}; CPU time: {cpu}"


def _mounts() -> list[tuple[str, str, set[str]]]:
    found = []
    with open("/proc/self/mounts") as fh:
        for line in fh:
            _dev, point, fstype, opts, *_ = line.split()
            found.append((point, fstype, set(opts.split(","))))
    return found


def _make_parent(root: str) -> str | None:
    path = os.path.join(root, GROUP)
    try:
        os.makedirs(path, exist_ok=True)
    except OSError:
        return None
    return path if os.access(os.path.join(path, "cgroup.procs"), os.W_OK) else None


def _enable_v2_cpu(root: str, parent: str) -> bool:
    """Turn the cpu controller on for our groups (only where the host delegates it)."""
    try:
        with open(os.path.join(root, "cgroup.controllers")) as fh:
            if "cpu" not in fh.read().split():
                return False
        for where in (root, parent):
            with open(os.path.join(where, "cgroup.subtree_control"), "w") as fh:
                fh.write("+cpu")
    except OSError:
        return False
    return True


@functools.cache
def host() -> HostCgroups:
    """Probe the host once: which cgroup hierarchies are mounted and writable by us."""
    if os.geteuid() != 0:
        return HostCgroups(None, False, False, None)
    mounts = _mounts()
    v2 = v1 = None
    v2_root = next((p for p, t, _o in mounts if t == "cgroup2"), None)
    if v2_root is not None:
        v2 = _make_parent(v2_root)
    pressure = v2 is not None and os.path.exists(os.path.join(v2, "cpu.pressure"))
    v2_cpu = v2 is not None and v2_root is not None and _enable_v2_cpu(v2_root, v2)
    if not v2_cpu:
        v1_root = next((p for p, t, o in mounts if t == "cgroup" and "cpu" in o), None)
        if v1_root is not None:
            v1 = _make_parent(v1_root)
    return HostCgroups(v2, pressure, v2_cpu, v1)


def host_mode() -> str:
    """One line for operators and benchmarks: what CPU accounting this host gives."""
    return host().describe()


class SandboxCpu:
    """The CPU view of one sandbox: its cgroups (if any) and its clocks, as read by root.

    The clock files stay open and are read with ``pread`` at offset 0 (the kernel renders them
    afresh each time): the supervisor reads them while it waits for every cell.
    """

    def __init__(self, name: str, pid: int) -> None:
        self.pid = pid
        cg = host()
        self.dirs: list[str] = []
        self.cpu_base = 0.0
        self._stat_fd = self._stall_fd = -1
        for parent in (cg.v2, cg.v1_cpu):
            if parent is None:
                continue
            path = os.path.join(parent, name)
            try:
                try:
                    os.mkdir(path)
                    fresh = True
                except FileExistsError:  # left by a grader that crashed: it keeps its counts
                    fresh = False
                with open(os.path.join(path, "cgroup.procs"), "w") as fh:
                    fh.write(str(pid))
            except OSError:  # the host took the hierarchy away meanwhile: do without it
                continue
            self.dirs.append(path)
            if parent == cg.v2:
                self._stat_fd = os.open(os.path.join(path, "cpu.stat"), os.O_RDONLY | os.O_CLOEXEC)
                if cg.pressure:
                    pressure = os.path.join(path, "cpu.pressure")
                    self._stall_fd = os.open(pressure, os.O_RDONLY | os.O_CLOEXEC)
                if not fresh:
                    self.cpu_base = self.cpu_seconds()
        self._schedstat = False
        if self._stall_fd < 0:  # the main process's run-queue delay instead
            with contextlib.suppress(OSError):
                self._stall_fd = os.open(f"/proc/{pid}/schedstat", os.O_RDONLY | os.O_CLOEXEC)
                self._schedstat = True

    def stalled(self) -> float:
        """Seconds so far during which the sandbox wanted a CPU and had none."""
        if self._stall_fd < 0:
            return 0.0
        try:
            text = os.pread(self._stall_fd, 4096, 0).decode()
            if self._schedstat:
                return int(text.split()[1]) / 1e9
            for line in text.splitlines():
                if line.startswith("full "):
                    return int(line.rsplit("total=", 1)[1]) / 1e6
        except (OSError, ValueError, IndexError):
            pass
        return 0.0

    def cpu_seconds(self) -> float:
        """CPU seconds all of the sandbox's processes used so far (0.0 without a v2 group)."""
        if self._stat_fd < 0:
            return 0.0
        try:
            text = os.pread(self._stat_fd, 4096, 0).decode()
            for line in text.splitlines():
                if line.startswith("usage_usec "):
                    return int(line.split()[1]) / 1e6 - self.cpu_base
        except (OSError, ValueError):
            pass
        return 0.0

    def remove(self) -> None:
        """Remove the sandbox's groups (call once its processes are gone)."""
        for fd in (self._stat_fd, self._stall_fd):
            if fd >= 0:
                os.close(fd)
        self._stat_fd = self._stall_fd = -1
        for path in self.dirs:
            with contextlib.suppress(OSError):
                os.rmdir(path)
