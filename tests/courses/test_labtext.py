"""Lab text: the plain-text form of an nbgrader notebook, and the check that they agree."""

from __future__ import annotations

from pathlib import Path

import pytest
from academy.courses import load_course
from academy.courses.check import _text_problems
from academy.courses.labtext import LabTextError, build_file, build_notebook

TEXT = """# %% md
# Title
# %% readonly setup
import math
# %% solution area
def area(r):
    ### BEGIN SOLUTION
    return math.pi * r * r
    ### END SOLUTION
# %% test test_area 2.5
assert area(1) == math.pi
# %% answer why 1
=== BEGIN MARK SCHEME ===
pi r squared
=== END MARK SCHEME ===
"""


def test_cells_get_nbgrader_roles_and_stable_ids() -> None:
    nb = build_notebook(TEXT)
    kinds = [(c.cell_type, c.metadata.get("nbgrader", {})) for c in nb.cells]
    assert [k for k, _ in kinds] == ["markdown", "code", "code", "code", "markdown"]
    assert kinds[1][1] == {
        "grade": False,
        "solution": False,
        "locked": True,
        "grade_id": "setup",
        "schema_version": 3,
    }
    assert kinds[2][1]["solution"] is True and kinds[2][1]["grade"] is False
    assert kinds[3][1]["points"] == 2.5 and kinds[3][1]["locked"] is True
    assert kinds[4][1]["grade"] is True and kinds[4][1]["solution"] is True
    assert [c.id for c in nb.cells] == ["cell-0", "setup", "area", "test_area", "why"]
    assert build_notebook(TEXT) == nb, "the notebook is a pure function of the text"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("print(1)\n# %% code\nx = 1\n", "text before the first"),
        ("# %% quiz q1\nx\n", "unknown cell kind 'quiz'"),
        ("# %% test t1\nassert 1\n", "write '# %% test <grade_id> <points>'"),
        ("# %% test t1 many\nassert 1\n", "points 'many' is not a number"),
        ("# %% solution a\nx = 1\n# %% test a 1\nassert x\n", "grade_id 'a' used twice"),
        ("# %% code\n\n# %% md\nhi\n", "empty code cell"),
        ("# %% md extra\nhi\n", "takes no arguments"),
    ],
)
def test_malformed_text_is_one_line_with_the_line_number(text: str, message: str) -> None:
    with pytest.raises(LabTextError) as info:
        build_notebook(text, "lab.txt")
    assert message in str(info.value) and str(info.value).startswith("lab.txt:")
    assert "\n" not in str(info.value)


def test_check_notices_a_notebook_not_rebuilt(tmp_path: Path) -> None:
    course = tmp_path / "demo"
    lab = course / "source" / "circle"
    lab.mkdir(parents=True)
    (course / "course.toml").write_text(
        '[course]\nid = "demo"\ntitle = "D"\ntitle_zh = "D"\nsummary = "s"\nsummary_zh = "s"\n'
        'level = "primary"\norder = 1\n[[labs]]\nid = "circle"\ntitle = "C"\ntitle_zh = "C"\n'
    )
    (lab / "lab.toml").write_text('[lab]\nid = "circle"\ntitle = "C"\n')
    (lab / "README.md").write_text("# C\n")
    text = course / "labtext" / "circle.txt"
    text.parent.mkdir()
    text.write_text(TEXT)
    build_file(text, lab / "circle.ipynb")
    loaded = load_course(course)
    assert _text_problems(loaded, loaded.labs[0]) == []
    text.write_text(TEXT.replace("assert area(1) == math.pi", "assert area(2) == 4 * math.pi"))
    (problem,) = _text_problems(loaded, loaded.labs[0])
    assert "is out of date with" in problem and "academy course notebook" in problem
