"""Prepare a submission for grading and score its executed cells exactly as nbgrader does.

``prepare`` mirrors the sanitizing half of ``nbgrader autograde`` (ClearOutput, DeduplicateIds,
OverwriteCells with ``add_missing_cells``): a learner cannot weaken a test by editing or deleting
it, because locked cells are restored from the source and missing grade cells are re-inserted,
hidden tests included.  ``determine_grade`` mirrors ``nbgrader.utils.determine_grade`` so the
per-cell points equal nbgrader's gradebook.  Both work on plain data so the sandboxed executor's
outputs can be scored without nbgrader at grading time (only ``prepare`` needs it, to compute
the gradebook view of the source notebook).
"""

from __future__ import annotations

import copy
import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nbformat import NotebookNode

from grader.assignment import (
    compute_checksum,
    is_grade,
    is_locked,
    is_solution,
    is_task,
)

MISSING_NOTICE = (
    "This cell (id:{cell_id}) was missing from the submission. It was added back by nbgrader.\n\n"
)
HIDDEN_BEGIN = "BEGIN HIDDEN TESTS"

STATUSES = ("passed", "failed", "error", "timeout", "killed", "manual")


class ScoringError(ValueError):
    """Scoring input is inconsistent (e.g. outputs for a different number of cells)."""


class TamperedError(ScoringError):
    """The submission's grading metadata contradicts its source where ``nbgrader autograde``
    stops on the notebook instead of repairing it (so nbgrader records no points for it).

    The message names the cell and what differs, never the cell's source."""


_FLAGS = ("grade", "solution", "locked", "task")


def _check_meta(cell: Mapping[str, Any], gid: str) -> None:
    """nbgrader's schema: the flags are booleans and points a number, or it refuses."""
    meta = cell.get("metadata", {}).get("nbgrader", {})
    if "restored" in meta:  # not in nbgrader's schema; ours marks the cells it restores
        raise TamperedError(f"cell {gid!r}: its nbgrader metadata is not in nbgrader's format")
    for flag in _FLAGS:
        if flag in meta and not isinstance(meta[flag], bool):
            raise TamperedError(f"cell {gid!r}: its {flag!r} flag is not true or false")
    points = meta.get("points")
    if "points" in meta and (isinstance(points, bool) or not isinstance(points, (int, float))):
        raise TamperedError(f"cell {gid!r}: its points are not a number")


_SCHEMA: list[Any] = []


def _schema_errors(meta: Mapping[str, Any]) -> bool:
    """True when ``meta`` breaks nbgrader's cell metadata schema (v3), which CheckCellMetadata
    enforces: the flags and points typed, schema_version 3, no other keys, a plain grade_id."""
    if not _SCHEMA:
        import jsonschema
        from nbgrader.nbgraderformat import MetadataValidator

        schema = MetadataValidator().schema
        _SCHEMA.append(jsonschema.validators.validator_for(schema)(schema))
    ours = {k: v for k, v in meta.items() if k != "restored"}  # our own marker, not the learner's
    return not _SCHEMA[0].is_valid(ours)


