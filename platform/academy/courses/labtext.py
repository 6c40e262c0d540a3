"""Lab text: an nbgrader notebook written as one plain-text file that diffs well in review.

Instructors may author a lab in JupyterLab with nbgrader's *Create Assignment* toolbar, or as lab
text and build the notebook with ``academy course notebook``. A header line starts each cell::

    # %% md                          a markdown cell (the lines below it, as they are)
    # %% code                        an ordinary code cell
    # %% readonly <grade_id>         locked code the learner cannot change (imports, helpers)
    # %% solution <grade_id>         code the learner writes (### BEGIN/END SOLUTION)
    # %% test <grade_id> <points>    an autograded test (### BEGIN/END HIDDEN TESTS inside)
    # %% answer <grade_id> <points>  a manually graded markdown answer

The notebook is a pure function of the text (cell ids included), so ``academy course check`` can
tell when a committed notebook no longer matches its text. ``<lab>.zh-CN.txt`` is the same lab in
Chinese and builds ``<lab>.zh-CN.ipynb`` (see :mod:`academy.courses.languages`).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from grader.language import ENGLISH, METADATA_KEY, split_name

if TYPE_CHECKING:
    from nbformat import NotebookNode

HEADER = re.compile(r"^# %% (?P<kind>[a-z]+)(?P<rest>.*)$")
KINDS = ("md", "code", "readonly", "solution", "test", "answer")
KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}


class LabTextError(ValueError):
    """The lab text is malformed; the message names the file and line."""


def _nbgrader(kind: str, grade_id: str, points: float | None) -> dict[str, Any] | None:
    meta: dict[str, Any]
    if kind == "readonly":
        meta = {"grade": False, "solution": False, "locked": True}
    elif kind == "solution":
        meta = {"grade": False, "solution": True, "locked": False}
    elif kind == "test":
        meta = {"grade": True, "solution": False, "locked": True, "points": points}
    elif kind == "answer":
        meta = {"grade": True, "solution": True, "locked": False, "points": points}
    else:
        return None
    return {**meta, "grade_id": grade_id, "schema_version": 3}


def build_notebook(text: str, where: str = "<lab text>", language: str = ENGLISH) -> NotebookNode:
    """The nbgrader notebook described by ``text``, written in ``language`` (a translation says
    so in ``metadata.lang``; English, the reference, says nothing)."""
    import nbformat
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

    cells: list[tuple[int, str, list[str], list[str]]] = []
    preamble: list[str] = []
    for lineno, line in enumerate(text.splitlines(), 1):
        m = HEADER.match(line)
        if m:
            kind, args = m["kind"], m["rest"].split()
            if kind not in KINDS:
                raise LabTextError(f"{where}:{lineno}: unknown cell kind {kind!r}: use {KINDS}")
            cells.append((lineno, kind, args, []))
        elif cells:
            cells[-1][3].append(line)
        else:
            preamble.append(line)
    if any(line.strip() for line in preamble):
        raise LabTextError(f"{where}:1: text before the first '# %% <kind>' line")
    nb_cells = []
    seen: set[str] = set()
    for index, (lineno, kind, args, body) in enumerate(cells):
        source = "\n".join(body).strip("\n")
        grade_id, points = "", None
        if kind in ("readonly", "solution"):
            if len(args) != 1:
                raise LabTextError(f"{where}:{lineno}: write '# %% {kind} <grade_id>'")
            grade_id = args[0]
        elif kind in ("test", "answer"):
            if len(args) != 2:
                raise LabTextError(f"{where}:{lineno}: write '# %% {kind} <grade_id> <points>'")
            grade_id = args[0]
            try:
                points = float(args[1])
            except ValueError:
                raise LabTextError(
                    f"{where}:{lineno}: points {args[1]!r} is not a number"
                ) from None
            if points <= 0:
                raise LabTextError(f"{where}:{lineno}: points must be positive")
            points = int(points) if points.is_integer() else points
        elif args:
            raise LabTextError(f"{where}:{lineno}: '# %% {kind}' takes no arguments")
        if grade_id:
            if grade_id in seen:
                raise LabTextError(f"{where}:{lineno}: grade_id {grade_id!r} used twice")
            if not re.match(r"^[A-Za-z0-9_-]{1,60}$", grade_id):
                raise LabTextError(f"{where}:{lineno}: grade_id: use letters, digits, - and _")
            seen.add(grade_id)
        if not source:
            raise LabTextError(f"{where}:{lineno}: empty {kind} cell")
        cell = new_markdown_cell(source) if kind in ("md", "answer") else new_code_cell(source)
        cell.id = grade_id or f"cell-{index}"
        meta = _nbgrader(kind, grade_id, points)
        if meta is not None:
            cell.metadata["nbgrader"] = meta
        nb_cells.append(cell)
    if not nb_cells:
        raise LabTextError(f"{where}: no cells: start each with a '# %% <kind>' line")
    metadata: dict[str, Any] = {"kernelspec": KERNELSPEC, "language_info": {"name": "python"}}
    if language != ENGLISH:
        metadata[METADATA_KEY] = language
    nb = new_notebook(cells=nb_cells, metadata=metadata)
    nbformat.validate(nb)
    return nb


def notebook_text(nb: NotebookNode) -> str:
    """The committed form of a notebook (what ``academy course notebook`` writes)."""
    import nbformat

    return nbformat.writes(nb) + "\n"


def text_language(src: Path) -> str:
    """The language of a lab text file: ``merkle.zh-CN.txt`` is Chinese, ``merkle.txt`` English."""
    return split_name(Path(src).with_suffix(".ipynb"))[1]


def build_file(src: Path, dest: Path) -> Path:
    """Write the notebook for lab text ``src`` to ``dest``."""
    if text_language(src) != split_name(dest)[1]:
        raise LabTextError(
            f"{src} is in {text_language(src)}, {dest} in {split_name(dest)[1]}: build "
            "<lab>.zh-CN.txt into <lab>.zh-CN.ipynb and <lab>.txt into <lab>.ipynb"
        )
    nb = build_notebook(src.read_text(encoding="utf-8"), str(src), text_language(src))
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(notebook_text(nb), encoding="utf-8")
    return dest


def out_of_date(src: Path, notebook: Path) -> bool:
    """True when ``notebook`` is not what ``src`` builds to."""
    nb = build_notebook(src.read_text(encoding="utf-8"), str(src), text_language(src))
    try:
        current = notebook.read_text(encoding="utf-8")
    except OSError:
        return True
    return current != notebook_text(nb)
