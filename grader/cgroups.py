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
    """The CPU view of one sandbox: its cgroups (if any) and its clocks, as read by root."""

    def __init__(self, name: str, pid: int) -> None:
        self.pid = pid
        cg = host()
        self.dirs = [os.path.join(p, name) for p in (cg.v2, cg.v1_cpu) if p is not None]
        self.v2 = os.path.join(cg.v2, name) if cg.v2 is not None else None
        self.pressure = cg.pressure
        for path in list(self.dirs):
            try:
                os.makedirs(path, exist_ok=True)
                with open(os.path.join(path, "cgroup.procs"), "w") as fh:
                    fh.write(str(pid))
            except OSError:  # the host took the hierarchy away meanwhile: do without it
                self.dirs.remove(path)
                if path == self.v2:
                    self.v2 = None
        self.cpu_base = 0.0
        self.cpu_base = self.cpu_seconds()  # a group left by a crashed grader keeps its count

    def stalled(self) -> float:
        """Seconds so far during which the sandbox wanted a CPU and had none."""
        try:
            if self.v2 is not None and self.pressure:
                with open(os.path.join(self.v2, "cpu.pressure")) as fh:
                    for line in fh:
                        if line.startswith("full "):
                            return int(line.rsplit("total=", 1)[1]) / 1e6
            with open(f"/proc/{self.pid}/schedstat") as fh:
                return int(fh.read().split()[1]) / 1e9
        except (OSError, ValueError, IndexError):
            pass
        return 0.0

    def cpu_seconds(self) -> float:
        """CPU seconds all of the sandbox's processes used so far (0.0 without a v2 group)."""
        if self.v2 is None:
            return 0.0
        try:
            with open(os.path.join(self.v2, "cpu.stat")) as fh:
                for line in fh:
                    if line.startswith("usage_usec "):
                        return int(line.split()[1]) / 1e6 - self.cpu_base
        except (OSError, ValueError):
            pass
        return 0.0

    def remove(self) -> None:
        """Remove the sandbox's groups (call once its processes are gone)."""
        for path in self.dirs:
            with contextlib.suppress(OSError):
                os.rmdir(path)
