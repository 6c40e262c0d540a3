"""The red team's own course: one 13-point notebook and a course folder of hostile submissions.

The notebook has what a real course has and an attacker aims at: a read-only setup cell, the
learner's answer (``sha_hex``), a visible test, hidden tests (one plain, one through the
``grader.checks`` checker, one reading a side file, one with partial credit), a visible test
after the hidden ones (its message reaches the learner in full, so it is where stolen text would
come out) and a manually graded answer.

Every secret is drawn afresh per test session, so no submission can know it in advance (the
sandbox can read this repository): hidden test text, a neighbour's data, the host's environment.
The attacks search for the prefixes below and try to carry what follows out of the sandbox.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat
from nbformat import NotebookNode
from nbformat.v4 import new_code_cell

from tests.grader.coursegen import _cell, python_notebook
from tests.grader.tamper import EDITS

ASSIGNMENT = "vault"
NOTEBOOK = "vault"
HOST_ENV = "CHAINACADEMY_REDTEAM_PROBE"
"""An environment variable of the grading host: no submission may read it."""


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Secrets:
    """What must never come back in a result, a reason or the feedback."""

    token: str = field(default_factory=lambda: secrets.token_hex(8))

    @property
    def hidden_mark(self) -> str:
        return f"RTHID{self.token}"

    @property
    def hidden_input(self) -> bytes:
        return f"rtin-{self.token[::-1]}".encode()

    @property
    def hidden_input2(self) -> bytes:
        return f"rtin2-{self.token}".encode()

    @property
    def neighbour(self) -> str:
        return f"RTNBR{self.token}"

    @property
    def host(self) -> str:
        return f"RTHOST{self.token}"

    def hidden_texts(self) -> list[str]:
        """Text only the hidden tests hold: their marker, inputs and expected digests."""
        return [
            self.hidden_mark,
            self.hidden_input.decode(),
            _digest(self.hidden_input),
            self.hidden_input2.decode(),
            _digest(self.hidden_input2),
        ]

    def all(self) -> dict[str, str]:
        found = {f"hidden text {i}": t for i, t in enumerate(self.hidden_texts())}
        return {**found, "neighbour data": self.neighbour, "host environment": self.host}


VECTORS = [b"", b"vault", b"a" * 64]
HONEST = "def sha_hex(data):\n    return hashlib.sha256(data).hexdigest()"
WRONG = "def sha_hex(data):\n    return hashlib.sha256(data + b'!').hexdigest()"
"""Wrong on every input: each autograded cell must score 0 whatever else the learner does."""
EXPLANATION = "Finding two inputs with one digest takes about 2**128 tries."


def source_notebook(s: Secrets) -> NotebookNode:
    """The instructor's notebook, with the solution and every hidden test."""

    def hidden(body: str) -> str:
        return f"### BEGIN HIDDEN TESTS\n# {s.hidden_mark}\n{body}\n### END HIDDEN TESTS"

    cells = [
        _cell("markdown", "# Vault\nImplement `sha_hex` and say why collisions are hard."),
        _cell("readonly", "import hashlib", "setup"),
        _cell(
            "solution",
            "def sha_hex(data):\n    ### BEGIN SOLUTION\n"
            "    return hashlib.sha256(data).hexdigest()\n    ### END SOLUTION",
            "sha_hex",
        ),
        _cell(
            "test", f'assert sha_hex(b"") == "{_digest(b"")}", "empty input"', "test_sha_empty", 1
        ),
        _cell(
            "test",
            "assert len(sha_hex(b'x')) == 64\n"
            + hidden(
                f"_expected = {_digest(s.hidden_input)!r}\n"
                f'assert sha_hex({s.hidden_input!r}) == _expected, "hidden digest"'
            ),
            "test_sha_hidden",
            3,
        ),
        _cell(
            "test",
            hidden(
                "from grader.checks.hashing import check_function, messages\n"
                "check_function(sha_hex, lambda d: hashlib.sha256(d).hexdigest(),"
                ' messages(max_size=80), name="sha_hex")'
            ),
            "test_checker",
            3,
        ),
        _cell(
            "test",
            hidden(
                '_rows = [line.split(",") for line in open("vectors.csv").read().split()]\n'
                'assert len(_rows) == 3, "three vectors"\n'
                "for _m, _d in _rows:\n"
                '    assert sha_hex(bytes.fromhex(_m)) == _d, "vector " + _m[:8]'
            ),
            "test_vectors",
            2,
        ),
        _cell(
            "test",
            hidden(
                "score = 0\n"
                f"if sha_hex({s.hidden_input2!r}) == {_digest(s.hidden_input2)!r}:\n"
                "    score += 1\n"
                "score"
            ),
            "test_partial",
            1,
        ),
        _cell("test", f'assert sha_hex(b"late") == "{_digest(b"late")}", "late"', "test_late", 1),
        _cell(
            "answer",
            f"=== BEGIN SOLUTION ===\n{EXPLANATION}\n=== END SOLUTION ===",
            "explain_collision",
            2,
        ),
    ]
    return python_notebook(cells)


