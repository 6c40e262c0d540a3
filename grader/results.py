"""Grading outputs: the results JSON, a gradebook CSV like ``nbgrader export``, HTML feedback.

Feedback goes to learners, so it must never leak a hidden test: it shows test names, points and
failure messages only, never any cell source, and for a hidden test it keeps an exception's
message only when it is the instructor's own assert message (an AssertionError).
"""

from __future__ import annotations

import csv
import html
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from grader.scoring import CellResult, results_json

# {student: {notebook: {grade_id: CellResult}}}
Scores = Mapping[str, Mapping[str, Mapping[str, CellResult]]]

NBGRADER_EXPORT_COLUMNS = [
    "assignment",
    "timestamp",
    "student_id",
    "raw_score",
    "late_submission_penalty",
    "score",
    "max_score",
]
"""Columns of ``nbgrader export``'s grade CSV, in its order, that every gradebook export here
starts with (this one and the platform's cohort gradebook), so a sheet made for nbgrader reads
either."""

CSV_COLUMNS = [*NBGRADER_EXPORT_COLUMNS, "needs_manual_grade"]


def write_results(path: Path | str, scores: Scores) -> Path:
    """Write ``{student: {notebook: {grade_id: {...}}}}`` as JSON (sorted, stable diffs)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results_json(scores), indent=2, sort_keys=True) + "\n")
    return path


def totals(cells: Mapping[str, Mapping[str, CellResult]]) -> tuple[float, float, int]:
    """(score, max score, cells needing manual grading); ungraded cells count 0, as nbgrader."""
    score = sum(r.points or 0.0 for nb in cells.values() for r in nb.values())
    max_score = sum(r.max_points for nb in cells.values() for r in nb.values())
    manual = sum(1 for nb in cells.values() for r in nb.values() if r.points is None)
    return score, max_score, manual


def export_csv(
    path: Path | str,
    assignment: str,
    scores: Scores,
    timestamps: Mapping[str, str] | None = None,
) -> Path:
    """One row per student with the assignment total, in ``nbgrader export``'s column style."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        for student in sorted(scores):
            score, max_score, manual = totals(scores[student])
            writer.writerow(
                {
                    "assignment": assignment,
                    "timestamp": (timestamps or {}).get(student, ""),
                    "student_id": student,
                    "raw_score": score,
                    "late_submission_penalty": 0.0,
                    "score": score,
                    "max_score": max_score,
                    "needs_manual_grade": manual,
                }
            )
    return path


FEEDBACK: dict[str, dict[str, str]] = {
    "zh-CN": {
        "feedback_for": "{assignment}：{student} 的评分反馈",
        "score": "得分",
        "awaiting": "（{n} 部分等待人工评分）",
        "test": "测试",
        "points": "分值",
        "status": "状态",
        "message": "说明",
        "files_not_used": "未使用的文件",
        "hidden_raised": "隐藏测试抛出了 {ename}",
        "hidden_failed": "隐藏测试未通过",
        "passed": "通过",
        "failed": "未通过",
        "error": "出错",
        "timeout": "超时",
        "killed": "被终止",
        "manual": "待人工评分",
        "not_run": "未运行",
    },
}
"""The feedback page's own words in each language but English (which is written out below)."""

_ENGLISH = {
    "feedback_for": "{assignment} feedback for {student}",
    "score": "Score",
    "awaiting": " ({n} part(s) awaiting manual grading)",
    "test": "test",
    "points": "points",
    "status": "status",
    "message": "message",
    "files_not_used": "Files not used",
    "hidden_raised": "hidden test raised {ename}",
    "hidden_failed": "hidden test failed",
}


def _word(language: str, key: str, **fields: object) -> str:
    text = FEEDBACK.get(language, {}).get(key) or _ENGLISH.get(key, key)
    return text.format(**fields)


def learner_reason(result: CellResult, language: str = "en") -> str:
    """The failure message a learner may see for this cell (in ``language`` where the grader
    itself words it; a test's own message is in the language of the notebook it came from)."""
    if not result.hidden or result.status in ("passed", "timeout", "killed", "manual"):
        return result.reason
    if result.status == "failed" and result.reason.startswith("AssertionError"):
        return result.reason
    if result.reason.startswith("partial credit"):
        return result.reason
    ename = result.reason.split(":", 1)[0].strip()
    if ename.isidentifier():
        return _word(language, "hidden_raised", ename=ename)
    return _word(language, "hidden_failed")


def _fmt(points: float | None) -> str:
    return "—" if points is None else f"{points:g}"


def feedback_html(
    student: str,
    assignment: str,
    cells: Mapping[str, Mapping[str, CellResult]],
    notes: Sequence[str] = (),
    language: str = "en",
) -> str:
    """A self-contained HTML page: per notebook, each test's name, points, status and message;
    then ``notes``, e.g. submitted files that were left out and why. Its own words are in
    ``language`` (``en`` or ``zh-CN``), the language of the notebook graded."""
    score, max_score, manual = totals(cells)
    esc = html.escape
    lang = language if language in FEEDBACK else "en"
    parts = [
        "<!doctype html>",
        f'<html lang="{lang}"><head><meta charset="utf-8">',
        f"<title>{esc(_word(lang, 'feedback_for', assignment=assignment, student=student))}</title>",
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left}"
        ".passed{color:#176317}.failed,.error,.timeout,.killed{color:#a11}</style>",
        "</head><body>",
        f"<h1>{esc(assignment)}: {esc(student)}</h1>",
        f"<p>{esc(_word(lang, 'score'))}: <strong>{score:g} / {max_score:g}</strong>"
        + (esc(_word(lang, "awaiting", n=manual)) if manual else "")
        + "</p>",
    ]
    for notebook in sorted(cells):
        results = cells[notebook]
        nb_score = sum(r.points or 0.0 for r in results.values())
        nb_max = sum(r.max_points for r in results.values())
        parts.append(f"<h2>{esc(notebook)} — {nb_score:g} / {nb_max:g}</h2>")
        heads = "".join(
            f"<th>{esc(_word(lang, k))}</th>" for k in ("test", "points", "status", "message")
        )
        parts.append(f"<table><tr>{heads}</tr>")
        for grade_id, result in results.items():
            parts.append(
                f'<tr class="{esc(result.status)}"><td>{esc(grade_id)}</td>'
                f"<td>{_fmt(result.points)} / {result.max_points:g}</td>"
                f"<td>{esc(_word(lang, result.status))}</td>"
                f"<td>{esc(learner_reason(result, lang))}</td></tr>"
            )
        parts.append("</table>")
    if notes:
        parts.append(f"<h2>{esc(_word(lang, 'files_not_used'))}</h2><ul>")
        parts.extend(f"<li>{esc(note)}</li>" for note in notes)
        parts.append("</ul>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def write_feedback(
    folder: Path | str,
    assignment: str,
    scores: Scores,
    notes: Mapping[str, Sequence[str]] | None = None,
) -> dict[str, Path]:
    """Write ``<folder>/<student>/<assignment>.html`` for every student; return the paths.

    ``notes`` holds, per student, what the grader left out of the submission and why."""
    out: dict[str, Path] = {}
    for student, cells in scores.items():
        path = Path(folder) / student / f"{assignment}.html"
        path.parent.mkdir(parents=True, exist_ok=True)
        page = feedback_html(student, assignment, cells, (notes or {}).get(student, ()))
        path.write_text(page, encoding="utf-8")
        out[student] = path
    return out


def read_results(path: Path | str) -> dict[str, Any]:
    """Load a results JSON written by :func:`write_results`."""
    return json.loads(Path(path).read_text())
