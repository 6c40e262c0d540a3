"""Resource limits for one sandboxed submission.

Kept apart from the executor so that callers (the job queue, the CLI, course config) can build and
validate limits without importing the sandbox machinery.
"""

from __future__ import annotations

from dataclasses import dataclass, fields


@dataclass(frozen=True)
class Limits:
    """What one submission may use; every field is enforced outside the learner's control.

    Wall times and the sandbox's total CPU time are enforced by the supervising process (it kills
    the sandbox); the rest are kernel rlimits or a size-capped tmpfs set before learner code runs,
    so learner code cannot raise them.
    """

    cell_timeout: float = 30.0  # wall seconds per cell, nbgrader's default
    submission_timeout: float = 300.0  # wall seconds for all cells of one submission
    cpu_seconds: int = 120  # all the sandbox's processes together (a cgroup), and each (RLIMIT_CPU)
    memory_bytes: int = 2 * 1024**3  # RLIMIT_AS (address space) per process
    max_processes: int = 32  # RLIMIT_NPROC for the sandbox's own uid (threads count too)
    max_file_bytes: int = 16 * 1024**2  # RLIMIT_FSIZE: largest file learner code may write
    max_output_bytes: int = 1024**2  # output kept per submission (Python-level and fd-level each)
    scratch_bytes: int = 64 * 1024**2  # size of the private tmpfs scratch folder (disk fillers)
    # A cell's wall time does not count while its sandbox waits for a CPU (grader.cgroups), up to
    # this many times cell_timeout in all: the same verdict beside a busy neighbour, and an end.
    wall_factor: float = 4.0

    def __post_init__(self) -> None:
        for name in (f.name for f in fields(self)):
            if getattr(self, name) <= 0:
                raise ValueError(f"Limits.{name} must be positive, got {getattr(self, name)!r}")
        if self.wall_factor < 1:
            raise ValueError(f"Limits.wall_factor must be at least 1, got {self.wall_factor!r}")
