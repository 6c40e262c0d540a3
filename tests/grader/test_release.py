"""The learner version must equal what stock ``nbgrader generate_assignment`` writes."""

from __future__ import annotations

import shutil
from pathlib import Path

import nbformat
import pytest

from grader.assignment import AssignmentError, read_notebook
from grader.release import release
from tests.grader import coursegen
from tests.grader.coursegen import nbgrader_cli


def test_release_matches_nbgrader_generate_assignment(tmp_path: Path) -> None:
    ours = tmp_path / "ours"
    theirs = tmp_path / "theirs"
    coursegen.write_source(ours)
    shutil.copytree(ours / "source", theirs / "source")
    (ours / "source" / coursegen.ASSIGNMENT / "data.txt").write_text("leaf\n")
    (theirs / "source" / coursegen.ASSIGNMENT / "data.txt").write_text("leaf\n")
    coursegen.write_config(theirs)
    done = nbgrader_cli(theirs, "generate_assignment", coursegen.ASSIGNMENT, "--force")
    assert done.returncode == 0, done.stderr[-2000:]

    written = release(ours, coursegen.ASSIGNMENT)
    assert sorted(p.name for p in written) == ["blocks.ipynb", "data.txt", "hashing.ipynb"]
    for name in coursegen.NOTEBOOKS:
        mine = nbformat.read(ours / "release" / coursegen.ASSIGNMENT / f"{name}.ipynb", 4)
        stock = nbformat.read(theirs / "release" / coursegen.ASSIGNMENT / f"{name}.ipynb", 4)
        assert len(mine.cells) == len(stock.cells)
        for a, b in zip(mine.cells, stock.cells, strict=True):
            assert a.source == b.source
            assert a.metadata == b.metadata  # nbgrader block, deletable/editable
            assert a.get("outputs") == b.get("outputs")
        assert mine == stock  # whole notebook, cell ids included
    released = (ours / "release" / coursegen.ASSIGNMENT / "hashing.ipynb").read_text()
    assert coursegen.HIDDEN_SECRET not in released
    assert "BEGIN SOLUTION" not in released
    assert (ours / "release" / coursegen.ASSIGNMENT / "data.txt").read_text() == "leaf\n"


def test_release_parses_back_with_checksums(tmp_path: Path) -> None:
    coursegen.write_source(tmp_path)
    release(tmp_path, coursegen.ASSIGNMENT)
    nb = read_notebook(tmp_path / "release" / coursegen.ASSIGNMENT / "hashing.ipynb")
    kinds = {c.grade_id: c.kind for c in nb.cells if c.grade_id}
    assert kinds == {
        "setup": "readonly",
        "sha_hex": "solution",
        "test_sha_empty": "test",
        "test_sha_hidden": "test",
        "explain_collision": "manual",
    }
    assert all(c.checksum for c in nb.cells if c.grade_id)
    assert nb.max_points == 7.0


def test_unclosed_hidden_region_is_one_line_error(tmp_path: Path) -> None:
    coursegen.write_source(tmp_path)
    path = tmp_path / "source" / coursegen.ASSIGNMENT / "hashing.ipynb"
    nb = nbformat.read(path, 4)
    nb.cells[4].source = "assert True\n### BEGIN HIDDEN TESTS\nassert 1"
    nbformat.write(nb, path)
    with pytest.raises(AssignmentError, match="No end hidden tests") as err:
        release(tmp_path, coursegen.ASSIGNMENT)
    assert "\n" not in str(err.value)


def test_missing_assignment_is_one_line_error(tmp_path: Path) -> None:
    with pytest.raises(AssignmentError, match="no assignment 'nope'"):
        release(tmp_path, "nope")
