"""One submission as a grading job: the data a job carries and the code that grades it.

A :class:`Job` holds everything needed to grade one learner's submission, as data, so the same
:func:`run_job` grades it in this process (``autograde``'s local pool, the platform's grading
worker) or on a Dask worker (:mod:`grader.cluster`). Batches over a course folder live in
:mod:`grader.autograde`; both it and the cluster build on this module, never on each other.
"""

from __future__ import annotations

import errno
import os
import stat
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .assignment import AssignmentError, Course, read_node, reads_node
from .executor import CellSpec, execute
from .language import LANGUAGE_FILE, TRANSLATIONS, notebook_language, translation_path
from .limits import Limits
from .scoring import CellResult, TamperedError, prepare, score_notebook

MAX_SIDE_FILES = 32 * 1024**2
"""Bytes of non-notebook files (data the notebook reads) copied into one sandbox."""


@dataclass
class SubmissionResult:
    """One learner's grades for one assignment, notebook by notebook."""

    student: str
    notebooks: dict[str, dict[str, CellResult]] = field(default_factory=dict)
    seconds: float = 0.0
    problem: str | None = None
    """Set when the submission could not be graded at all (e.g. a notebook that is not JSON)."""
    notes: list[str] = field(default_factory=list)
    """Submitted files that were not used, each with the reason (shown in the feedback)."""


def side_files(folder: Path) -> dict[str, bytes]:
    """Data files beside the notebooks (not the notebooks themselves), within a size budget.

    The course folder, the platform and the course checks copy the same files into a sandbox.
    These are the instructor's files; a learner's go through :func:`submitted_files`."""
    files: dict[str, bytes] = {}
    total = 0
    if not folder.is_dir():
        return files
    for path in sorted(folder.iterdir()):
        if path.is_file() and path.suffix != ".ipynb" and not path.name.startswith("."):
            size = path.stat().st_size
            if total + size > MAX_SIDE_FILES:
                break
            files[path.name] = path.read_bytes()
            total += size
    return files


def _read_plain(path: Path) -> bytes | str:
    """The bytes of a plain file of its own, or why it is left out.

    Opened without following a symlink and without blocking on a FIFO, then checked on the open
    descriptor, so a link swapped in after the listing is not followed either: a symlink, a hard
    link (it may share its inode with a file the learner cannot read), a FIFO or a device is
    never read."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "a symbolic link"
        return f"unreadable ({errno.errorcode.get(exc.errno or 0, 'error')})"
    try:
        st = os.fstat(fd)
        if stat.S_ISFIFO(st.st_mode):
            return "a FIFO"
        if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
            return "a device file"
        if not stat.S_ISREG(st.st_mode):
            return "not a plain file"
        if st.st_nlink != 1:
            return "a hard link"
        with os.fdopen(os.dup(fd), "rb") as fh:
            return fh.read()
    finally:
        os.close(fd)


def submitted_files(
    folder: Path, course_files: Mapping[str, bytes]
) -> tuple[dict[str, bytes], list[str]]:
    """A learner's data files beside the notebooks, and a reason for each one left out.

    As in nbgrader, the course's own file wins over a submitted one of the same name. Only plain
    files are taken (see :func:`_read_plain`): the grader runs as root, so following a link
    would hand the sandbox whatever it points at."""
    files: dict[str, bytes] = {}
    notes: list[str] = []
    budget, total = MAX_SIDE_FILES, 0
    try:
        entries = sorted(folder.iterdir()) if folder.is_dir() else []
    except OSError:
        entries = []
    for path in entries:
        if path.suffix == ".ipynb" or path.name.startswith("."):
            continue
        if path.name in course_files:
            notes.append(f"{path.name}: the course's own file is used, not the submitted one")
            continue
        if not path.is_symlink() and path.is_dir():
            continue
        data = _read_plain(path)
        if isinstance(data, str):
            notes.append(f"{path.name}: left out, {data}")
            continue
        if total + len(data) > budget:
            notes.append(f"{path.name}: left out, over the {budget} bytes allowed for data files")
            continue
        files[path.name] = data
        total += len(data)
    return files, notes


def grade_notebook(
    source_nb: Any,
    submitted_nb: Any,
    name: str,
    *,
    limits: Limits | None = None,
    files: Mapping[str, bytes] | None = None,
) -> dict[str, CellResult]:
    """Grade one submitted notebook against its source notebook: ``{grade_id: CellResult}``.

    The grader's own messages (``grader.checks``) are in the language the source says it is in
    (``metadata.lang``, see :mod:`grader.language`).

    A notebook whose grading metadata nbgrader would refuse scores 0 on every graded cell of
    the source, with the reason, and is not run at all."""
    try:
        prepared = prepare(source_nb, submitted_nb, name)
    except TamperedError as exc:
        return _missing(source_nb, name, f"not graded: {exc}"[:300])
    code = prepared.code_cells
    # the checkers in grader.checks answer in the language of the source graded against
    language = {LANGUAGE_FILE: notebook_language(source_nb).encode()}
    outcomes = execute(
        [CellSpec(c.source, hidden=c.hidden) for c in code],
        files={**(files or {}), **language},
        limits=limits or Limits(),
    )
    return score_notebook(
        prepared,
        [o.outputs for o in outcomes],
        [o.status for o in outcomes],
        [o.reason for o in outcomes],
    )


@dataclass
class Job:
    """Everything needed to grade one submission, as data: it travels to a Dask worker, which
    then needs neither the course folder nor the submissions on its own disk."""

    student: str
    assignment: str
    notebooks: list[tuple[str, Any, Any | None, str]] = field(default_factory=list)
    """(notebook name, source notebook, submitted notebook or None, why it is None)."""
    files: dict[str, bytes] = field(default_factory=dict)
    limits: Limits | None = None
    notes: list[str] = field(default_factory=list)
    """Submitted files left out of ``files``, each with the reason."""


def load_sources(course: Course, assignment: str) -> list[tuple[Path, Any]]:
    """The assignment's source notebooks, read once for a whole batch."""
    return [(p, read_node(p)) for p in course.source_notebooks(assignment)]


