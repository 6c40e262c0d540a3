"""Who has completed a course: the ``[completion]`` rule of its ``course.toml``.

Rules (one per course):

- ``all_labs_at_least``: every lab of the course scores at least ``threshold`` of its points;
- ``total_at_least``: the points of all labs together reach ``threshold`` of the total.

A lab without a score counts as not done. The rule decides eligibility only; whether the
certificate is then issued by an institution admin or automatically is the institution's policy.
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
        return cls(
            id=course["id"],
            title=course.get("title", course["id"]),
            summary=course.get("summary", ""),
            level=course.get("level", ""),
            labs=labs,
            rule=rule,
            threshold=float(threshold),
        )

    def criteria(self) -> str:
        """The rule in words, for the credential's ``criteria.narrative``."""
        pct = f"{self.threshold:.0%}"
        if self.rule == "all_labs_at_least":
            return f"Scored at least {pct} of the points of every lab: " + ", ".join(
                title for _, title in self.labs
            )
        return f"Scored at least {pct} of all points over the labs of the course."

    def completed(self, scores: Mapping[str, tuple[float, float]]) -> bool:
        """``scores``: lab id -> (points, max points)."""
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
