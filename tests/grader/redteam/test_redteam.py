"""Hostile submissions from cases.toml against real sandboxes, each beside a benign one.

The cases are data so that the red team can add one without touching code. For every case:
each cell's status is one the case allows, every cell carries a reason, hidden cells the learner
tried to subvert never pass, a benign submission graded at the same time gets exactly the outcome
it gets alone, and no process of the sandbox uids this test process used survives.

``@COURSE@`` in a case's source is a real course folder on the host (gradebook, other learners'
submissions, the source with hidden tests, a results file), each holding ``@SECRET@``: a sandbox
must not be able to see any of it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from grader.executor import CellOutcome, CellSpec, Limits, execute, leftover_pids, uids_taken

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the grading sandbox needs root")

CASES: list[dict[str, Any]] = [
    case
    for case in tomllib.loads((Path(__file__).with_name("cases.toml")).read_text())["case"]
    if "cells" in case  # the others only make sense graded, in test_graded.py
]
BASE = {"cell_timeout": 5.0, "submission_timeout": 60.0, "cpu_seconds": 20}
SECRET = "REDTEAM-SECRET-5f1c0a"
BENIGN = [
    CellSpec("import hashlib\ndef h(d):\n    return hashlib.sha256(d).hexdigest()"),
    CellSpec("print(h(b'abc'))"),
    CellSpec(
        "assert h(b'') == 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'",
        hidden=True,
    ),
    CellSpec("sum(range(10))"),
    CellSpec("assert h(b'abc') == '0' * 64", hidden=True),
]


def _view(outcomes: list[CellOutcome]) -> list[tuple[str, str]]:
    """What scoring reads of a benign run: status and the text of every output."""
    view = []
    for o in outcomes:
        texts = [str(x.get("text") or x.get("data", {}).get("text/plain", "")) for x in o.outputs]
        view.append((o.status, "|".join(texts) + (o.error or {}).get("ename", "")))
    return view


COURSE_FILES = [
    "gradebook.db",
    "results.json",
    "source/lab/lab.ipynb",
    "submitted/other/lab/lab.ipynb",
    "feedback/other/lab/lab.html",
]


@pytest.fixture(scope="module")
def course() -> Iterator[Path]:
    """A course folder on the host, as the grader's own machine has it (not under /tmp: inside a
    sandbox /tmp is its own scratch folder, so a path there would prove nothing)."""
    root = Path(tempfile.mkdtemp(prefix="redteam-course-", dir="/var/tmp"))
    try:
        for rel in COURSE_FILES:
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(f"{SECRET} {rel}")
        yield root
    finally:
        shutil.rmtree(root)


@pytest.fixture(scope="module")
def benign_alone() -> list[tuple[str, str]]:
    view = _view(execute(BENIGN, limits=Limits(**BASE)))
    assert [s for s, _ in view] == ["ok", "ok", "ok", "ok", "error"], view
    return view


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_hostile_submission(
    case: dict[str, Any], course: Path, benign_alone: list[tuple[str, str]]
) -> None:
    limits = Limits(**{**BASE, **case.get("limits", {})})
    cells = [
        CellSpec(
            c["source"].replace("@COURSE@", str(course)).replace("@SECRET@", SECRET),
            hidden=c.get("hidden", False),
        )
        for c in case["cells"]
    ]
    beside: list[list[CellOutcome]] = []
    neighbour = threading.Thread(
        target=lambda: beside.append(execute(BENIGN, limits=Limits(**BASE)))
    )
    neighbour.start()
    try:
        outcomes = execute(cells, limits=limits)
    finally:
        neighbour.join(timeout=120)
    assert len(outcomes) == len(cells)
    for i, (outcome, allowed) in enumerate(zip(outcomes, case["expect"], strict=True)):
        assert outcome.status in allowed, (i, outcome)
        assert outcome.reason, (i, outcome)
    for i in case.get("must_fail", []):
        assert outcomes[i].status != "ok", (i, outcomes[i])
    for i, needle in enumerate(case.get("reason_contains", [])):
        assert needle in outcomes[i].reason, (i, outcomes[i])
    assert beside and _view(beside[0]) == benign_alone, "the benign neighbour's result changed"
    for rel in COURSE_FILES:  # the host's course folder, results and gradebook are untouched
        assert (course / rel).read_text() == f"{SECRET} {rel}", rel
    assert not Path("/var/tmp/results.json").exists()
    assert leftover_pids(uids_taken()) == [], "a sandbox process survived its submission"
