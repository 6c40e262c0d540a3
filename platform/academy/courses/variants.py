"""Mutants and alternatives: the evidence that a lab's tests catch wrong work and accept right work.

A full mark for the reference and zero for the starter say little about the tests in between: a
test that a plausible wrong answer passes grades nothing, and a test that only the reference's
own style passes grades style. So a lab carries two kinds of *variants* of its reference
solution, and ``academy course check`` grades each through the real grader:

* a **mutant** is a known-wrong implementation that names what it gets wrong and the test cells
  that must catch it; it must lose points in every one of them;
* an **alternative** is a correct implementation written differently; it must get full marks.

They live beside the course's ``source/``, never inside a lab folder, because everything in a lab
folder is released to learners with the notebook::

    courses/<course_id>/mutants/<lab_id>/<name>.toml
    courses/<course_id>/alternatives/<lab_id>/<name>.toml

A variant is a list of edits to the reference's cells, each addressed by the cell's ``grade_id``
(the name after ``# %% solution`` in lab text): ``old``/``new`` replaces one exact occurrence of
a text, ``source`` replaces the whole cell. Most mutants are a one-line change, and an edit that
no longer applies after the reference changed is reported, so variants cannot silently rot.
"""

from __future__ import annotations

import copy
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

Kind = Literal["mutant", "alternative"]
KINDS: dict[Kind, str] = {"mutant": "mutants", "alternative": "alternatives"}
MIN_MUTANTS = 5
MIN_ALTERNATIVES = 2


class VariantError(ValueError):
    """A variant file is malformed or no longer applies to the reference notebook."""


class Edit(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    cell: str = Field(min_length=1)
    """The ``grade_id`` of the cell to change."""
    old: str | None = None
    new: str | None = None
    source: str | None = None

    @model_validator(mode="after")
    def _one_form(self) -> Edit:
        pair = self.old is not None and self.new is not None
        if pair == (self.source is not None) or (self.old is None) != (self.new is None):
            raise ValueError("an edit has either `old` and `new`, or `source`")
        if self.old == "":
            raise ValueError("`old` must not be empty")
        return self


class VariantSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    what: str = ""
    """For a mutant: what it gets wrong. For an alternative: how it differs (optional)."""
    breaks: list[str] = []
    """For a mutant: the test cells (grade ids) that must lose points."""
    notebook: str | None = None
    """The notebook's stem when the lab has several; the lab's own notebook by default."""
    edit: list[Edit] = Field(min_length=1)


@dataclass(frozen=True)
class Variant:
    kind: Kind
    name: str
    path: Path
    spec: VariantSpec

    def notebook_stem(self, lab_id: str) -> str:
        return self.spec.notebook or lab_id


def load_variants(course_root: Path, lab_id: str) -> tuple[list[Variant], list[str]]:
    """Every variant of one lab, and one problem line per file that does not load."""
    variants: list[Variant] = []
    problems: list[str] = []
    for kind, folder in KINDS.items():
        for path in sorted((course_root / folder / lab_id).glob("*.toml")):
            try:
                spec = VariantSpec.model_validate(tomllib.loads(path.read_text(encoding="utf-8")))
            except (OSError, tomllib.TOMLDecodeError, ValidationError) as exc:
                problems.append(f"{path}: {_one_line(exc)}")
                continue
            if kind == "mutant" and (not spec.what.strip() or not spec.breaks):
                problems.append(
                    f"{path}: a mutant says `what` it gets wrong and which test cells it `breaks`"
                )
                continue
            variants.append(Variant(kind, path.stem, path, spec))
    return variants, problems


def apply_variant(variant: Variant, reference: Any) -> Any:
    """A copy of the reference notebook with the variant's edits made; VariantError if an edit
    names a cell that does not exist or a text that does not occur exactly once."""
    nb = copy.deepcopy(reference)
    by_id = {
        (cell.get("metadata", {}).get("nbgrader") or {}).get("grade_id"): cell for cell in nb.cells
    }
    for edit in variant.spec.edit:
        cell = by_id.get(edit.cell)
        if cell is None:
            raise VariantError(f"{variant.path}: no cell with grade_id {edit.cell!r}")
        text = cell.source if isinstance(cell.source, str) else "".join(cell.source)
        if edit.source is not None:
            cell.source = edit.source
            continue
        old, new = edit.old or "", edit.new or ""
        found = text.count(old)
        if found != 1:
            raise VariantError(
                f"{variant.path}: the text to replace occurs {found} times in cell "
                f"{edit.cell!r}, not once (was the reference changed?)"
            )
        cell.source = text.replace(old, new)
    return nb


def _one_line(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'file'}: {e['msg']}" for e in exc.errors()
        )
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
