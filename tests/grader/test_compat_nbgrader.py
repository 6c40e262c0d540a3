"""Per-cell points equal stock ``nbgrader autograde`` on the same course and 30 varied submissions."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from grader.autograde import autograde
from grader.limits import Limits
from tests.grader import coursegen as cg

NBGRADER = Path(sys.executable).parent / "nbgrader"

MIXES = 23  # + the 7 named variants of coursegen = 30 submissions


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
    students = list(cg.STUDENTS) + cg.write_mixed_submissions(root, MIXES)
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
