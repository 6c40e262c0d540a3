"""Generate an nbgrader course folder with one assignment and many varied submissions.

The assignment mixes every cell role the grader must handle: a read-only setup cell, solution
cells, visible tests, a test with hidden asserts, a manually graded markdown answer, and a
partial-credit test whose last expression is the score.  Submissions start from the released
notebooks (as a learner would) and vary: correct, partly wrong, raising, tests edited, graded
cells deleted, an infinite loop.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import nbformat
from nbformat import NotebookNode
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

ASSIGNMENT = "ledger"
KERNELSPEC = {"display_name": "Python 3", "language": "python", "name": "python3"}

HIDDEN_SECRET = "HIDDEN-abc-ba7816bf"  # appears only inside the hidden test region


def python_notebook(cells: list[NotebookNode]) -> NotebookNode:
    """A notebook of ``cells`` on the Python 3 kernel, as every test course's notebooks are."""
    return new_notebook(cells=cells, metadata={"kernelspec": KERNELSPEC})


def _cell(kind: str, source: str, grade_id: str | None = None, points: float = 0) -> NotebookNode:
    if kind == "markdown":
        return new_markdown_cell(source)
    if kind == "answer":
        cell = new_markdown_cell(source)
        meta = {"grade": True, "solution": True, "locked": False, "points": points}
    else:
        cell = new_code_cell(source)
        meta = {
            "code": None,
            "readonly": {"grade": False, "solution": False, "locked": True},
            "solution": {"grade": False, "solution": True, "locked": False},
            "test": {"grade": True, "solution": False, "locked": True, "points": points},
        }[kind]
        if meta is None:
            return cell
    cell.metadata["nbgrader"] = {**meta, "grade_id": grade_id, "schema_version": 3}
    return cell


def hashing_notebook() -> NotebookNode:
    """Notebook 1: hashing, with visible, hidden and manual parts."""
    cells = [
        _cell("markdown", "# Hashing\nImplement `sha_hex` and explain collision resistance."),
        _cell("readonly", "import hashlib", "setup"),
        _cell(
            "solution",
            "def sha_hex(data: bytes) -> str:\n"
            "    ### BEGIN SOLUTION\n"
            "    return hashlib.sha256(data).hexdigest()\n"
            "    ### END SOLUTION",
            "sha_hex",
        ),
        _cell(
            "test",
            'assert sha_hex(b"") == '
            '"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"',
            "test_sha_empty",
            2,
        ),
        _cell(
            "test",
            "assert len(sha_hex(b'x')) == 64\n"
            "### BEGIN HIDDEN TESTS\n"
            f"_secret = {HIDDEN_SECRET!r}\n"
            'assert sha_hex(b"abc") == '
            '"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", "abc digest"\n'
            "### END HIDDEN TESTS",
            "test_sha_hidden",
            3,
        ),
        _cell(
            "answer",
            "=== BEGIN SOLUTION ===\nFinding two inputs with one digest is infeasible.\n"
            "=== END SOLUTION ===",
            "explain_collision",
            2,
        ),
    ]
    return python_notebook(cells)


def blocks_notebook() -> NotebookNode:
    """Notebook 2: a Merkle root with a partial-credit test and a proof-of-work loop."""
    cells = [
        _cell("markdown", "# Blocks"),
        _cell("readonly", "import hashlib\nH = lambda b: hashlib.sha256(b).digest()", "setup2"),
        _cell(
            "solution",
            "def merkle_root(leaves):\n"
            "    ### BEGIN SOLUTION\n"
            "    level = [H(x) for x in leaves]\n"
            "    while len(level) > 1:\n"
            "        if len(level) % 2:\n"
            "            level.append(level[-1])\n"
            "        level = [H(level[i] + level[i + 1]) for i in range(0, len(level), 2)]\n"
            "    return level[0]\n"
            "    ### END SOLUTION",
            "merkle_root",
        ),
        _cell(
            "test",
            "score = 0\n"
            'if merkle_root([b"a"]) == H(b"a"):\n'
            "    score += 2\n"
            'if merkle_root([b"a", b"b", b"c"]) == H(H(H(b"a") + H(b"b")) + H(H(b"c") + H(b"c"))):\n'
            "    score += 2\n"
            "score",
            "test_merkle_partial",
            4,
        ),
        _cell(
            "solution",
            "def mine(prefix: str) -> int:\n"
            "    ### BEGIN SOLUTION\n"
            "    n = 0\n"
            "    while not hashlib.sha256(str(n).encode()).hexdigest().startswith(prefix):\n"
            "        n += 1\n"
            "    return n\n"
            "    ### END SOLUTION",
            "mine",
        ),
        _cell(
            "test",
            'n = mine("00")\nassert hashlib.sha256(str(n).encode()).hexdigest().startswith("00")',
            "test_mine",
            1,
        ),
    ]
    return python_notebook(cells)


