"""Per-cell points equal stock ``nbgrader autograde`` on the same course and 30 varied submissions."""

from __future__ import annotations

from pathlib import Path

import pytest

from grader.autograde import autograde
from grader.limits import Limits
from tests.grader import coursegen as cg

MIXES = 23  # + the 7 named variants of coursegen = 30 submissions


@pytest.fixture(scope="module")
def course(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    root = tmp_path_factory.mktemp("compat")
    cg.write_source(root)
    cg.write_config(root)
    # nbgrader's own release records the assignment in its gradebook
    done = cg.nbgrader_cli(root, "generate_assignment", cg.ASSIGNMENT, "--force", timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    cg.write_submissions(root)
    students = list(cg.STUDENTS) + cg.write_mixed_submissions(root, MIXES)
    done = cg.nbgrader_cli(root, "autograde", cg.ASSIGNMENT, "--force", timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    return root, students


def test_per_cell_points_equal_stock_nbgrader(course: tuple[Path, list[str]]) -> None:
    root, students = course
    assert len(students) >= 30
    ours = autograde(root, cg.ASSIGNMENT, workers=2, limits=Limits(cell_timeout=20))
    compared, mismatches, statuses = 0, [], set()
    for student, name, grade in cg.stock_grades(root, students):
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
