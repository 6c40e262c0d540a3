"""The nbgrader assignment format: notebooks, their graded cells and the course folder layout.

Instructors write assignments for nbgrader, so the autograder reads exactly that format: each
cell's ``metadata.nbgrader`` says whether it is a solution, a grade (test) cell, locked or a task,
with a ``grade_id`` and ``points``.  The predicates mirror ``nbgrader.utils`` line by line (a grade
cell is locked unless it is also a solution, and so on) so that a cell means here what it means to
``nbgrader autograde``; nbgrader itself is imported only where its preprocessors are reused,
because importing it costs seconds.

Course folder (nbgrader's default layout)::

    <course>/source/<assignment>/*.ipynb        instructor versions (with solutions)
    <course>/release/<assignment>/*.ipynb       learner versions
    <course>/submitted/<student>/<assignment>/*.ipynb
"""

from __future__ import annotations

import ast
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from grader.language import ENGLISH, is_translation, translation_path

if TYPE_CHECKING:  # nbformat pulls jsonschema (~1 s): imported only where notebooks are read
    from nbformat import NotebookNode

SCHEMA_VERSION = 3


class AssignmentError(ValueError):
    """A notebook or its nbgrader metadata is malformed; the message is one line for the user."""


# ---------------------------------------------------------------------------------------------
# nbgrader's cell predicates (nbgrader/utils.py), on plain dicts or NotebookNodes


def _meta(cell: Mapping[str, Any]) -> Mapping[str, Any] | None:
    return cell.get("metadata", {}).get("nbgrader")


def is_task(cell: Mapping[str, Any]) -> bool:
    """True for a task cell (a manually graded, free-form task)."""
    meta = _meta(cell)
    return bool(meta.get("task", False)) if meta is not None else False


def is_grade(cell: Mapping[str, Any]) -> bool:
    """True for a grade cell: an autograder test, or a manually graded answer if also solution."""
    meta = _meta(cell)
    return bool(meta.get("grade", False)) if meta is not None else False


def is_solution(cell: Mapping[str, Any]) -> bool:
    """True for a cell the learner writes into."""
    meta = _meta(cell)
    return bool(meta.get("solution", False)) if meta is not None else False


def is_locked(cell: Mapping[str, Any]) -> bool:
    """True when the cell's source is restored from the source notebook before grading."""
    meta = _meta(cell)
    if meta is None or is_solution(cell):
        return False
    if is_grade(cell):
        return True
    return bool(meta.get("locked", False))


def compute_checksum(cell: Mapping[str, Any]) -> str:
    """nbgrader's cell checksum: detects an untouched answer (scored 0) or an edited locked cell."""
    meta = _meta(cell) or {}
    m = hashlib.md5()
    m.update(_source(cell).encode("utf-8"))
    m.update(str(cell.get("cell_type")).encode("utf-8"))
    m.update(str(is_grade(cell)).encode("utf-8"))
    m.update(str(is_solution(cell)).encode("utf-8"))
    m.update(str(is_locked(cell)).encode("utf-8"))
    m.update(str(meta["grade_id"]).encode("utf-8"))
    if is_grade(cell):
        m.update(str(float(meta["points"])).encode("utf-8"))
    return m.hexdigest()


def _source(cell: Mapping[str, Any]) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else str(src)


def cell_kind(cell: Mapping[str, Any]) -> str:
    """One word for what a cell is to the grader.

    ``test`` (autograded grade cell), ``manual`` (graded answer needing a human), ``solution``
    (learner code, not graded itself), ``readonly`` (locked), ``task``, or plain ``code`` /
    ``markdown``.
    """
    if is_task(cell):
        return "task"
    if is_grade(cell) and is_solution(cell):
        return "manual"
    if is_grade(cell):
        return "test" if cell.get("cell_type") == "code" else "manual"
    if is_solution(cell):
        return "solution"
    if is_locked(cell):
        return "readonly"
    return str(cell.get("cell_type", "code"))


# ---------------------------------------------------------------------------------------------
# parsed view


