"""Produce the learner version of an assignment the way ``nbgrader generate_assignment`` does.

The learner notebooks must be byte-for-byte what nbgrader would release (same stubs, same locked
flags, same checksums), otherwise a course authored for nbgrader would grade differently here.
So this module runs nbgrader's own preprocessors in nbgrader's order through nbconvert's
preprocessor API, leaving out only the steps that need nbgrader's gradebook database
(``SaveCells``) or a running kernel (``InstantiateTests``, which only acts on ``AUTOTEST`` cells;
such cells are refused here with a clear error).

The intermediate stage right before ``ClearHiddenTests`` is what nbgrader stores as the "source
cells" in its gradebook and later uses to restore locked cells at autograde time;
:func:`gradebook_stage` exposes it for :mod:`grader.scoring`'s ``prepare``.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nbformat import NotebookNode

from grader.assignment import AssignmentError, Course, parse_node, read_node
from grader.language import LANGUAGES, notebook_language, translation_path

STUBS = {
    "zh-CN": {"code": "# 在此编写你的代码\nraise NotImplementedError()", "text": "在此作答"},
}
"""What replaces a solution in a translated notebook (nbgrader's English stub elsewhere):
``ClearSolutions``' stub, in the notebook's language. The gradebook stage and the release both
come from :func:`gradebook_stage`, so an untouched answer is recognised in either language."""


def _resources(name: str, assignment: str) -> dict[str, Any]:
    return {
        "unique_key": name,
        "nbgrader": {"notebook": name, "assignment": assignment, "student": "."},
        "metadata": {"name": name},
    }


def _run(nb: NotebookNode, steps: list[Any], resources: dict[str, Any], where: str) -> NotebookNode:
    from nbgrader.nbgraderformat import ValidationError

    for step in steps:
        try:
            nb, resources = step(nb, resources)
        except (RuntimeError, ValidationError, ValueError) as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise AssignmentError(f"{where}: {type(step).__name__}: {first}") from None
    return nb


def _check_no_autotest(nb: NotebookNode, where: str) -> None:
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and "AUTOTEST" in cell.source:
            raise AssignmentError(
                f"{where}: cell {index}: AUTOTEST cells need a kernel to instantiate; "
                "write the tests out explicitly"
            )


def _upgrade(nb: NotebookNode, where: str) -> NotebookNode:
    """Validate the nbgrader metadata as nbgrader reads it (old schemas upgraded)."""
    from nbgrader.nbgraderformat import MetadataValidator, ValidationError

    try:
        MetadataValidator().validate_nb(nb)
    except ValidationError as exc:
        first = (str(exc).strip().splitlines() or ["invalid nbgrader metadata"])[0]
        raise AssignmentError(f"{where}: {first}") from None
    return nb


def gradebook_stage(
    source_nb: NotebookNode, name: str = "notebook", assignment: str = "assignment"
) -> NotebookNode:
    """The source notebook as nbgrader's gradebook records it (before hidden tests are cleared).

    Solutions are replaced by stubs, outputs cleared, cells locked and checksums computed; hidden
    tests are still present.  nbgrader restores locked cells from exactly this text.
    """
    from nbgrader.preprocessors import (
        CheckCellMetadata,
        ClearOutput,
        ClearSolutions,
        ComputeChecksums,
        IncludeHeaderFooter,
        LockCells,
    )

    nb = _upgrade(copy.deepcopy(source_nb), name)
    parse_node(nb, name)  # our own one-line checks (duplicate ids, points)
    _check_no_autotest(nb, name)
    clear = ClearSolutions()
    stub = STUBS.get(notebook_language(source_nb))
    if stub is not None:  # the learner's placeholder in the notebook's own language
        clear.code_stub = {**clear.code_stub, "python": stub["code"]}
        clear.text_stub = stub["text"]
    steps = [
        IncludeHeaderFooter(),
        LockCells(),
        clear,
        ClearOutput(),
        CheckCellMetadata(),
        ComputeChecksums(),
    ]
    return _run(nb, steps, _resources(name, assignment), name)


def release_node(
    source_nb: NotebookNode, name: str = "notebook", assignment: str = "assignment"
) -> NotebookNode:
    """The learner version of one source notebook (hidden tests and mark schemes removed)."""
    from nbgrader.preprocessors import (
        CheckCellMetadata,
        ClearHiddenTests,
        ClearMarkScheme,
        ComputeChecksums,
    )

    nb = gradebook_stage(source_nb, name, assignment)
    steps = [ClearHiddenTests(), ClearMarkScheme(), ComputeChecksums(), CheckCellMetadata()]
    return _run(nb, steps, _resources(name, assignment), name)


def release(course_dir: Path | str, assignment: str) -> list[Path]:
    """Write ``release/<assignment>/*.ipynb`` from ``source/<assignment>`` and return the paths.

    Non-notebook files in the source folder are copied alongside, as nbgrader does, and every
    translation of a notebook (``<stem>.zh-CN.ipynb``) is released beside it.
    """
    import nbformat

    course = Course(Path(course_dir))
    out_dir = course.release_dir(assignment)
    written: list[Path] = []
    sources = course.source_notebooks(assignment)
    versions = [
        (t, p.stem)
        for p in sources
        for lang in LANGUAGES
        if (t := translation_path(p, lang)).is_file()
    ]
    released = [(t, release_node(read_node(t), stem, assignment)) for t, stem in versions]
    out_dir.mkdir(parents=True, exist_ok=True)
    for path, nb in released:
        dest = out_dir / path.name
        dest.write_text(nbformat.writes(nb) + "\n", encoding="utf-8")
        written.append(dest)
    src_dir = course.source_dir(assignment)
    for extra in sorted(src_dir.rglob("*")):
        if extra.is_file() and extra.suffix != ".ipynb" and ".ipynb_checkpoints" not in extra.parts:
            dest = out_dir / extra.relative_to(src_dir)
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(extra.read_bytes())
            written.append(dest)
    return written