NOTEBOOKS: dict[str, Callable[[], NotebookNode]] = {
    "hashing": hashing_notebook,
    "blocks": blocks_notebook,
}

# learner answers for solution cells, per variant
GOOD = {
    "sha_hex": "def sha_hex(data: bytes) -> str:\n    return hashlib.sha256(data).hexdigest()",
    "explain_collision": "Nobody can find two inputs with the same digest.",
    "merkle_root": (
        "def merkle_root(leaves):\n"
        "    level = [H(x) for x in leaves]\n"
        "    while len(level) > 1:\n"
        "        if len(level) % 2:\n"
        "            level.append(level[-1])\n"
        "        level = [H(level[i] + level[i + 1]) for i in range(0, len(level), 2)]\n"
        "    return level[0]"
    ),
    "mine": (
        "def mine(prefix):\n    n = 0\n"
        "    while not hashlib.sha256(str(n).encode()).hexdigest().startswith(prefix):\n"
        "        n += 1\n    return n"
    ),
}


def _edit(nb: NotebookNode, grade_id: str, source: str | None) -> None:
    """Replace (or delete, when source is None) the cell with this grade_id."""
    for i, cell in enumerate(nb.cells):
        if cell.metadata.get("nbgrader", {}).get("grade_id") == grade_id:
            if source is None:
                del nb.cells[i]
            else:
                cell.source = source
            return
    raise KeyError(grade_id)


def _variant(student: str, name: str, nb: NotebookNode) -> None:
    answers = dict(GOOD)
    if student == "partly_wrong":
        # merkle only right for one leaf (no odd duplication), answer left as the stub
        answers["merkle_root"] = (
            "def merkle_root(leaves):\n    level = [H(x) for x in leaves]\n"
            "    while len(level) > 1:\n"
            "        level = [H(b''.join(level[i:i + 2])) for i in range(0, len(level), 2)]\n"
            "    return level[0]"
        )
        answers["sha_hex"] = (
            "def sha_hex(data):\n    if data == b'abc':\n        return '0' * 64\n"
            "    return hashlib.sha256(data).hexdigest()"
        )
        del answers["explain_collision"]
    elif student == "raising":
        answers["sha_hex"] = "def sha_hex(data):\n    raise ValueError('not yet')"
        answers["merkle_root"] = "def merkle_root(leaves):\n    return leaves[99]"
    elif student == "edited_tests":
        answers["sha_hex"] = "def sha_hex(data):\n    return 'nope'"
        answers["merkle_root"] = "def merkle_root(leaves):\n    return b''"
    elif student == "infinite_loop":
        answers["mine"] = "def mine(prefix):\n    while True:\n        pass"
    elif student == "stderr_noise":
        answers["merkle_root"] = (
            "import sys\nprint('debug', file=sys.stderr)\n" + GOOD["merkle_root"]
        )
    elif student == "leaves_thread":  # honest: a thread left running costs nothing
        answers["sha_hex"] = (
            "import threading, time\n"
            "threading.Thread(target=time.sleep, args=(600,), daemon=True).start()\n"
            + GOOD["sha_hex"]
        )
    elif student == "value_subclass":  # honest: a str subclass with the right text is right
        answers["sha_hex"] = (
            "class Hex(str):\n    pass\n"
            "def sha_hex(data):\n    return Hex(hashlib.sha256(data).hexdigest())"
        )
    elif student == "noisy_function":  # stderr while the hidden test calls it: 0, as nbgrader
        answers["sha_hex"] = (
            "import sys\ndef sha_hex(data):\n"
            "    if data == b'abc':\n        print('called', file=sys.stderr)\n"
            "    return hashlib.sha256(data).hexdigest()"
        )
    for grade_id, text in answers.items():
        try:
            _edit(nb, grade_id, text)
        except KeyError:
            continue
    if student == "edited_tests":
        for grade_id in ("test_sha_empty", "test_sha_hidden", "test_merkle_partial"):
            try:
                _edit(nb, grade_id, "pass  # edited by the learner\n4")
            except KeyError:
                continue
    if student == "deleted_cells" and name == "hashing":
        _edit(nb, "test_sha_hidden", None)
        _edit(nb, "explain_collision", None)
    if student == "deleted_cells" and name == "blocks":
        _edit(nb, "test_merkle_partial", None)


STUDENTS = [
    "correct",
    "partly_wrong",
    "raising",
    "edited_tests",
    "deleted_cells",
    "stderr_noise",
    "infinite_loop",
    "leaves_thread",
    "value_subclass",
    "noisy_function",
]


def write_source(course: Path) -> list[Path]:
    """Write source/<ASSIGNMENT>/*.ipynb (instructor notebooks with solutions)."""
    folder = Path(course) / "source" / ASSIGNMENT
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, make in NOTEBOOKS.items():
        path = folder / f"{name}.ipynb"
        nbformat.write(make(), path)
        paths.append(path)
    return paths


