"""The format reader must agree with nbgrader's own predicates and checksum."""

from __future__ import annotations

import itertools
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from grader.assignment import (
    AssignmentError,
    Course,
    compute_checksum,
    is_grade,
    is_locked,
    is_solution,
    is_task,
    parse_node,
    read_notebook,
    reads_node,
)
from tests.grader import coursegen


def _flag_cells() -> list[nbformat.NotebookNode]:
    cells = []
    for cell_type, grade, solution, locked in itertools.product(
        ("code", "markdown"), (True, False), (True, False), (True, False)
    ):
        cell = new_code_cell("x = 1") if cell_type == "code" else new_markdown_cell("text")
        cell.metadata["nbgrader"] = {
            "grade": grade,
            "solution": solution,
            "locked": locked,
            "grade_id": f"c{len(cells)}",
            "points": 1.5,
        }
        cells.append(cell)
    cells.append(new_code_cell("plain"))
    return cells


def test_predicates_and_checksum_match_nbgrader() -> None:
    from nbgrader import utils

    for cell in _flag_cells():
        assert is_grade(cell) == bool(utils.is_grade(cell))
        assert is_solution(cell) == bool(utils.is_solution(cell))
        assert is_locked(cell) == bool(utils.is_locked(cell))
        assert is_task(cell) == bool(utils.is_task(cell))
        if "nbgrader" in cell.metadata:
            assert compute_checksum(cell) == utils.compute_checksum(cell)


def test_parse_source_notebook(tmp_path: Path) -> None:
    coursegen.write_source(tmp_path)
    nb = read_notebook(tmp_path / "source" / coursegen.ASSIGNMENT / "blocks.ipynb")
    assert nb.name == "blocks"
    graded = [(c.grade_id, c.kind, c.points) for c in nb.graded]
    assert graded == [("test_merkle_partial", "test", 4.0), ("test_mine", "test", 1.0)]
    assert nb.cells[0].kind == "markdown" and nb.cells[0].grade_id is None
    assert nb.cells[2].solution and not nb.cells[2].locked


def test_course_layout(tmp_path: Path) -> None:
    coursegen.write_source(tmp_path)
    course = Course(tmp_path)
    assert [p.name for p in course.source_notebooks("ledger")] == ["blocks.ipynb", "hashing.ipynb"]
    assert course.students("ledger") == []
    (tmp_path / "submitted" / "bob" / "ledger").mkdir(parents=True)
    assert course.students("ledger") == ["bob"]


@pytest.mark.parametrize(
    ("meta", "message"),
    [
        ({"grade": True, "solution": False, "locked": True, "points": 1}, "has no grade_id"),
        ({"grade": True, "grade_id": "t", "solution": False, "locked": True}, "has no points"),
        ({"grade": True, "grade_id": "t", "points": "lots"}, "points must be a number"),
        ({"grade": "yes", "grade_id": "t", "points": 1}, "nbgrader.grade must be true or false"),
        ({"grade": True, "grade_id": "t", "points": -1}, "points must be >= 0"),
    ],
)
def test_bad_metadata_is_one_line_error(meta: dict[str, object], message: str) -> None:
    cell = new_code_cell("assert True")
    cell.metadata["nbgrader"] = meta
    with pytest.raises(AssignmentError, match=message) as err:
        parse_node(new_notebook(cells=[cell]), "nb")
    assert "\n" not in str(err.value)


def test_graded_markdown_must_be_solution() -> None:
    cell = new_markdown_cell("answer")
    cell.metadata["nbgrader"] = {"grade": True, "solution": False, "grade_id": "m", "points": 1}
    with pytest.raises(AssignmentError, match="must also be a solution cell"):
        parse_node(new_notebook(cells=[cell]), "nb")


def test_duplicate_grade_id() -> None:
    cells = []
    for _ in range(2):
        cell = new_code_cell("assert True")
        cell.metadata["nbgrader"] = {"grade": True, "grade_id": "same", "points": 1}
        cells.append(cell)
    with pytest.raises(AssignmentError, match="duplicate grade_id 'same' in cells 0 and 1"):
        parse_node(new_notebook(cells=cells), "nb")


@pytest.mark.parametrize("text", ["{not json", '{"cells": 3}', "[]"])
def test_malformed_notebook_is_one_line_error(text: str) -> None:
    with pytest.raises(AssignmentError) as err:
        reads_node(text, "x.ipynb")
    assert str(err.value).startswith("x.ipynb: ") and "\n" not in str(err.value)


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(AssignmentError, match="cannot read"):
        read_notebook(tmp_path / "missing.ipynb")


def test_importing_the_grader_stays_light() -> None:
    """nbgrader and nbformat cost seconds to import; grading workers import grader often."""
    import subprocess
    import sys

    code = (
        "import sys, grader.assignment, grader.release, grader.scoring, grader.results\n"
        "print(sorted(m for m in ('nbgrader', 'nbformat', 'jsonschema') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_imported_modules_of_a_course_feed_a_safe_preload(tmp_path: Path, monkeypatch) -> None:
    """The sandbox preloads what an assignment's notebooks import, but only modules a sandbox
    could import itself: never one that lives in the course folder or the working directory."""
    from grader import executor
    from grader.assignment import imported_modules

    nb = new_notebook(
        cells=[
            new_code_cell("%%time\nimport hashlib, os.path\nfrom json import dumps"),
            new_code_cell("!ls\nimport coursehelper\nfrom . import relative"),
            new_code_cell("def f(:\n    import never_parsed"),
            new_markdown_cell("import markdown_is_not_code"),
            new_code_cell("def g():\n    import hashlib\n    from collections import abc"),
        ]
    )
    path = tmp_path / "source" / "lab" / "lab.ipynb"
    path.parent.mkdir(parents=True)
    nbformat.write(nb, path)
    (tmp_path / "unreadable.ipynb").write_text("{not json")
    found = imported_modules([path, tmp_path / "unreadable.ipynb", tmp_path / "missing.ipynb"])
    assert found == ["hashlib", "os.path", "json", "coursehelper", "collections"]

    (path.parent / "coursehelper.py").write_text("raise SystemExit('must never be imported')\n")
    monkeypatch.syspath_prepend(str(path.parent))
    monkeypatch.setattr(executor, "_COURSE_PRELOAD", [])
    assert executor.preload_for(found) == ["hashlib", "os.path", "json", "collections"]
    assert executor.preload_for(["hashlib", "no_such_module_anywhere"]) == []
    assert executor.preload_modules()[-4:] == ["hashlib", "os.path", "json", "collections"]
