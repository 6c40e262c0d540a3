"""Per-cell points equal stock ``nbgrader autograde`` on the same course and 30 varied submissions."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from grader.autograde import autograde
from grader.limits import Limits
from tests.grader import coursegen as cg

NBGRADER = Path(sys.executable).parent / "nbgrader"

WRONG = {
    "sha_hex": [
        "def sha_hex(data):\n    return hashlib.md5(data).hexdigest()",
        "def sha_hex(data):\n    raise NotImplementedError('todo')",
        "def sha_hex(data):\n    print('checking', data)\n    return hashlib.sha256(data).hexdigest()",
    ],
    "merkle_root": [
        "def merkle_root(leaves):\n    return H(b''.join(leaves))",
        "def merkle_root(leaves):\n    return leaves[0]",
        "def merkle_root(leaves):\n    return 1 / 0",
    ],
    "mine": [
        "def mine(prefix):\n    return 1",
        "def mine(prefix):\n    return int('x')",
    ],
    "explain_collision": [],
}
MIXES = 23  # + the 7 named variants of coursegen = 30 submissions


def _mix(rng: random.Random, name: str, nb: nbformat.NotebookNode) -> None:
    """A learner who gets some answers right, some wrong, some raising, and may touch tests."""
    for grade_id, good in cg.GOOD.items():
        choice = rng.random()
        wrong = WRONG[grade_id]
        text = good if choice < 0.45 or not wrong else rng.choice(wrong)
        if choice > 0.9 and grade_id == "explain_collision":
            continue  # left as the stub
        try:
            cg._edit(nb, grade_id, text)
        except KeyError:
            continue
    if rng.random() < 0.2:
        test = "test_sha_empty" if name == "hashing" else "test_mine"
        cg._edit(nb, test, "pass  # the learner emptied this test")
    if rng.random() < 0.15 and name == "blocks":
        cg._edit(nb, "test_merkle_partial", None)


def _write_mixes(course: Path, count: int) -> list[str]:
    students = []
    for k in range(count):
        student = f"mix{k:02d}"
        rng = random.Random(k)
        folder = course / "submitted" / student / cg.ASSIGNMENT
        folder.mkdir(parents=True, exist_ok=True)
        for name in cg.NOTEBOOKS:
            nb = nbformat.read(course / "release" / cg.ASSIGNMENT / f"{name}.ipynb", as_version=4)
            _mix(rng, name, nb)
            nbformat.write(nb, folder / f"{name}.ipynb")
        students.append(student)
    return students


@pytest.fixture(scope="module")
def course(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    root = tmp_path_factory.mktemp("compat")
    cg.write_source(root)
    cg.write_config(root)
    env = dict(os.environ, PATH=f"{NBGRADER.parent}{os.pathsep}{os.environ.get('PATH', '')}")
    done = subprocess.run(  # nbgrader's own release records the assignment in its gradebook
        [str(NBGRADER), "generate_assignment", cg.ASSIGNMENT, "--force"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    cg.write_submissions(root)
    students = list(cg.STUDENTS) + _write_mixes(root, MIXES)
    done = subprocess.run(
        [str(NBGRADER), "autograde", cg.ASSIGNMENT, "--force"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return root, students


def test_per_cell_points_equal_stock_nbgrader(course: tuple[Path, list[str]]) -> None:
    from nbgrader.api import Gradebook, MissingEntry

    root, students = course
    assert len(students) >= 30
    ours = autograde(root, cg.ASSIGNMENT, workers=2, limits=Limits(cell_timeout=20))
    compared, mismatches, statuses = 0, [], set()
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
        for student in students:
            for name in cg.NOTEBOOKS:
                try:
                    stock = gb.find_submission_notebook(name, cg.ASSIGNMENT, student)
                except MissingEntry:
                    continue  # nbgrader produced no score here: nothing to compare
                for grade in stock.grades:
                    mine = ours[student].notebooks[name][grade.name]
                    statuses.add(mine.status)
                    compared += 1
                    if (mine.points, mine.max_points) != (grade.auto_score, grade.max_score):
                        mismatches.append(
                            (student, name, grade.name, mine.points, grade.auto_score, mine.reason)
                        )
    assert not mismatches, mismatches
    assert compared >= 30 * 5 - 10
    assert {"passed", "failed", "error", "manual"} <= statuses  # not trivially all-passing
