"""`academy grade release|autograde` as an instructor runs them on an nbgrader course folder."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from tests.grader import coursegen as cg

from .test_chain_cli import one_line_error, run


def test_release_then_autograde_writes_results_csv_and_feedback(tmp_path: Path) -> None:
    course = tmp_path / "course"
    cg.write_source(course)
    proc = run("grade", "release", "--course", str(course), cg.ASSIGNMENT)
    released = sorted(p.name for p in (course / "release" / cg.ASSIGNMENT).glob("*.ipynb"))
    assert released == ["blocks.ipynb", "hashing.ipynb"], proc.stdout
    assert (
        cg.HIDDEN_SECRET not in (course / "release" / cg.ASSIGNMENT / "hashing.ipynb").read_text()
    )
    cg.write_submissions(course, ["correct", "raising", "partly_wrong"])

    results, export, feedback = tmp_path / "r.json", tmp_path / "e.csv", tmp_path / "fb"
    run(
        "grade",
        "autograde",
        "--course",
        str(course),
        cg.ASSIGNMENT,
        "--workers",
        "2",
        "--results",
        str(results),
        "--export",
        str(export),
        "--feedback",
        str(feedback),
    )

    data = json.loads(results.read_text())
    assert set(data) == {"correct", "raising", "partly_wrong"}
    hidden = data["correct"]["hashing"]["test_sha_hidden"]
    assert hidden["status"] == "passed" and hidden["points"] == hidden["max_points"] > 0
    assert data["raising"]["hashing"]["test_sha_hidden"]["status"] in ("error", "failed")
    assert data["raising"]["hashing"]["test_sha_hidden"]["points"] == 0
    assert data["raising"]["hashing"]["test_sha_hidden"]["reason"]

    rows = {r["student_id"]: r for r in csv.DictReader(export.open())}
    assert float(rows["correct"]["raw_score"]) > float(rows["partly_wrong"]["raw_score"])
    assert float(rows["partly_wrong"]["raw_score"]) > float(rows["raising"]["raw_score"])
    pages = list(feedback.rglob("*.html"))
    assert len(pages) == 3
    assert all(cg.HIDDEN_SECRET not in p.read_text() for p in pages)


def test_autograde_errors_are_one_line(tmp_path: Path) -> None:
    course = tmp_path / "course"
    cg.write_source(course)
    assert "no assignment" in one_line_error(
        run("grade", "autograde", "--course", str(course), "nope", check=False)
    )
    assert "nobody submitted" in one_line_error(
        run("grade", "autograde", "--course", str(course), cg.ASSIGNMENT, check=False)
    )


def test_autograde_scheduler_errors_are_one_line(tmp_path: Path) -> None:
    from labs.minichain.ports import free_port

    course = tmp_path / "course"
    for path in cg.write_source(course):  # one learner handed in the source as it is
        folder = course / "submitted" / "learner" / cg.ASSIGNMENT
        folder.mkdir(parents=True, exist_ok=True)
        (folder / path.name).write_bytes(path.read_bytes())
    args = ("grade", "autograde", "--course", str(course), cg.ASSIGNMENT, "--scheduler")
    assert "--scheduler must look like tcp://HOST:PORT" in one_line_error(
        run(*args, "localhost:8786", check=False)
    )
    assert "cannot reach the Dask scheduler" in one_line_error(
        run(*args, f"tcp://127.0.0.1:{free_port()}", check=False)  # a port nobody listens on
    )