def _validate(cells: Sequence[Mapping[str, Any]]) -> None:
    """nbgrader's CheckCellMetadata after OverwriteCells: a graded or locked cell without an id,
    a grade cell without points, a markdown cell graded but not an answer (or the reverse), a
    task that is not markdown, or one id twice: nbgrader refuses the notebook."""
    seen: set[object] = set()
    for cell in cells:
        if "nbgrader" not in cell.get("metadata", {}):
            continue
        meta = cell["metadata"]["nbgrader"]
        if not isinstance(meta, Mapping) or _schema_errors(meta):
            if not meta:  # what DeduplicateIds leaves of the earlier copies
                raise TamperedError("a cell with a grade_id appears more than once")
            bad = meta.get("grade_id") if isinstance(meta, Mapping) else None
            raise TamperedError(f"cell {bad!r}: its nbgrader metadata is not in nbgrader's format")
        grade, solution = is_grade(cell), is_solution(cell)
        flagged = grade or solution or bool(meta.get("locked", False))
        gid = meta.get("grade_id")
        if flagged and not gid:
            raise TamperedError("a graded, answer or read-only cell has no grade_id")
        if grade and "points" not in meta:
            raise TamperedError(f"cell {gid!r} is graded but has no points")
        if is_task(cell):
            if cell.get("cell_type") != "markdown":
                raise TamperedError(f"task cell {gid!r} is not a markdown cell")
        elif cell.get("cell_type") == "markdown" and grade != solution:
            raise TamperedError(f"markdown cell {gid!r} must be both graded and an answer")
        if flagged:
            if gid in seen:
                raise TamperedError(f"grade_id {gid!r} appears twice")
            seen.add(gid)


@dataclass(frozen=True)
class PreparedCell:
    """One cell to execute: the text that will run and how it is graded."""

    cell_type: str
    source: str
    grade_id: str | None
    points: float | None
    kind: str
    hidden: bool
    checksum: str | None = None
    restored: bool = False
    solution: bool = False
    grade: bool = False
    locked: bool = False

    def as_cell(self, outputs: Sequence[Mapping[str, Any]] = ()) -> dict[str, Any]:
        """nbformat-like dict of this cell (for nbgrader predicates and checksums)."""
        cell: dict[str, Any] = {"cell_type": self.cell_type, "source": self.source}
        if self.cell_type == "code":
            cell["outputs"] = list(outputs)
        if self.grade_id is not None:
            meta: dict[str, Any] = {
                "grade": self.grade,
                "solution": self.solution,
                "locked": self.locked,
                "grade_id": self.grade_id,
            }
            if self.points is not None:
                meta["points"] = self.points
            if self.checksum is not None:
                meta["checksum"] = self.checksum
            if self.kind == "task":
                meta["task"] = True
            cell["metadata"] = {"nbgrader": meta}
        else:
            cell["metadata"] = {}
        return cell


@dataclass(frozen=True)
class PreparedNotebook:
    """The submission as it will be executed, in order."""

    name: str
    cells: list[PreparedCell] = field(default_factory=list)

    @property
    def code_cells(self) -> list[PreparedCell]:
        """The cells the executor runs, in order."""
        return [c for c in self.cells if c.cell_type == "code"]

    @property
    def graded(self) -> list[PreparedCell]:
        """Cells that carry points."""
        return [c for c in self.cells if c.points is not None]


def _kind(cell: Mapping[str, Any]) -> str:
    from grader.assignment import cell_kind

    return cell_kind(cell)


def _grade_id(cell: Mapping[str, Any]) -> str | None:
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def _dedupe(cells: list[NotebookNode]) -> None:
    """nbgrader's DeduplicateIds: the LAST cell with a grade_id keeps it, earlier ones lose it."""
    seen: set[str] = set()
    for cell in reversed(cells):
        if not (is_grade(cell) or is_solution(cell) or is_locked(cell)):
            continue
        gid = cell.metadata["nbgrader"].get("grade_id")
        if gid in seen:
            cell.metadata["nbgrader"] = {}
        else:
            seen.add(gid)


_STAGES: OrderedDict[tuple[str, str], NotebookNode] = OrderedDict()
_STAGES_LOCK = threading.Lock()


def _gradebook_stage(source_nb: NotebookNode, name: str) -> NotebookNode:
    """nbgrader's gradebook view of a source notebook, computed once per distinct source.

    Every submission of an assignment is prepared against the same source notebook, and running
    nbgrader's preprocessors (with their jsonschema metadata checks) on it costs more than
    executing a typical submission. The result is only read, never changed, by ``prepare``.
    """
    from grader.release import gradebook_stage

    key = (hashlib.sha256(json.dumps(source_nb, sort_keys=True).encode()).hexdigest(), name)
    with _STAGES_LOCK:
        stage = _STAGES.get(key)
        if stage is not None:
            _STAGES.move_to_end(key)
            return stage
    stage = gradebook_stage(source_nb, name)
    with _STAGES_LOCK:
        _STAGES[key] = stage
        while len(_STAGES) > 64:
            _STAGES.popitem(last=False)
    return stage


