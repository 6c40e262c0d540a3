"""Scoring must give the per-cell points stock ``nbgrader autograde`` records in its gradebook."""

from __future__ import annotations

import shutil
from pathlib import Path

import nbformat
import pytest

from grader.scoring import PreparedCell, determine_grade, prepare, score_cell, score_notebook
from tests.grader import coursegen
from tests.grader.coursegen import nbgrader_cli

COMPAT_STUDENTS = ["correct", "deleted_cells", "edited_tests"]


def _source(course: Path, name: str) -> nbformat.NotebookNode:
    return nbformat.read(course / "source" / coursegen.ASSIGNMENT / f"{name}.ipynb", 4)


def _submitted(course: Path, student: str, name: str) -> nbformat.NotebookNode:
    path = course / "submitted" / student / coursegen.ASSIGNMENT / f"{name}.ipynb"
    return nbformat.read(path, 4)


@pytest.fixture(scope="module")
def autograded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A course folder after the real generate_assignment + autograde on three submissions."""
    course = tmp_path_factory.mktemp("course")
    coursegen.write_source(course)
    coursegen.write_config(course)
    done = nbgrader_cli(course, "generate_assignment", coursegen.ASSIGNMENT, "--force")
    assert done.returncode == 0, done.stderr[-2000:]
    coursegen.write_submissions(course, COMPAT_STUDENTS)
    done = nbgrader_cli(course, "autograde", coursegen.ASSIGNMENT, "--force")
    assert done.returncode == 0, done.stderr[-3000:]
    return course


def test_points_equal_nbgrader_gradebook(autograded: Path) -> None:
    from nbgrader.api import Gradebook

    course = autograded
    compared = 0
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        for student in COMPAT_STUDENTS:
            for name in coursegen.NOTEBOOKS:
                prepared = prepare(_source(course, name), _submitted(course, student, name), name)
                ran = nbformat.read(
                    course / "autograded" / student / coursegen.ASSIGNMENT / f"{name}.ipynb", 4
                )
                ran_code = [c for c in ran.cells if c.cell_type == "code"]
                # the very same text runs, in the same order, as under nbgrader
                assert [c.source for c in prepared.code_cells] == [c.source for c in ran_code]
                assert [c.source for c in prepared.cells] == [c.source for c in ran.cells]
                ours = score_notebook(prepared, [c.outputs for c in ran_code])
                stock = gb.find_submission_notebook(name, coursegen.ASSIGNMENT, student)
                theirs = {g.name: (g.auto_score, g.max_score) for g in stock.grades}
                assert {k: (r.points, r.max_points) for k, r in ours.items()} == theirs, (
                    student,
                    name,
                )
                compared += len(theirs)
    assert compared == 3 * 5


def test_compat_fixture_covers_every_outcome(autograded: Path) -> None:
    """Guard that the comparison above is not trivially all-passing."""
    course = autograded
    seen = set()
    for student in COMPAT_STUDENTS:
        for name in coursegen.NOTEBOOKS:
            prepared = prepare(_source(course, name), _submitted(course, student, name), name)
            ran = nbformat.read(
                course / "autograded" / student / coursegen.ASSIGNMENT / f"{name}.ipynb", 4
            )
            outs = [c.outputs for c in ran.cells if c.cell_type == "code"]
            seen |= {r.status for r in score_notebook(prepared, outs).values()}
    assert {"passed", "failed", "manual"} <= seen


def _test_cell(points: float = 4.0) -> PreparedCell:
    return PreparedCell("code", "x", "t", points, "test", False, grade=True, locked=True)


OUTPUT_CASES = [
    [],
    [{"output_type": "stream", "name": "stdout", "text": "hi\n"}],
    [{"output_type": "stream", "name": "stderr", "text": "warn\n"}],
    [{"output_type": "error", "ename": "AssertionError", "evalue": "", "traceback": []}],
    [{"output_type": "execute_result", "data": {"text/plain": "2"}, "metadata": {}}],
    [{"output_type": "execute_result", "data": {"text/plain": "2.5"}, "metadata": {}}],
    [{"output_type": "execute_result", "data": {"text/plain": "'abc'"}, "metadata": {}}],
    [{"output_type": "execute_result", "data": {"text/plain": "-1"}, "metadata": {}}],
    [{"output_type": "execute_result", "data": {"text/plain": ["1", "2"]}, "metadata": {}}],
    [
        {"output_type": "display_data", "data": {"text/plain": "0"}, "metadata": {}},
        {"output_type": "execute_result", "data": {"text/plain": "0"}, "metadata": {}},
    ],
]


@pytest.mark.parametrize("outputs", OUTPUT_CASES)
def test_determine_grade_matches_nbgrader(outputs: list[dict[str, object]]) -> None:
    from nbgrader import utils

    cell = _test_cell()
    node = nbformat.from_dict(cell.as_cell(outputs))
    assert determine_grade(cell, outputs) == utils.determine_grade(node)


def test_partial_credit_above_max_is_an_error_not_a_crash() -> None:
    out = [{"output_type": "execute_result", "data": {"text/plain": "9"}, "metadata": {}}]
    result = score_cell(_test_cell(), out)
    assert (result.points, result.status) == (0, "error")


def test_statuses_and_reasons() -> None:
    cell = _test_cell(2)
    boom = [{"output_type": "error", "ename": "ValueError", "evalue": "bad\nmore", "traceback": []}]
    assert score_cell(cell, boom).as_json() == {
        "points": 0,
        "max_points": 2.0,
        "status": "error",
        "reason": "ValueError: bad",
    }
    fail = [{"output_type": "error", "ename": "AssertionError", "evalue": "x", "traceback": []}]
    assert score_cell(cell, fail).status == "failed"
    assert score_cell(cell, [], "timeout", "cell exceeded 5 s").as_json()["status"] == "timeout"
    assert score_cell(cell, [], "killed").points == 0
    assert score_cell(cell, []).status == "passed"


def test_prepare_restores_edited_and_deleted_tests(tmp_path: Path) -> None:
    from grader.release import release

    coursegen.write_source(tmp_path)
    release(tmp_path, coursegen.ASSIGNMENT)
    coursegen.write_submissions(tmp_path, ["edited_tests", "deleted_cells"])
    src = _source(tmp_path, "hashing")
    edited = prepare(src, _submitted(tmp_path, "edited_tests", "hashing"), "hashing")
    by_id = {c.grade_id: c for c in edited.cells if c.grade_id}
    assert "edited by the learner" not in by_id["test_sha_empty"].source
    assert (
        by_id["test_sha_hidden"].hidden
        and coursegen.HIDDEN_SECRET in by_id["test_sha_hidden"].source
    )
    assert by_id["test_sha_hidden"].restored
    deleted = prepare(src, _submitted(tmp_path, "deleted_cells", "hashing"), "hashing")
    ids = [c.grade_id for c in deleted.cells if c.grade_id]
    assert ids == ["setup", "sha_hex", "test_sha_empty", "test_sha_hidden", "explain_collision"]
    assert [c.kind for c in deleted.graded] == ["test", "test", "manual"]


def test_unanswered_manual_cell_scores_zero_and_answered_needs_a_human(tmp_path: Path) -> None:
    from grader.release import release

    coursegen.write_source(tmp_path)
    release(tmp_path, coursegen.ASSIGNMENT)
    coursegen.write_submissions(tmp_path, ["partly_wrong", "correct"])
    src = _source(tmp_path, "hashing")
    for student, expected in (("partly_wrong", (0, "failed")), ("correct", (None, "manual"))):
        prepared = prepare(src, _submitted(tmp_path, student, "hashing"), "hashing")
        outs = [[] for _ in prepared.code_cells]
        result = score_notebook(prepared, outs)["explain_collision"]
        assert (result.points, result.status) == expected


def test_outputs_must_match_code_cells(tmp_path: Path) -> None:
    from grader.scoring import ScoringError

    coursegen.write_source(tmp_path)
    shutil.copytree(tmp_path / "source", tmp_path / "release")
    src = _source(tmp_path, "blocks")
    prepared = prepare(src, src, "blocks")
    with pytest.raises(ScoringError, match="1 outputs for 5 code cells"):
        score_notebook(prepared, [[]])


def _scored_course(tmp_path: Path) -> dict[str, dict[str, dict[str, object]]]:
    """Score two learners from synthetic executor outputs (hidden test errors echo its source)."""
    from grader.release import release

    coursegen.write_source(tmp_path)
    release(tmp_path, coursegen.ASSIGNMENT)
    coursegen.write_submissions(tmp_path, ["correct", "raising"])
    scores: dict[str, dict[str, dict[str, object]]] = {}
    for student in ("correct", "raising"):
        scores[student] = {}
        for name in coursegen.NOTEBOOKS:
            prepared = prepare(_source(tmp_path, name), _submitted(tmp_path, student, name), name)
            outputs: list[list[dict[str, object]]] = []
            outcomes = []
            for cell in prepared.code_cells:
                outs: list[dict[str, object]] = []
                outcome = "ok"
                if student == "raising" and cell.kind == "test":
                    outcome = "error"
                    evalue = f"name {coursegen.HIDDEN_SECRET!r} is not defined"
                    outs = [
                        {
                            "output_type": "error",
                            "ename": "NameError" if cell.hidden else "ValueError",
                            "evalue": evalue if cell.hidden else "not yet",
                            "traceback": [cell.source],
                        }
                    ]
                if cell.grade_id == "test_mine" and student == "raising":
                    outcome, outs = "timeout", []
                outputs.append(outs)
                outcomes.append(outcome)
            scores[student][name] = score_notebook(prepared, outputs, outcomes)
    return scores


def test_results_json_csv_and_feedback(tmp_path: Path) -> None:
    import csv
    import html

    from grader.results import export_csv, feedback_html, read_results, write_results

    scores = _scored_course(tmp_path / "course")
    data = read_results(write_results(tmp_path / "out" / "results.json", scores))
    assert data["correct"]["hashing"]["test_sha_hidden"] == {
        "points": 3.0,
        "max_points": 3.0,
        "status": "passed",
        "reason": "",
    }
    assert data["correct"]["hashing"]["explain_collision"]["status"] == "manual"
    assert data["raising"]["blocks"]["test_mine"]["status"] == "timeout"
    assert data["raising"]["hashing"]["test_sha_empty"]["reason"] == "ValueError: not yet"

    exported = export_csv(tmp_path / "grades.csv", "ledger", scores)
    assert exported.read_text().splitlines()[0] == (
        "assignment,timestamp,student_id,raw_score,late_submission_penalty,score,max_score,"
        "needs_manual_grade"
    )
    rows = list(csv.DictReader(exported.open()))
    assert [(r["student_id"], float(r["score"]), float(r["max_score"])) for r in rows] == [
        ("correct", 10.0, 12.0),
        ("raising", 0.0, 12.0),
    ]
    assert rows[0]["needs_manual_grade"] == "1"

    page = feedback_html("raising", "ledger", scores["raising"])
    assert "test_sha_hidden" in page and "hidden test raised NameError" in page
    assert coursegen.HIDDEN_SECRET not in page
    hidden_src = coursegen.hashing_notebook().cells[4].source
    for line in hidden_src.splitlines():
        assert line not in page and line not in html.unescape(page)
    assert "ValueError: not yet" in page