@dataclass(frozen=True)
class Cell:
    """One notebook cell with its nbgrader role, as the grader needs it."""

    index: int
    cell_type: str
    source: str
    kind: str
    grade_id: str | None
    points: float | None
    solution: bool
    grade: bool
    locked: bool
    task: bool
    checksum: str | None
    schema_version: int | None


@dataclass(frozen=True)
class Notebook:
    """A parsed assignment notebook: its name (file stem), cells, and the raw nbformat node."""

    name: str
    cells: list[Cell]
    node: NotebookNode

    @property
    def graded(self) -> list[Cell]:
        """Cells that carry points (grade and task cells), in notebook order."""
        return [c for c in self.cells if c.points is not None]

    @property
    def max_points(self) -> float:
        """Total points available in this notebook."""
        return sum(c.points or 0.0 for c in self.graded)


def _check_cell(cell: Mapping[str, Any], index: int, where: str) -> None:
    meta = _meta(cell)
    if meta is None:
        return
    if not isinstance(meta, Mapping):
        raise AssignmentError(f"{where}: cell {index}: metadata.nbgrader must be an object")
    for key in ("grade", "solution", "locked", "task"):
        if key in meta and not isinstance(meta[key], bool):
            raise AssignmentError(f"{where}: cell {index}: nbgrader.{key} must be true or false")
    needs_id = is_grade(cell) or is_solution(cell) or is_locked(cell) or is_task(cell)
    grade_id = meta.get("grade_id")
    if needs_id and (not isinstance(grade_id, str) or not grade_id):
        raise AssignmentError(f"{where}: cell {index}: nbgrader cell has no grade_id")
    if is_grade(cell) or is_task(cell):
        if "points" not in meta:
            raise AssignmentError(f"{where}: cell {index} ({grade_id}): grade cell has no points")
        try:
            points = float(meta["points"])
        except (TypeError, ValueError):
            raise AssignmentError(
                f"{where}: cell {index} ({grade_id}): points must be a number, "
                f"got {meta['points']!r}"
            ) from None
        if points < 0:
            raise AssignmentError(f"{where}: cell {index} ({grade_id}): points must be >= 0")
    markdown_grade = cell.get("cell_type") == "markdown" and is_grade(cell)
    if markdown_grade and not is_task(cell) and not is_solution(cell):
        raise AssignmentError(
            f"{where}: cell {index} ({grade_id}): a graded markdown cell must also be a "
            "solution cell"
        )
    if is_task(cell) and (is_grade(cell) or is_solution(cell)):
        raise AssignmentError(
            f"{where}: cell {index} ({grade_id}): a task cell cannot be a grade or solution cell"
        )


def parse_node(nb: NotebookNode, name: str, where: str | None = None) -> Notebook:
    """Parse an nbformat v4 node; raise AssignmentError on bad metadata or duplicate grade ids."""
    where = where or name
    cells: list[Cell] = []
    seen: dict[str, int] = {}
    for index, raw in enumerate(nb.get("cells", [])):
        _check_cell(raw, index, where)
        meta = _meta(raw) or {}
        grade_id = meta.get("grade_id") if meta else None
        kind = cell_kind(raw)
        has_role = kind not in ("code", "markdown")
        if has_role and grade_id is not None:
            if grade_id in seen:
                raise AssignmentError(
                    f"{where}: duplicate grade_id {grade_id!r} in cells {seen[grade_id]} and {index}"
                )
            seen[grade_id] = index
        points = float(meta["points"]) if (is_grade(raw) or is_task(raw)) else None
        cells.append(
            Cell(
                index=index,
                cell_type=str(raw.get("cell_type")),
                source=_source(raw),
                kind=kind,
                grade_id=grade_id if has_role else None,
                points=points,
                solution=is_solution(raw),
                grade=is_grade(raw),
                locked=is_locked(raw),
                task=is_task(raw),
                checksum=meta.get("checksum"),
                schema_version=meta.get("schema_version"),
            )
        )
    return Notebook(name=name, cells=cells, node=nb)