def prepare(
    source_nb: NotebookNode, submitted_nb: NotebookNode, name: str = "notebook"
) -> PreparedNotebook:
    """Restore tests and locked cells from the source into the submission, in run order.

    Where nbgrader's OverwriteCells repairs a cell (points, locked flag, cell type, an edited
    locked cell, a deleted grade cell) this does too; where nbgrader stops on the notebook (a
    grade or answer flag that differs on a locked cell, a graded cell the source does not grade,
    an unknown grade_id on a graded cell, metadata its schema rejects) this raises
    :class:`TamperedError`, and the notebook scores 0 with that reason.
    """
    stage = _gradebook_stage(source_nb, name)
    sources = {
        _grade_id(c): c
        for c in stage.cells
        if is_grade(c) or is_solution(c) or is_locked(c) or is_task(c)
    }
    source_ids = [_grade_id(c) for c in stage.cells if _grade_id(c) in sources]
    cells = [copy.deepcopy(c) for c in submitted_nb.cells]
    _dedupe(cells)

    kept: list[NotebookNode] = []
    for cell in cells:
        gid = _grade_id(cell)
        if gid is None:
            kept.append(cell)
            continue
        _check_meta(cell, gid)
        src = sources.get(gid)
        if src is None:  # unknown to the gradebook: nbgrader drops the id, the cell is plain
            del cell.metadata["nbgrader"]["grade_id"]
            if is_grade(cell) or is_solution(cell) or is_locked(cell):
                raise TamperedError(f"cell {gid!r} is not part of the assignment")
            kept.append(cell)
            continue
        if cell.cell_type != src.cell_type:
            cell.cell_type = src.cell_type
        meta = cell.metadata["nbgrader"]
        if is_locked(cell) != is_locked(src):
            meta["locked"] = is_locked(src)
        if is_grade(cell):
            if not is_grade(src):
                raise TamperedError(f"cell {gid!r} is marked graded; in the assignment it is not")
            if "points" not in meta:
                raise TamperedError(f"cell {gid!r} is graded but has no points")
            meta["points"] = float(src.metadata["nbgrader"]["points"])
        meta["checksum"] = src.metadata["nbgrader"]["checksum"]
        if is_locked(src) and compute_checksum(cell) != meta["checksum"]:
            cell.source = src.source
            meta["restored"] = True
            if compute_checksum(cell) != meta["checksum"]:  # nbgrader: "Inconsistent checksums"
                raise TamperedError(
                    f"cell {gid!r}: its grade or answer flags differ from the assignment's"
                )
        kept.append(cell)

    # add_missing_cells: re-insert deleted grade cells after the previous source cell
    present = {_grade_id(c): i for i, c in enumerate(kept) if is_grade(c) or is_solution(c)}
    added = 0
    for gid in [g for g in source_ids if is_grade(sources[g])]:
        if gid in present:
            continue
        src = sources[gid]
        pos = source_ids.index(gid)
        notice = MISSING_NOTICE.format(cell_id=gid)
        restored = copy.deepcopy(src)
        restored.source = ("# " if src.cell_type == "code" else "") + notice + src.source
        restored.metadata["nbgrader"]["restored"] = True
        if pos == 0:
            kept.insert(0, restored)
            present[gid] = 0
        else:
            if source_ids[pos - 1] not in present:  # nbgrader fails on it (a KeyError)
                raise TamperedError(
                    f"cell {gid!r} was deleted, and so was the cell it follows "
                    f"({source_ids[pos - 1]!r})"
                )
            prev = present[source_ids[pos - 1]] + added
            kept.insert(prev + 1, restored)
            present[gid] = present[source_ids[pos - 1]]
        added += 1
    _validate(kept)

    prepared = []
    for cell in kept:
        meta = cell.metadata.get("nbgrader", {})
        gid = meta.get("grade_id")
        graded = is_grade(cell) or is_task(cell)
        prepared.append(
            PreparedCell(
                cell_type=cell.cell_type,
                source=cell.source if isinstance(cell.source, str) else "".join(cell.source),
                grade_id=gid,
                points=float(meta["points"]) if graded and gid is not None else None,
                kind=_kind(cell) if gid is not None else cell.cell_type,
                hidden=cell.cell_type == "code" and HIDDEN_BEGIN in cell.source,
                checksum=meta.get("checksum"),
                restored=bool(meta.get("restored", False)),
                solution=is_solution(cell),
                grade=is_grade(cell),
                locked=is_locked(cell),
            )
        )
    return PreparedNotebook(name=name, cells=prepared)


