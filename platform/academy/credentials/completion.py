"""Who has completed a course: the ``[completion]`` rule of its ``course.toml``.

Rules (one per course):

- ``all_labs_at_least``: every lab of the course scores at least ``threshold`` of its points;
- ``total_at_least``: the points of all labs together reach ``threshold`` of the total.

A lab without a score counts as not done. Either rule also needs every *required* test cell of a
lab (``required = [...]`` in its ``[[labs]]`` entry: the lab's core skill) at full marks, so that a
percentage cannot be reached by skipping the one skill the lab exists for. The rule decides
eligibility only; whether the certificate is then issued by an institution admin or
automatically is the institution's policy.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

RULES = ("all_labs_at_least", "total_at_least")


class CompletionError(ValueError):
    """A course.toml whose completion rule cannot be used; the message says what to fix."""


@dataclass(frozen=True)
class Course:
    id: str
    title: str
    summary: str
    level: str
    labs: tuple[tuple[str, str], ...]
    rule: str
    threshold: float
    required: tuple[tuple[str, tuple[str, ...]], ...] = ()
    """(lab id, grade ids of the test cells a completion needs at full marks)"""

    @classmethod
    def from_toml(cls, path: Path) -> Course:
        try:
            data = tomllib.loads(Path(path).read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise CompletionError(f"{path}: cannot read the course: {exc}") from exc
        return cls.from_dict(data, str(path))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "course.toml") -> Course:
        course = data.get("course") or {}
        completion = data.get("completion") or {}
        rule = completion.get("rule", "all_labs_at_least")
        if rule not in RULES:
            raise CompletionError(f"{where}: [completion] rule {rule!r}: use one of {RULES}")
        threshold = completion.get("threshold", 0.6)
        if not isinstance(threshold, int | float) or not 0 < threshold <= 1:
            raise CompletionError(f"{where}: [completion] threshold must be in (0, 1]")
        labs = tuple((lab["id"], lab.get("title", lab["id"])) for lab in data.get("labs") or [])
        if not course.get("id") or not labs:
            raise CompletionError(f"{where}: needs [course] id and at least one [[labs]] entry")
        required = []
        for lab in data.get("labs") or []:
            cells = lab.get("required") or []
            if not isinstance(cells, list) or not all(isinstance(c, str) and c for c in cells):
                raise CompletionError(
                    f"{where}: [[labs]] {lab['id']}: required must be a list of test cell ids"
                )
            if cells:
                required.append((lab["id"], tuple(cells)))
        return cls(
            id=course["id"],
            title=course.get("title", course["id"]),
            summary=course.get("summary", ""),
            level=course.get("level", ""),
            labs=labs,
            rule=rule,
            threshold=float(threshold),
            required=tuple(required),
        )

    def criteria(self) -> str:
        """The rule in words, for the credential's ``criteria.narrative``."""
        pct = f"{self.threshold:.0%}"
        if self.rule == "all_labs_at_least":
            text = f"Scored at least {pct} of the points of every lab: " + ", ".join(
                title for _, title in self.labs
            )
        else:
            text = f"Scored at least {pct} of all points over the labs of the course."
        if self.required:
            titles = dict(self.labs)
            skills = "; ".join(
                f"{titles.get(lab, lab)}: {', '.join(cells)}" for lab, cells in self.required
            )
            text += f" Passed in full the core skills of each lab ({skills})."
        return text

    def missing_skills(
        self, cells: Mapping[str, Mapping[str, tuple[float, float]]]
    ) -> list[tuple[str, str]]:
        """The required (lab, test cell) pairs not at full marks; ``cells``: lab id -> grade id ->
        (points, max points) of the learner's graded submission."""
        missing = []
        for lab, required in self.required:
            got = cells.get(lab) or {}
            for cell in required:
                score = got.get(cell)
                if score is None or score[1] <= 0 or score[0] < score[1]:
                    missing.append((lab, cell))
        return missing

    def completed(
        self,
        scores: Mapping[str, tuple[float, float]],
        cells: Mapping[str, Mapping[str, tuple[float, float]]] | None = None,
    ) -> bool:
        """``scores``: lab id -> (points, max points); ``cells``: per-cell scores, needed when
        the course requires core skills (without them a required skill counts as not passed)."""
        if self.required and self.missing_skills(cells or {}):
            return False
        got = [scores.get(lab) for lab, _ in self.labs]
        if self.rule == "all_labs_at_least":
            return all(s is not None and s[1] > 0 and s[0] >= self.threshold * s[1] for s in got)
        done = [s for s in got if s is not None]
        total = sum(s[1] for s in done)
        return (
            total > 0
            and len(done) == len(got)
            and sum(s[0] for s in done) >= (self.threshold * total)
        )
