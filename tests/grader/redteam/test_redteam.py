"""Hostile submissions from cases.toml against real sandboxes.

The cases are data so that the red team can add one without touching code. For every case:
each cell's status is one the case allows, every cell carries a reason, hidden cells the learner
tried to subvert never pass, and no process of a sandbox uid survives.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

import pytest

from grader.executor import CellSpec, Limits, execute, pids_of_uids, uids_taken

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the grading sandbox needs root")

CASES: list[dict[str, Any]] = tomllib.loads((Path(__file__).with_name("cases.toml")).read_text())[
    "case"
]
BASE = {"cell_timeout": 5.0, "submission_timeout": 30.0, "cpu_seconds": 20}


def sandbox_pids() -> list[int]:
    """Pids of processes whose real uid belongs to this test process's sandboxes."""
    return pids_of_uids(uids_taken())


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_hostile_submission(case: dict[str, Any]) -> None:
    limits = Limits(**{**BASE, **case.get("limits", {})})
    cells = [CellSpec(c["source"], hidden=c.get("hidden", False)) for c in case["cells"]]
    outcomes = execute(cells, limits=limits)
    assert len(outcomes) == len(cells)
    for i, (outcome, allowed) in enumerate(zip(outcomes, case["expect"], strict=True)):
        assert outcome.status in allowed, (i, outcome)
        assert outcome.reason, (i, outcome)
    for i in case.get("must_fail", []):
        assert outcomes[i].status != "ok", (i, outcomes[i])
    for i, needle in enumerate(case.get("reason_contains", [])):
        assert needle in outcomes[i].reason, (i, outcomes[i])
    assert sandbox_pids() == []