def read_node(path: Path) -> NotebookNode:
    """Read a notebook as nbformat v4, turning any read error into one AssignmentError line."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise AssignmentError(f"{path}: cannot read: {exc.strerror or exc}") from None
    return reads_node(text, str(path))


def reads_node(text: str, where: str = "<notebook>") -> NotebookNode:
    """Parse notebook JSON text into a v4 node with one-line errors."""
    import nbformat

    try:
        nb = nbformat.reads(text, as_version=4)
    except json.JSONDecodeError as exc:
        raise AssignmentError(
            f"{where}: not valid notebook JSON: {exc.msg} (line {exc.lineno})"
        ) from None
    except Exception as exc:  # nbformat raises several unrelated types for bad files
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise AssignmentError(f"{where}: not a valid notebook: {first}") from None
    if not isinstance(nb.get("cells"), list):
        raise AssignmentError(f"{where}: not a valid notebook: no cells list")
    return nb


def read_notebook(path: Path) -> Notebook:
    """Read and parse one assignment notebook file."""
    path = Path(path)
    return parse_node(read_node(path), path.stem, str(path))


def imported_modules(paths: list[Path]) -> list[str]:
    """Modules the code cells of these notebooks import (absolute imports, in order, no repeats).

    Read as plain JSON (no nbformat, which takes seconds to import), IPython lines (``%magic``,
    ``!cmd``) left out; a cell that still does not parse, or a file that cannot be read, is
    skipped: this only feeds the sandbox's preload, never grading itself.
    """
    found: dict[str, None] = {}
    for path in paths:
        try:
            cells = json.loads(Path(path).read_text(encoding="utf-8")).get("cells", [])
        except (OSError, ValueError, AttributeError):
            continue
        for cell in cells if isinstance(cells, list) else []:
            if not isinstance(cell, dict) or cell.get("cell_type") != "code":
                continue
            lines = _source(cell).splitlines()
            code = "\n".join(line for line in lines if not line.lstrip().startswith(("%", "!")))
            try:
                tree = ast.parse(code)
            except (SyntaxError, ValueError):
                continue
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    found.update((alias.name, None) for alias in node.names)
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    found[node.module] = None
    return list(found)


# ---------------------------------------------------------------------------------------------
# course folder


@dataclass(frozen=True)
class Course:
    """An nbgrader course folder; paths follow nbgrader's default directory names."""

    root: Path

    def source_dir(self, assignment: str) -> Path:
        """Instructor notebooks of one assignment."""
        return self.root / "source" / assignment

    def release_dir(self, assignment: str) -> Path:
        """Learner versions of one assignment."""
        return self.root / "release" / assignment

    def submitted_dir(self, student: str, assignment: str) -> Path:
        """One learner's submission of one assignment."""
        return self.root / "submitted" / student / assignment

    def source_notebooks(self, assignment: str, language: str = ENGLISH) -> list[Path]:
        """Source notebooks in name order; AssignmentError when the assignment has none.

        A translation (``<stem>.zh-CN.ipynb``) is the same notebook in another language, not
        another notebook: it is listed only for its ``language``, in place of the English one
        it translates (which stands in where there is no translation)."""
        folder = self.source_dir(assignment)
        if not folder.is_dir():
            raise AssignmentError(f"no assignment {assignment!r}: {folder} does not exist")
        paths = sorted(
            p
            for p in folder.glob("*.ipynb")
            if not p.name.startswith(".") and not is_translation(p)
        )
        if not paths:
            raise AssignmentError(f"assignment {assignment!r} has no notebooks in {folder}")
        if language == ENGLISH:
            return paths
        return [t if (t := translation_path(p, language)).is_file() else p for p in paths]

    def students(self, assignment: str) -> list[str]:
        """Students who submitted this assignment, sorted."""
        base = self.root / "submitted"
        if not base.is_dir():
            return []
        return sorted(p.name for p in base.iterdir() if (p / assignment).is_dir())