def write_submissions(course: Path, students: list[str] | None = None) -> list[Path]:
    """Write submitted/<student>/<ASSIGNMENT>/*.ipynb from the released notebooks."""
    course = Path(course)
    paths = []
    for student in students or STUDENTS:
        folder = course / "submitted" / student / ASSIGNMENT
        folder.mkdir(parents=True, exist_ok=True)
        for name in NOTEBOOKS:
            nb = nbformat.read(course / "release" / ASSIGNMENT / f"{name}.ipynb", as_version=4)
            _variant(student, name, nb)
            path = folder / f"{name}.ipynb"
            nbformat.write(nb, path)
            paths.append(path)
    return paths


WRONG = {
    "sha_hex": [
        "def sha_hex(data):\n    return hashlib.md5(data).hexdigest()",
        "def sha_hex(data):\n    raise NotImplementedError('todo')",
        "def sha_hex(data):\n    print('checking', data)\n    return hashlib.sha256(data).hexdigest()",
    ],
    "merkle_root": [
        "def merkle_root(leaves):\n    return H(b''.join(leaves))",
        "def merkle_root(leaves):\n    return leaves[0]",
        "def merkle_root(leaves):\n    return 1 / 0",
    ],
    "mine": [
        "def mine(prefix):\n    return 1",
        "def mine(prefix):\n    return int('x')",
    ],
    "explain_collision": [],
}


def _mix(rng: random.Random, name: str, nb: nbformat.NotebookNode) -> None:
    """A learner who gets some answers right, some wrong, some raising, and may touch tests."""
    for grade_id, good in GOOD.items():
        choice = rng.random()
        wrong = WRONG[grade_id]
        text = good if choice < 0.45 or not wrong else rng.choice(wrong)
        if choice > 0.9 and grade_id == "explain_collision":
            continue  # left as the stub
        try:
            _edit(nb, grade_id, text)
        except KeyError:
            continue
    if rng.random() < 0.2:
        test = "test_sha_empty" if name == "hashing" else "test_mine"
        _edit(nb, test, "pass  # the learner emptied this test")
    if rng.random() < 0.15 and name == "blocks":
        _edit(nb, "test_merkle_partial", None)


def write_mixed_submissions(course: Path, count: int) -> list[str]:
    """``count`` learners (mix00, mix01, ...) with seeded mixes of right, wrong and raising answers."""
    students = []
    for k in range(count):
        student = f"mix{k:02d}"
        rng = random.Random(k)
        folder = course / "submitted" / student / ASSIGNMENT
        folder.mkdir(parents=True, exist_ok=True)
        for name in NOTEBOOKS:
            nb = nbformat.read(course / "release" / ASSIGNMENT / f"{name}.ipynb", as_version=4)
            _mix(rng, name, nb)
            nbformat.write(nb, folder / f"{name}.ipynb")
        students.append(student)
    return students


NBGRADER_CONFIG = """\
c = get_config()
c.CourseDirectory.root = {root!r}
c.CourseDirectory.db_url = {db!r}
c.CourseDirectory.course_id = "chainacademy"
c.OverwriteCells.add_missing_cells = True
c.Execute.timeout = 20
c.Execute.extra_arguments = []
"""


def write_config(course: Path) -> Path:
    """nbgrader_config.py pointing nbgrader at this folder and its own sqlite gradebook."""
    course = Path(course)
    path = course / "nbgrader_config.py"
    db = f"sqlite:///{course / 'gradebook.db'}"
    path.write_text(NBGRADER_CONFIG.format(root=str(course), db=db), encoding="utf-8")
    return path


NBGRADER = Path(sys.executable).parent / "nbgrader"


def nbgrader_cli(
    course: Path, *args: str, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run the real nbgrader CLI inside a course folder (its tools must be on PATH)."""
    env = dict(os.environ, PATH=f"{NBGRADER.parent}{os.pathsep}{os.environ.get('PATH', '')}")
    return subprocess.run(
        [str(NBGRADER), *args], cwd=course, env=env, capture_output=True, text=True, timeout=timeout
    )


def stock_grades(course: Path, students: list[str]) -> Iterator[tuple[str, str, Any]]:
    """(student, notebook, grade) for every cell stock nbgrader scored in its gradebook;
    notebooks nbgrader produced no score for are left out (there is nothing to compare)."""
    from nbgrader.api import Gradebook, MissingEntry

    with Gradebook(f"sqlite:///{Path(course) / 'gradebook.db'}") as gb:
        for student in students:
            for name in NOTEBOOKS:
                try:
                    stock = gb.find_submission_notebook(name, ASSIGNMENT, student)
                except MissingEntry:
                    continue
                for grade in stock.grades:
                    yield student, name, grade