# ---------------------------------------------------------------------------------------------
# grading


def _is_error_output(output: Mapping[str, Any]) -> bool:
    kind = output.get("output_type")
    return kind == "error" or (kind == "stream" and output.get("name") == "stderr")


def _partial(output: Mapping[str, Any], max_points: float) -> float:
    """nbgrader.utils.get_partial_grade: a numeric result in [0, max] is the score."""
    text = output.get("data", {}).get("text/plain")
    if not text:
        raise ScoringError("execute_result has no text/plain")
    if isinstance(text, list):
        if len(text) > 1:
            return max_points
        text = text[0]
    try:
        grade = float(text)
    except ValueError:
        return max_points
    if grade >= 0.0:
        if grade > max_points:
            raise ScoringError("partial credit cannot be greater than maximum points for cell")
        return grade
    return max_points


def determine_grade(
    cell: PreparedCell, outputs: Sequence[Mapping[str, Any]] = ()
) -> tuple[float | None, float]:
    """(points or None when a human must grade, max points), as nbgrader computes them."""
    if cell.points is None or not cell.grade:
        raise ScoringError(f"cell {cell.grade_id!r} is not a grade cell")
    max_points = float(cell.points)
    if cell.solution:
        raw = cell.as_cell()
        if cell.checksum is not None and cell.checksum == compute_checksum(raw):
            return 0, max_points
        return None, max_points
    if cell.cell_type == "code":
        for output in outputs:
            if _is_error_output(output):
                return 0, max_points
            if output.get("output_type") == "execute_result":
                return _partial(output, max_points), max_points
        return max_points, max_points
    return None, max_points


@dataclass(frozen=True)
class CellResult:
    """Score of one graded cell, with a reason a learner may see."""

    grade_id: str
    points: float | None
    max_points: float
    status: str
    reason: str = ""
    hidden: bool = False

    def as_json(self) -> dict[str, Any]:
        """The per-cell shape of the results JSON."""
        return {
            "points": self.points,
            "max_points": self.max_points,
            "status": self.status,
            "reason": self.reason,
        }


def _error_reason(outputs: Sequence[Mapping[str, Any]]) -> tuple[str, str]:
    """(status, one-line reason) from the first error output; never the traceback."""
    for output in outputs:
        if output.get("output_type") == "error":
            ename = str(output.get("ename", "Error"))
            evalue = str(output.get("evalue", "")).strip().splitlines()
            line = f"{ename}: {evalue[0]}" if evalue else ename
            return ("failed" if ename == "AssertionError" else "error"), line[:300]
    for output in outputs:
        if output.get("output_type") == "stream" and output.get("name") == "stderr":
            text = "".join(output.get("text", "")).strip().splitlines()
            return "error", ("wrote to stderr: " + (text[-1] if text else ""))[:300]
    return "error", "error"


