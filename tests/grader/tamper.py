"""Hostile edits of a submission's nbgrader metadata, each applied to a correct submission.

Shared by the prepare tests and the comparison with stock ``nbgrader autograde``: every edit
names the cell it touches in ``coursegen``'s hashing notebook and says what nbgrader does with it
(``restore``: it repairs the cell and grades as usual; ``refuse``: it stops on the notebook and
records no points for it).
"""

from __future__ import annotations

import copy
from collections.abc import Callable

from nbformat import NotebookNode
from nbformat.v4 import new_code_cell


def _cell(nb: NotebookNode, grade_id: str) -> NotebookNode:
    for cell in nb.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == grade_id:
            return cell
    raise KeyError(grade_id)


def _meta(nb: NotebookNode, grade_id: str) -> dict:
    return _cell(nb, grade_id).metadata["nbgrader"]


def points_raised(nb: NotebookNode) -> None:
    _meta(nb, "test_sha_empty")["points"] = 50


def answer_points_raised(nb: NotebookNode) -> None:
    _meta(nb, "explain_collision")["points"] = 99


def grade_cleared(nb: NotebookNode) -> None:
    _meta(nb, "test_sha_hidden")["grade"] = False


def grade_cleared_unlocked(nb: NotebookNode) -> None:
    _meta(nb, "test_sha_hidden").update(grade=False, locked=False)


def solution_on_test(nb: NotebookNode) -> None:
    _meta(nb, "test_sha_empty")["solution"] = True


def grade_on_solution(nb: NotebookNode) -> None:
    _meta(nb, "sha_hex").update(grade=True, points=10)


def grade_on_readonly(nb: NotebookNode) -> None:
    _meta(nb, "setup").update(grade=True, points=10)


def grade_id_changed(nb: NotebookNode) -> None:
    _meta(nb, "test_sha_empty")["grade_id"] = "my_own_test"


def new_grade_cell(nb: NotebookNode) -> None:
    cell = new_code_cell("pass")
    cell.metadata["nbgrader"] = {
        "grade": True,
        "solution": False,
        "locked": True,
        "points": 10,
        "grade_id": "bonus",
        "schema_version": 3,
    }
    nb.cells.append(cell)


def cell_type_changed(nb: NotebookNode) -> None:
    cell = _cell(nb, "test_sha_empty")
    cell.cell_type = "markdown"
    cell.pop("outputs", None)
    cell.pop("execution_count", None)


def locked_edited(nb: NotebookNode) -> None:
    _cell(nb, "test_sha_hidden").source = "pass"


def readonly_edited(nb: NotebookNode) -> None:
    _cell(nb, "setup").source = "import hashlib\nsha_hex = lambda d: 'x'"


def deleted_test(nb: NotebookNode) -> None:
    nb.cells.remove(_cell(nb, "test_sha_hidden"))


def answer_and_test_deleted(nb: NotebookNode) -> None:
    nb.cells.remove(_cell(nb, "sha_hex"))
    nb.cells.remove(_cell(nb, "test_sha_empty"))


def copied_test(nb: NotebookNode) -> None:
    cell = _cell(nb, "test_sha_empty")
    nb.cells.insert(nb.cells.index(cell), copy.deepcopy(cell))


def schema_version_changed(nb: NotebookNode) -> None:
    _meta(nb, "sha_hex")["schema_version"] = 2


def extra_key(nb: NotebookNode) -> None:
    _meta(nb, "test_sha_empty")["bonus"] = 5


def answer_unflagged(nb: NotebookNode) -> None:
    _meta(nb, "explain_collision")["solution"] = False


EDITS: dict[str, tuple[Callable[[NotebookNode], None], str]] = {
    "points_raised": (points_raised, "restore"),
    "answer_points_raised": (answer_points_raised, "restore"),
    "grade_cleared": (grade_cleared, "refuse"),
    "grade_cleared_unlocked": (grade_cleared_unlocked, "refuse"),
    "solution_on_test": (solution_on_test, "refuse"),
    "grade_on_solution": (grade_on_solution, "refuse"),
    "grade_on_readonly": (grade_on_readonly, "refuse"),
    "grade_id_changed": (grade_id_changed, "refuse"),
    "new_grade_cell": (new_grade_cell, "refuse"),
    "cell_type_changed": (cell_type_changed, "restore"),
    "locked_edited": (locked_edited, "restore"),
    "readonly_edited": (readonly_edited, "restore"),
    "deleted_test": (deleted_test, "restore"),
    "answer_and_test_deleted": (answer_and_test_deleted, "refuse"),
    "answer_unflagged": (answer_unflagged, "refuse"),
    "copied_test": (copied_test, "refuse"),
    "schema_version_changed": (schema_version_changed, "refuse"),
    "extra_key": (extra_key, "refuse"),
}
"""name: (edit, what stock nbgrader 0.9.6 does with it)."""
