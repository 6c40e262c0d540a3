"""Builders for academy tests: a tiny nbgrader course on disk, and helpers to act as users."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
from academy.models import Cohort, Institution, id_of
from academy.services.courses import import_course
from academy.services.identity import create_institution
from nbformat.v4 import new_code_cell, new_markdown_cell
from sqlmodel import Session

from tests.grader.coursegen import python_notebook

COURSE = "demo-hashing"
LAB = "sha"
SECRET = "HIDDEN-9f1c"  # appears only in the hidden test region


def _graded(source: str, grade_id: str, kind: str, points: float = 0) -> nbformat.NotebookNode:
    cell = new_code_cell(source)
    meta = {
        "solution": {"grade": False, "solution": True, "locked": False},
        "test": {"grade": True, "solution": False, "locked": True, "points": points},
    }[kind]
    cell.metadata["nbgrader"] = {**meta, "grade_id": grade_id, "schema_version": 3}
    return cell


def source_notebook() -> nbformat.NotebookNode:
    return python_notebook(
        [
            new_markdown_cell("# SHA-256\nImplement `sha_hex`."),
            _graded(
                "import hashlib\n\ndef sha_hex(data: bytes) -> str:\n"
                "    ### BEGIN SOLUTION\n    return hashlib.sha256(data).hexdigest()\n"
                "    ### END SOLUTION",
                "impl",
                "solution",
            ),
            _graded(
                "assert sha_hex(b'abc').startswith('ba7816bf')",
                "visible",
                "test",
                1,
            ),
            _graded(
                "assert len(sha_hex(b'')) == 64\n"
                "### BEGIN HIDDEN TESTS\n"
                f"probe = b'{SECRET}'\n"
                "assert sha_hex(probe) == hashlib.sha256(probe).hexdigest()\n"
                "### END HIDDEN TESTS",
                "hidden",
                "test",
                2,
            ),
        ]
    )


def write_course(courses_dir: Path) -> Path:
    root = courses_dir / COURSE
    root.mkdir(parents=True, exist_ok=True)
    (root / "course.toml").write_text(
        "[course]\n"
        f'id = "{COURSE}"\ntitle = "Hashing demo"\ntitle_zh = "哈希"\n'
        'summary = "Hash functions."\nsummary_zh = "哈希函数。"\nlevel = "primary"\norder = 1\n\n'
        '[completion]\nrule = "all_labs_at_least"\nthreshold = 0.6\n\n'
        f'[[labs]]\nid = "{LAB}"\ntitle = "SHA-256"\ntitle_zh = "SHA-256"\n\n'
        '[[labs]]\nid = "second"\ntitle = "Second lab"\ntitle_zh = "第二"\n',
        encoding="utf-8",
    )
    for lab in (LAB, "second"):
        folder = root / "source" / lab
        folder.mkdir(parents=True, exist_ok=True)
        nbformat.write(source_notebook(), folder / f"{lab}.ipynb")
        (folder / "README.md").write_text("Hash things.\n")
        (folder / "lab.toml").write_text(f'[lab]\nid = "{lab}"\ntitle = "{lab}"\n')
    return root


def uni_cohort(session: Session, courses_dir: Path) -> tuple[Institution, Cohort]:
    """Institution ``uni`` with the course of ``write_course`` imported and one cohort ``c1`` of
    it: where every certificate test starts."""
    inst = create_institution(session, None, "uni", "University of Examples")
    course = import_course(session, courses_dir / COURSE)
    cohort = Cohort(institution_id=id_of(inst), course_id=id_of(course), slug="c1", name="c1")
    session.add(cohort)
    session.flush()
    return inst, cohort


def answer(released: dict, correct: bool = True) -> bytes:
    """A learner's notebook made from the released one: the solution filled in (or wrong)."""
    nb = json.loads(json.dumps(released))
    for cell in nb["cells"]:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if meta.get("grade_id") == "impl":
            body = "hashlib.sha256(data).hexdigest()" if correct else "'0' * 64"
            cell["source"] = (
                f"import hashlib\n\ndef sha_hex(data: bytes) -> str:\n    return {body}\n"
            )
    return json.dumps(nb).encode()
