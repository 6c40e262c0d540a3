"""A grading job as data: the side files it carries and the record of one that could not be graded."""

from __future__ import annotations

from pathlib import Path

from grader import jobs
from grader.jobs import Job, side_files, ungraded
from tests.grader.coursegen import _cell, python_notebook


def test_side_files_are_the_data_beside_the_notebooks_within_a_budget(
    tmp_path: Path, monkeypatch
) -> None:
    (tmp_path / "lab.ipynb").write_text("{}")
    (tmp_path / ".hidden").write_bytes(b"x")
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.csv").write_bytes(b"1234")
    (tmp_path / "b.json").write_bytes(b"5678")
    (tmp_path / "c.txt").write_bytes(b"9")
    assert side_files(tmp_path) == {"a.csv": b"1234", "b.json": b"5678", "c.txt": b"9"}
    monkeypatch.setattr(jobs, "MAX_SIDE_FILES", 8)
    assert side_files(tmp_path) == {"a.csv": b"1234", "b.json": b"5678"}  # c.txt is over it
    assert side_files(tmp_path / "missing") == {}


def test_an_ungraded_job_scores_every_graded_cell_zero_with_the_reason() -> None:
    source = python_notebook(
        [
            _cell("solution", "x = 42", "answer"),
            _cell("test", "assert x == 42", "check", points=2),
            _cell("test", "assert x > 0", "positive", points=1),
        ]
    )
    job = Job("learner01", "lab", notebooks=[("lab", source, source, "")])
    result = ungraded(job, "not graded: the cluster failed on it 3 times (KilledWorker)")
    assert result.student == "learner01"
    assert result.problem == "not graded: the cluster failed on it 3 times (KilledWorker)"
    cells = result.notebooks["lab"]
    assert sorted(cells) == ["check", "positive"]
    assert [(c.points, c.max_points, c.status) for c in cells.values()] == [
        (0, 2.0, "error"),
        (0, 1.0, "error"),
    ]
    assert all("KilledWorker" in c.reason for c in cells.values())
