"""The source notebook's grading metadata wins over the submission's, as in ``nbgrader autograde``.

Each hostile edit of ``tests.grader.tamper`` is applied to a correct submission. Where nbgrader
repairs the cell, ``prepare`` does too, and the points, maximum and cell kinds are the source's;
where nbgrader stops on the notebook (and records no points), the notebook scores 0 on every
graded cell of the source, with a reason that names the cell and never shows a hidden test. The
last test runs stock nbgrader on the same submissions and compares.
"""

from __future__ import annotations

import copy
from pathlib import Path

import nbformat
import pytest

from grader.jobs import grade_notebook
from grader.scoring import (
    CellResult,
    PreparedNotebook,
    TamperedError,
    prepare,
    score_notebook,
)
from tests.grader import coursegen as cg
from tests.grader.tamper import EDITS

NAME = "hashing"


@pytest.fixture(scope="module")
def course(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from grader.release import release

    root = tmp_path_factory.mktemp("tamper")
    cg.write_source(root)
    release(root, cg.ASSIGNMENT)
    cg.write_submissions(root, ["correct"])
    return root


def _source(root: Path) -> nbformat.NotebookNode:
    return nbformat.read(root / "source" / cg.ASSIGNMENT / f"{NAME}.ipynb", 4)


def _correct(root: Path) -> nbformat.NotebookNode:
    return nbformat.read(root / "submitted" / "correct" / cg.ASSIGNMENT / f"{NAME}.ipynb", 4)


def _tampered(root: Path, edit: str) -> nbformat.NotebookNode:
    nb = copy.deepcopy(_correct(root))
    EDITS[edit][0](nb)
    return nb


def _all_pass(prepared: PreparedNotebook) -> dict[str, CellResult]:
    """Scores as if every code cell ran cleanly (the sandbox is not needed to compare these)."""
    return score_notebook(prepared, [[] for _ in prepared.code_cells])


RESTORED = sorted(e for e, (_, what) in EDITS.items() if what == "restore")
REFUSED = sorted(e for e, (_, what) in EDITS.items() if what == "refuse")


@pytest.mark.parametrize("edit", RESTORED)
def test_repaired_edits_grade_as_the_source_says(course: Path, edit: str) -> None:
    source, honest = _source(course), prepare(_source(course), _correct(course), NAME)
    prepared = prepare(source, _tampered(course, edit), NAME)
    assert [(c.grade_id, c.kind, c.points) for c in prepared.cells if c.grade_id] == [
        (c.grade_id, c.kind, c.points) for c in honest.cells if c.grade_id
    ]
    ours = {g: (r.points, r.max_points) for g, r in _all_pass(prepared).items()}
    assert ours == {g: (r.points, r.max_points) for g, r in _all_pass(honest).items()}
    by_id = {c.grade_id: c for c in prepared.cells if c.grade_id}
    assert cg.HIDDEN_SECRET in by_id["test_sha_hidden"].source  # the hidden test still runs


@pytest.mark.parametrize("edit", REFUSED)
def test_refused_edits_score_zero_with_a_reason(course: Path, edit: str) -> None:
    source = _source(course)
    with pytest.raises(TamperedError):
        prepare(source, _tampered(course, edit), NAME)
    results = grade_notebook(source, _tampered(course, edit), NAME)  # not run: no sandbox
    honest = _all_pass(prepare(source, _correct(course), NAME))
    assert {g: r.max_points for g, r in results.items()} == {
        g: r.max_points for g, r in honest.items()
    }
    assert all(r.points == 0 and r.status == "error" for r in results.values())
    for result in results.values():
        assert result.reason.startswith("not graded: ")
        assert cg.HIDDEN_SECRET not in result.reason and "assert" not in result.reason
    assert [r.hidden for r in results.values()] == [r.hidden for r in honest.values()]


def test_a_points_raise_is_undone(course: Path) -> None:
    prepared = prepare(_source(course), _tampered(course, "points_raised"), NAME)
    assert {c.grade_id: c.points for c in prepared.graded}["test_sha_empty"] == 2.0


def test_a_test_marked_as_answer_is_not_left_to_a_human(course: Path) -> None:
    with pytest.raises(TamperedError, match="test_sha_empty"):
        prepare(_source(course), _tampered(course, "solution_on_test"), NAME)


def test_a_cleared_grade_flag_does_not_lower_the_maximum(course: Path) -> None:
    results = grade_notebook(_source(course), _tampered(course, "grade_cleared"), NAME)
    assert sum(r.max_points for r in results.values()) == 7.0
    assert results["test_sha_hidden"].points == 0


def test_malformed_flags_are_refused(course: Path) -> None:
    nb = _correct(course)
    for cell in nb.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == "test_sha_empty":
            cell.metadata["nbgrader"]["grade"] = "yes"
    with pytest.raises(TamperedError, match="'grade' flag"):
        prepare(_source(course), nb, NAME)


@pytest.fixture(scope="module")
def stock(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Stock nbgrader's generate_assignment and autograde on every edited submission."""
    root = tmp_path_factory.mktemp("tamper_stock")
    cg.write_source(root)
    cg.write_config(root)
    done = cg.nbgrader_cli(root, "generate_assignment", cg.ASSIGNMENT, "--force", timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    cg.write_submissions(root, ["correct"])
    for edit in EDITS:
        folder = root / "submitted" / f"t_{edit}" / cg.ASSIGNMENT
        folder.mkdir(parents=True)
        for name in cg.NOTEBOOKS:
            nb = nbformat.read(root / "submitted" / "correct" / cg.ASSIGNMENT / f"{name}.ipynb", 4)
            if name == NAME:
                EDITS[edit][0](nb)
            nbformat.write(nb, folder / f"{name}.ipynb")
    cg.nbgrader_cli(root, "autograde", cg.ASSIGNMENT, "--force", timeout=900)  # fails on some
    return root


def test_stock_nbgrader_repairs_and_refuses_the_same_edits(stock: Path) -> None:
    root, source = stock, _source(stock)
    stock_points: dict[str, dict[str, tuple[float | None, float]]] = {
        f"t_{edit}": {} for edit in EDITS
    }
    for student, name, grade in cg.stock_grades(root, list(stock_points)):
        if name == NAME:
            stock_points[student][grade.name] = (grade.auto_score, grade.max_score)
    honest_max = {g: r.max_points for g, r in _all_pass(prepare(source, source, NAME)).items()}
    for edit, (_, what) in EDITS.items():
        student = f"t_{edit}"
        submitted = nbformat.read(root / "submitted" / student / cg.ASSIGNMENT / f"{NAME}.ipynb", 4)
        ran_path = root / "autograded" / student / cg.ASSIGNMENT / f"{NAME}.ipynb"
        assert ran_path.exists() == (what == "restore"), edit
        if what == "refuse":  # nbgrader recorded no points (or no notebook): ours are 0 too
            assert all(p in (None, 0) for p, _ in stock_points[student].values()), edit
            results = grade_notebook(source, submitted, NAME)
            assert all(r.points == 0 for r in results.values()), edit
            assert {g: r.max_points for g, r in results.items()} == honest_max, edit
            if stock_points[student]:
                assert {g: m for g, (_, m) in stock_points[student].items()} == honest_max
            continue
        ran = nbformat.read(ran_path, 4)
        prepared = prepare(source, submitted, NAME)
        ran_code = [c for c in ran.cells if c.cell_type == "code"]
        assert [c.source for c in prepared.code_cells] == [c.source for c in ran_code], edit
        ours = score_notebook(prepared, [c.outputs for c in ran_code])
        assert {g: (r.points, r.max_points) for g, r in ours.items()} == stock_points[student]
