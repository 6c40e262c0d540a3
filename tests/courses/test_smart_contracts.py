"""Course 3's hidden tests tell a real fix from a contract that merely still works.

``academy course check`` proves that the reference answers get full marks and the starters zero.
These tests hand the grader answers that *look* right: the vulnerable contracts of the exploit lab
submitted unchanged as "fixes", and the wasteful contract submitted as "optimised". They still
behave, so their behaviour tests pass; every exploit test and every gas budget must fail.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path

import pytest

from grader.assignment import read_node
from grader.jobs import grade_notebook
from grader.limits import Limits

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the grading sandbox needs root")

LABS = Path(__file__).resolve().parents[2] / "courses" / "smart-contracts" / "source"
LIMITS = Limits(cell_timeout=120.0, submission_timeout=600.0, cpu_seconds=300)


def _cells(lab: str) -> dict[str, str]:
    """Source text of every nbgrader cell of a lab's notebook, by grade id."""
    nb = read_node(LABS / lab / f"{lab}.ipynb")
    return {
        c.metadata["nbgrader"]["grade_id"]: c.source for c in nb.cells if "nbgrader" in c.metadata
    }


def _points(lab: str, answers: dict[str, str]) -> dict[str, float]:
    """Grade the lab's notebook with some solution cells replaced by ``answers``."""
    source = read_node(LABS / lab / f"{lab}.ipynb")
    submitted = copy.deepcopy(source)
    for cell in submitted.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id in answers:
            cell.source = answers.pop(grade_id)
    assert not answers, f"no such cells: {sorted(answers)}"
    results = grade_notebook(source, submitted, lab, limits=LIMITS)
    return {grade_id: result.points or 0 for grade_id, result in results.items()}


def test_unpatched_contracts_pass_behaviour_but_no_exploit_test() -> None:
    vulnerable = _cells("exploit-levels")
    answers = {
        "bank_fixed": vulnerable["bank_source"],
        "treasury_fixed": vulnerable["treasury_source"],
        "wallet_fixed": vulnerable["wallet_source"],
        "vault_fixed": vulnerable["vault_source"],
    }
    assert _points("fix-levels", answers) == {
        "test_bank_behaviour": 2,
        "test_bank_hidden": 0,
        "test_treasury_behaviour": 2,
        "test_treasury_hidden": 0,
        "test_wallet_behaviour": 2,
        "test_wallet_hidden": 0,
        "test_vault_behaviour": 2,
        "test_vault_hidden": 0,
    }


def test_unoptimised_contract_passes_behaviour_but_not_the_gas_budget() -> None:
    naive = _cells("gas-optimisation")["naive_source"]
    answers = {"optimised": naive.replace("LoyaltyNaive.vy", "LoyaltyPoints.vy", 1)}
    assert _points("gas-optimisation", answers) == {
        "test_intrinsic_visible": 1,
        "test_intrinsic_hidden": 1,
        "test_behaviour_visible": 2,
        "test_gas_visible": 0,
        "test_optimised_hidden": 0,
    }
