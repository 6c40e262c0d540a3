"""A learner's files beside the notebooks: the course's own win, and nothing but plain files of
their own is read (the grader runs as root, so a link would hand the sandbox what it points at).
Each file left out is named, with the reason, in the result and the feedback."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from grader import jobs
from grader.assignment import Course
from grader.jobs import Job, load_job, run_job, submitted_files
from grader.results import feedback_html, write_feedback
from tests.grader import coursegen as cg

SECRET = b"instructor-only data 7f3a\n"


@pytest.fixture
def course(tmp_path: Path) -> Path:
    root = tmp_path / "course"
    cg.write_source(root)
    (root / "source" / cg.ASSIGNMENT / "data.csv").write_text("course,data\n")
    folder = root / "submitted" / "learner" / cg.ASSIGNMENT
    folder.mkdir(parents=True)
    (folder / "notes.txt").write_text("mine\n")
    return root


def _folder(root: Path) -> Path:
    return root / "submitted" / "learner" / cg.ASSIGNMENT


def _job(root: Path) -> Job:
    return load_job(Course(root), cg.ASSIGNMENT, "learner", sources=[])


def test_the_course_file_wins_over_a_submitted_one_of_the_same_name(course: Path) -> None:
    (_folder(course) / "data.csv").write_text("forged,data\n")
    job = _job(course)
    assert job.files["data.csv"] == b"course,data\n"
    assert job.files["notes.txt"] == b"mine\n"
    assert any(n.startswith("data.csv: the course's own file is used") for n in job.notes)


@pytest.mark.parametrize("target", ["/etc/passwd", "outside"])
def test_a_symlink_is_never_followed(course: Path, tmp_path: Path, target: str) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_bytes(SECRET)
    pointed = "/etc/passwd" if target == "/etc/passwd" else str(outside)
    (_folder(course) / "leak.txt").symlink_to(pointed)
    job = _job(course)
    assert "leak.txt" not in job.files
    assert all(SECRET not in data and b"root:" not in data for data in job.files.values())
    assert "leak.txt: left out, a symbolic link" in job.notes


def test_a_symlink_named_like_a_course_file_does_not_replace_it(course: Path) -> None:
    (_folder(course) / "data.csv").symlink_to("/etc/passwd")
    assert _job(course).files["data.csv"] == b"course,data\n"


def test_a_hard_link_is_left_out(course: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_bytes(SECRET)
    os.link(outside, _folder(course) / "linked.txt")
    job = _job(course)
    assert "linked.txt" not in job.files
    assert "linked.txt: left out, a hard link" in job.notes


def test_a_fifo_is_left_out_without_blocking(course: Path) -> None:
    os.mkfifo(_folder(course) / "pipe.txt")
    job = _job(course)
    assert "pipe.txt" not in job.files
    assert "pipe.txt: left out, a FIFO" in job.notes


@pytest.mark.skipif(os.geteuid() != 0, reason="making a device node needs root")
def test_a_device_file_is_left_out(course: Path) -> None:
    os.mknod(_folder(course) / "zero.bin", 0o600 | 0o020000, os.makedev(1, 5))
    job = _job(course)
    assert "zero.bin" not in job.files
    assert "zero.bin: left out, a device file" in job.notes


def test_files_over_the_budget_are_named(course: Path, monkeypatch) -> None:
    monkeypatch.setattr(jobs, "MAX_SIDE_FILES", 4)
    (_folder(course) / "big.bin").write_bytes(b"x" * 10)
    files, notes = submitted_files(_folder(course), {})
    assert "big.bin" not in files
    assert any(n.startswith("big.bin: left out, over the 4 bytes") for n in notes)


def test_the_reasons_reach_the_result_and_the_feedback(course: Path, tmp_path: Path) -> None:
    (_folder(course) / "leak.txt").symlink_to("/etc/passwd")
    result = run_job(_job(course))
    assert "leak.txt: left out, a symbolic link" in result.notes
    page = feedback_html("learner", cg.ASSIGNMENT, result.notebooks, result.notes)
    assert "leak.txt: left out, a symbolic link" in page
    paths = write_feedback(
        tmp_path / "feedback", cg.ASSIGNMENT, {"learner": {}}, {"learner": result.notes}
    )
    assert "leak.txt: left out" in paths["learner"].read_text()


@pytest.mark.parametrize("kind", ["symlink", "hardlink"])
def test_a_linked_notebook_is_not_graded(course: Path, kind: str) -> None:
    """A notebook linked to the source would be graded as the instructor's, hidden tests and
    all: it is refused like a linked data file, and every graded cell scores 0 saying why."""
    sources = jobs.load_sources(Course(course), cg.ASSIGNMENT)
    source_path = sources[0][0]
    submitted = _folder(course) / source_path.name
    if kind == "symlink":
        submitted.symlink_to(source_path)
    else:
        os.link(source_path, submitted)
    job = load_job(Course(course), cg.ASSIGNMENT, "learner", sources=sources)
    (name, _source, nb, why), *_ = job.notebooks
    assert nb is None
    linked = "a symbolic link" if kind == "symlink" else "a hard link"
    assert why == f"{source_path.name} was not graded: it is {linked}; submit the notebook itself"
    cells = run_job(job).notebooks[name]
    assert cells and all(r.points == 0 and r.reason == why for r in cells.values())
