"""A lab in two languages: the rule that keeps its versions in step.

Beside ``<lab>.ipynb`` (English, the reference) a lab may carry ``<lab>.zh-CN.ipynb`` (see
:mod:`grader.language` for the naming). A learner picks either, and both must grade the same, so
a translation may change only what a reader reads:

* the cells are the same, in the same order, of the same types, with the same nbgrader metadata
  (grade id, points, grade/solution/locked/task flags);
* a code cell's program is the same: both parse to the same Python syntax tree once every
  comment is dropped and every text literal (``str``, docstrings, f-string text) is blanked, the
  expressions inside an f-string compared as a set (a translated sentence may put them in another
  order); bytes literals are data and must be equal. Lines of IPython syntax (``%magic``,
  ``!cmd``) must be equal as text;
* a ``%%writefile`` cell of Solidity (``.sol``) or Vyper (``.vy``) source is the same program once
  comments are dropped and string literals blanked, by that language's own lexical rules
  (Vyper's are Python's); any other cell that is not Python is compared as text;
* the translation says its language in ``metadata.lang``.

A text literal that is data rather than prose (a test vector written as a hex string, say) is
not held equal by this rule; ``academy course check`` catches a changed one by grading the
translation's reference solution, which must still get full marks.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from grader.language import (
    CHINESE,
    ENGLISH,
    LANGUAGES,
    METADATA_KEY,
    TRANSLATIONS,
    is_translation,
    split_name,
    translation_path,
)

__all__ = [
    "CHINESE",
    "ENGLISH",
    "LANGUAGES",
    "TRANSLATIONS",
    "is_translation",
    "program_of",
    "readme_path",
    "split_name",
    "translation_path",
    "version_problems",
]


def readme_path(folder: Path, language: str) -> Path:
    """``README.md`` or, for a translation, ``README.<language>.md`` in ``folder``."""
    return folder / ("README.md" if language == ENGLISH else f"README.{language}.md")


class _Blank(ast.NodeTransformer):
    """Blank every text literal; an f-string becomes the set of its expressions."""

    def visit_Constant(self, node: ast.Constant) -> ast.AST:
        if isinstance(node.value, str):
            return ast.Constant(value="")
        return node

    def visit_JoinedStr(self, node: ast.JoinedStr) -> ast.AST:
        parts = [
            self.visit(v)
            for v in node.values
            if isinstance(v, ast.FormattedValue)  # the text between them is prose
        ]
        parts.sort(key=ast.dump)
        return ast.Tuple(elts=parts, ctx=ast.Load())


def _source(cell: Mapping[str, Any]) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else str(src)


def _is_magic(line: str) -> bool:
    """An IPython magic or shell line; ``!=`` opening a continued comparison is Python."""
    text = line.lstrip()
    return text.startswith("%") or (text.startswith("!") and not text.startswith("!="))


_SOLIDITY_LEXEMES = re.compile(
    r'"(?:\\.|[^"\\\n])*"|\'(?:\\.|[^\'\\\n])*\'|//[^\n]*|/\*.*?\*/', re.S
)


def _solidity_program(source: str) -> str:
    def keep(match: re.Match[str]) -> str:
        text = match.group(0)
        return "" if text.startswith("/") else text[0] * 2

    return _SOLIDITY_LEXEMES.sub(keep, source)


def _vyper_program(source: str) -> str | None:
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    except (tokenize.TokenError, SyntaxError):
        return None
    kept = []
    for tok in tokens:
        if tok.type in (tokenize.COMMENT, tokenize.NL):
            continue
        kept.append('""' if tok.type == tokenize.STRING and tok.string[-1] in "'\"" else tok.string)
    return " ".join(kept)


def _written_file(code: str) -> str | None:
    """A ``%%writefile`` cell's program by its file's language, else None."""
    first, _, body = code.partition("\n")
    words = first.split()
    if not words or words[0] != "%%writefile" or len(words) < 2:
        return None
    name = words[-1].lower()
    if name.endswith(".sol"):
        program: str | None = _solidity_program(body)
    elif name.endswith(".vy"):
        program = _vyper_program(body)
    else:
        return None
    if program is None:
        return None
    lines = [line.rstrip() for line in program.splitlines() if line.strip()]
    return first.strip() + "\n" + "\n".join(line.strip() for line in lines)


def program_of(code: str) -> str:
    """The part of a code cell a translation must leave alone, as comparable text (see the
    module's rule); a cell that does not parse is compared as it is, minus blank lines."""
    written = _written_file(code)
    if written is not None:
        return written
    lines = code.splitlines()
    magic = [line.strip() for line in lines if _is_magic(line)]
    python = "\n".join("pass" if _is_magic(line) else line for line in lines)
    try:
        tree = ast.parse(python)
    except (SyntaxError, ValueError):
        return "\n".join(line.rstrip() for line in lines if line.strip())
    return ast.dump(_Blank().visit(tree), include_attributes=False) + "\n" + "\n".join(magic)


def _nbgrader(cell: Mapping[str, Any]) -> dict[str, Any]:
    meta = (cell.get("metadata") or {}).get("nbgrader") or {}
    return {k: v for k, v in meta.items() if k != "checksum"}


def _label(cell: Mapping[str, Any], index: int) -> str:
    grade_id = _nbgrader(cell).get("grade_id")
    return f"cell {index}" + (f" ({grade_id})" if grade_id else "")


def version_problems(
    english: Mapping[str, Any], other: Mapping[str, Any], language: str, where: str
) -> list[str]:
    """Every way ``other`` (the ``language`` version) is not the English notebook translated;
    one line each, naming ``where`` and the cell."""
    problems: list[str] = []
    said = (other.get("metadata") or {}).get(METADATA_KEY)
    if said != language:
        problems.append(
            f"{where}: metadata.{METADATA_KEY} is {said!r}, not {language!r}: build it from its "
            f'lab text, or add "{METADATA_KEY}": "{language}" to the notebook\'s metadata'
        )
    a, b = list(english.get("cells", [])), list(other.get("cells", []))
    if len(a) != len(b):
        problems.append(
            f"{where}: {len(b)} cells, the English version has {len(a)}: a translation keeps "
            "every cell, in order"
        )
    for index, (en, tr) in enumerate(zip(a, b, strict=False)):
        label = _label(en, index)
        if en.get("cell_type") != tr.get("cell_type"):
            problems.append(
                f"{where}: {label} is a {tr.get('cell_type')} cell, in English a "
                f"{en.get('cell_type')} cell"
            )
            continue
        if _nbgrader(en) != _nbgrader(tr):
            problems.append(
                f"{where}: {label}: nbgrader metadata {_nbgrader(tr)} differs from the English "
                f"{_nbgrader(en)} (grade id, points and flags are not translated)"
            )
        if en.get("cell_type") == "code" and program_of(_source(en)) != program_of(_source(tr)):
            problems.append(
                f"{where}: {label}: the code differs from the English cell in more than comments "
                "and text literals (translate only those)"
            )
    return problems
