"""The autograde pipeline: prepare a submission like nbgrader, run it sandboxed, score it.

Small steps, each in its own module, in nbgrader's order: ``scoring.prepare`` (restore tests and
locked cells from the source), ``executor.execute`` (every code cell, in one sandboxed interpreter,
no kernel), ``scoring.score_notebook`` (nbgrader's points rules). One submission is a job
(:mod:`grader.jobs`): the same ``grade_notebook`` and ``run_job`` serve the command line (a whole
course folder, here) and the platform (one notebook as it is submitted).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

from .assignment import AssignmentError, Course, imported_modules
from .executor import SandboxError, preload_for, prestart, warm
from .jobs import SubmissionResult, grade_submission, load_job, load_sources
from .limits import Limits


def _warm_sandbox(course: Course, assignment: str) -> None:
    """Preload what the assignment's notebooks import, and let the zygote import and warm up on
    another core while this process reads the sources and imports nbgrader for the first
    submission's preparation (each takes about a second)."""
    with contextlib.suppress(AssignmentError):  # a wrong name: load_sources says so next
        preload_for(imported_modules(course.source_notebooks(assignment)))
    with contextlib.suppress(SandboxError):  # not root, say: the first submission says so
        warm(block=False)


def autograde(
    course_dir: Path | str,
    assignment: str,
    *,
    workers: int = 2,
    limits: Limits | None = None,
    students: list[str] | None = None,
    on_done: Callable[[SubmissionResult], None] | None = None,
    scheduler: str | None = None,
) -> dict[str, SubmissionResult]:
    """Grade every submission of ``assignment`` in a course folder.

    By default on a local pool of ``workers`` threads (each job runs in its own sandbox process);
    with ``scheduler`` (``tcp://host:port``) on that Dask cluster instead. ``on_done`` is called
    exactly once per student, whichever backend ran it and however often.
    """
    course = Course(Path(course_dir))
    if scheduler is None:
        _warm_sandbox(course, assignment)
    sources = load_sources(course, assignment)  # fails early, in one line, on a wrong name
    todo = students if students is not None else course.students(assignment)
    if scheduler is not None:
        from .cluster import autograde_on_cluster

        jobs = (load_job(course, assignment, s, limits, sources) for s in todo)
        on_cluster = autograde_on_cluster(scheduler, jobs, on_done)
        return dict(sorted(on_cluster.items()))
    results: dict[str, SubmissionResult] = {}
    with (
        prestart(limits or Limits(), count=max(1, workers)),
        ThreadPoolExecutor(max_workers=max(1, workers)) as pool,
    ):
        futures = {
            pool.submit(grade_submission, course, assignment, s, limits, sources): s for s in todo
        }
        for future in as_completed(futures):
            result = future.result()
            results[result.student] = result
            if on_done is not None:
                on_done(result)
    return dict(sorted(results.items()))