def vectors_csv(wrong: bool = False) -> str:
    """The course's side file (``wrong``: the digests the wrong answer gives, for a learner who
    would swap it). bytes.fromhex("") is b"": the empty message is an empty first column."""
    return "".join(f"{m.hex()},{_digest(m + b'!' if wrong else m)}\n" for m in VECTORS)


SOURCE_MAX = {
    "test_sha_empty": 1.0,
    "test_sha_hidden": 3.0,
    "test_checker": 3.0,
    "test_vectors": 2.0,
    "test_partial": 1.0,
    "test_late": 1.0,
    "explain_collision": 2.0,
}
"""The source's graded cells and their points (13 in all)."""
SOURCE_HIDDEN = {"test_sha_hidden", "test_checker", "test_vectors", "test_partial"}
MANUAL = {"explain_collision"}


def write_source(root: Path, s: Secrets) -> Path:
    folder = root / "source" / ASSIGNMENT
    folder.mkdir(parents=True, exist_ok=True)
    nbformat.write(source_notebook(s), folder / f"{NOTEBOOK}.ipynb")
    (folder / "vectors.csv").write_text(vectors_csv())
    return folder / f"{NOTEBOOK}.ipynb"


def expand(text: str, macros: Mapping[str, str], where: Mapping[str, str]) -> str:
    """Replace ``@NAME@`` by a macro of cases.toml (Python text shared by cases) or a path."""
    for name, value in macros.items():
        text = text.replace(f"@{name.upper()}@", value)
    for name, value in where.items():
        text = text.replace(f"@{name}@", value)
    return text


def submission(
    released: NotebookNode,
    case: Mapping[str, Any],
    macros: Mapping[str, str],
    where: Mapping[str, str],
) -> NotebookNode:
    """A learner's notebook for ``case``: the released notebook with the case's answer, its own
    cells after the answer (``learner``) and at the end (``after``), then its metadata edit."""
    nb = nbformat.from_dict(released)
    answer = expand(case.get("answer", "@WRONG@"), macros, where)
    extra = [expand(c, macros, where) for c in case.get("learner", [])]
    after = [expand(c, macros, where) for c in case.get("after", [])]
    for i, cell in enumerate(nb.cells):
        gid = cell.metadata.get("nbgrader", {}).get("grade_id")
        if gid == "sha_hex":
            cell.source = answer
            nb.cells[i + 1 : i + 1] = [new_code_cell(c) for c in extra]
        elif gid == "explain_collision":
            cell.source = EXPLANATION.replace("2**128", "many")
    nb.cells.extend(new_code_cell(c) for c in after)
    if "edit" in case:
        EDITS[case["edit"]][0](nb)
    for patch in case.get("patch", []):
        cell = next(
            c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == patch["cell"]
        )
        cell.metadata["nbgrader"].update(patch.get("nbgrader", {}))
        if "cell_type" in patch:
            cell.cell_type = patch["cell_type"]
            if cell.cell_type == "markdown":
                cell.pop("outputs", None)
                cell.pop("execution_count", None)
    return nb


def place_files(folder: Path, specs: list[Mapping[str, Any]], where: Mapping[str, str]) -> None:
    """Side files of a submission: plain files, symlinks, hard links, FIFOs, device nodes."""
    for spec in specs:
        path = folder / spec["name"]
        kind = spec.get("kind", "file")
        if spec.get("replace"):
            path.unlink()
        target = expand(spec.get("target", ""), {}, where)
        if kind == "file":
            path.write_text(expand(spec["text"], {}, where))
        elif kind == "dir":
            path.mkdir()
        elif kind == "symlink":
            path.symlink_to(target)
        elif kind == "hardlink":
            os.link(target, path)
        elif kind == "fifo":
            os.mkfifo(path)
        elif kind == "device":  # a character device (1, 3) is /dev/null: safe if read anyway
            os.mknod(path, 0o600 | 0o020000, os.makedev(*spec.get("device", [1, 3])))
        else:
            raise ValueError(f"unknown side file kind {kind!r} in {spec}")