def score_cell(
    cell: PreparedCell,
    outputs: Sequence[Mapping[str, Any]] = (),
    outcome: str = "ok",
    reason: str = "",
) -> CellResult:
    """Grade one cell from its executed outputs and the executor's outcome status.

    ``outcome`` is the executor's status (ok, error, timeout, killed, not_run): only ``ok`` can
    score. A cell that raised, timed out, was killed or never ran scores 0 whatever it printed, as
    nbgrader records an error output for each of them.
    """
    gid = cell.grade_id or ""
    max_points = float(cell.points or 0)
    if outcome in ("timeout", "killed") and cell.cell_type == "code" and not cell.solution:
        return CellResult(gid, 0, max_points, outcome, reason or outcome, cell.hidden)
    if outcome == "not_run" and cell.cell_type == "code" and not cell.solution:
        return CellResult(gid, 0, max_points, "error", reason or "not run", cell.hidden)
    if outcome != "ok" and cell.cell_type == "code" and not cell.solution:
        # The supervisor saw the cell fail: its outputs are the learner's to shape (a handler
        # that prints nothing, an exception that cannot be printed), so they never decide.
        status, why = _error_reason(outputs)
        if why == "error" or not any(o.get("output_type") == "error" for o in outputs):
            status = "failed" if reason.startswith("AssertionError") else "error"
            why = reason or "the cell did not run to its end"
        return CellResult(gid, 0, max_points, status, why[:300], cell.hidden)
    try:
        points, max_points = determine_grade(cell, outputs)
    except ScoringError as exc:
        return CellResult(gid, 0, max_points, "error", str(exc), cell.hidden)
    if points is None:
        return CellResult(gid, None, max_points, "manual", "needs manual grading", cell.hidden)
    if cell.solution:  # untouched answer: nbgrader gives 0 without a human
        return CellResult(gid, points, max_points, "failed", "no answer given", cell.hidden)
    if any(_is_error_output(o) for o in outputs):
        status, why = _error_reason(outputs)
        return CellResult(gid, points, max_points, status, why, cell.hidden)
    if points < max_points:
        return CellResult(
            gid,
            points,
            max_points,
            "failed",
            f"partial credit {points:g}/{max_points:g}",
            cell.hidden,
        )
    return CellResult(gid, points, max_points, "passed", "", cell.hidden)


def score_notebook(
    prepared: PreparedNotebook,
    outputs: Sequence[Sequence[Mapping[str, Any]]],
    outcomes: Sequence[str] | None = None,
    reasons: Sequence[str] | None = None,
) -> dict[str, CellResult]:
    """Score every graded cell; ``outputs[i]`` belongs to ``prepared.code_cells[i]``."""
    code = prepared.code_cells
    if len(outputs) != len(code):
        raise ScoringError(f"{prepared.name}: {len(outputs)} outputs for {len(code)} code cells")
    by_cell: dict[int, tuple[Sequence[Mapping[str, Any]], str, str]] = {}
    for i, cell in enumerate(code):
        outcome = outcomes[i] if outcomes else "ok"
        why = reasons[i] if reasons else ""
        by_cell[id(cell)] = (outputs[i], outcome, why)
    results: dict[str, CellResult] = {}
    for cell in prepared.graded:
        if not cell.grade:
            continue
        outs, outcome, why = by_cell.get(id(cell), ((), "ok", ""))
        results[cell.grade_id or ""] = score_cell(cell, outs, outcome, why)
    return results


def results_json(
    scores: Mapping[str, Mapping[str, Mapping[str, CellResult]]],
) -> dict[str, dict[str, dict[str, dict[str, Any]]]]:
    """``{student: {notebook: {grade_id: {points, max_points, status, reason}}}}``."""
    return {
        student: {
            nb: {gid: r.as_json() for gid, r in cells.items()} for nb, cells in notebooks.items()
        }
        for student, notebooks in scores.items()
    }