def load_job(
    course: Course,
    assignment: str,
    student: str,
    limits: Limits | None = None,
    sources: list[tuple[Path, Any]] | None = None,
) -> Job:
    """Read one learner's submission (and the side files) into a :class:`Job`."""
    job = Job(student, assignment, limits=limits)
    folder = course.submitted_dir(student, assignment)
    course_files = side_files(course.source_dir(assignment))
    own, job.notes = submitted_files(folder, course_files)
    job.files = {**own, **course_files}
    for source_path, source in sources or load_sources(course, assignment):
        name = source_path.stem
        submitted_path, source_in = _submitted_version(folder, source_path)
        if not os.path.lexists(submitted_path):
            job.notebooks.append((name, source, None, f"{source_path.name} was not submitted"))
            continue
        data = _read_plain(submitted_path)
        if isinstance(data, str):  # a link may point at the source notebook, hidden tests and all
            why = f"{submitted_path.name} was not graded: it is {data}; submit the notebook itself"
            job.notebooks.append((name, source, None, why))
            continue
        try:
            if source_in is not None:
                source = read_node(source_in)
            text = data.decode("utf-8")
            job.notebooks.append((name, source, reads_node(text, str(submitted_path)), ""))
        except UnicodeDecodeError:
            why = f"{submitted_path.name} was not graded: it is not UTF-8 text"
            job.notebooks.append((name, source, None, why))
        except AssignmentError as exc:
            job.notebooks.append((name, source, None, str(exc)))
    return job


def _submitted_version(folder: Path, source_path: Path) -> tuple[Path, Path | None]:
    """The learner's copy of ``source_path`` in ``folder`` and, when the learner handed in a
    translation instead (``<stem>.zh-CN.ipynb``), the source of that language to grade it
    against: the same grade ids and points, so the score does not depend on the language."""
    submitted = folder / source_path.name
    if not os.path.lexists(submitted):
        for lang in TRANSLATIONS:
            theirs, ours = translation_path(submitted, lang), translation_path(source_path, lang)
            if os.path.lexists(theirs) and ours.is_file():
                return theirs, ours
    return submitted, None


def run_job(job: Job) -> SubmissionResult:
    """Grade every notebook of a job; a missing or unreadable notebook scores 0 with a reason."""
    started = time.monotonic()
    result = SubmissionResult(job.student, notes=list(job.notes))
    for name, source, submitted, why in job.notebooks:
        if submitted is None:
            result.notebooks[name] = _missing(source, name, why)
            continue
        result.notebooks[name] = grade_notebook(
            source, submitted, name, limits=job.limits, files=job.files
        )
    result.seconds = time.monotonic() - started
    return result


def grade_submission(
    course: Course,
    assignment: str,
    student: str,
    limits: Limits | None = None,
    sources: list[tuple[Path, Any]] | None = None,
) -> SubmissionResult:
    """Every notebook of one learner's submission; a missing notebook scores 0 with a reason."""
    return run_job(load_job(course, assignment, student, limits, sources))


def _missing(source: Any, name: str, why: str) -> dict[str, CellResult]:
    """Zero for every graded cell of a notebook that could not be graded, saying why."""
    prepared = prepare(source, source, name)
    return {
        c.grade_id or "": CellResult(
            c.grade_id or "", 0, float(c.points or 0), "error", why, c.hidden
        )
        for c in prepared.graded
        if c.grade
    }


def ungraded(job: Job, why: str) -> SubmissionResult:
    """A submission that could not be graded (the cluster kept failing on it): every cell 0 with
    the reason, so it is reported, never dropped."""
    result = SubmissionResult(job.student, problem=why, notes=list(job.notes))
    for name, source, _submitted, _why in job.notebooks:
        result.notebooks[name] = _missing(source, name, why)
    return result
