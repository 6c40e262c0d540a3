"""Required skills: a course's completion needs each lab's core test cells at full marks, so that a
percentage threshold cannot be met by skipping the one skill a lab exists for."""

from __future__ import annotations

import pytest
from academy.credentials.completion import CompletionError
from academy.credentials.completion import Course as Rule

COURSE = {
    "course": {"id": "sc", "title": "Smart contracts"},
    "completion": {"rule": "all_labs_at_least", "threshold": 0.6},
    "labs": [
        {"id": "exploits", "title": "Exploit levels", "required": ["test_reentrancy"]},
        {"id": "token", "title": "Token"},
    ],
}
SCORES = {"exploits": (17.0, 20.0), "token": (9.0, 9.0)}


def test_a_high_score_without_the_core_skill_does_not_complete() -> None:
    rule = Rule.from_dict(COURSE)
    skipped = {"exploits": {"test_reentrancy": (0.0, 3.0), "test_vault": (3.0, 3.0)}}
    assert not rule.completed(SCORES, skipped)
    assert rule.missing_skills(skipped) == [("exploits", "test_reentrancy")]
    partial = {"exploits": {"test_reentrancy": (2.0, 3.0)}}
    assert not rule.completed(SCORES, partial), "a required skill counts only at full marks"
    passed = {"exploits": {"test_reentrancy": (3.0, 3.0)}}
    assert rule.completed(SCORES, passed)
    assert not rule.completed({"exploits": (11.0, 20.0), "token": (9.0, 9.0)}, passed), (
        "the threshold still holds beside the required skill"
    )


def test_without_per_cell_scores_a_required_skill_is_not_passed() -> None:
    rule = Rule.from_dict(COURSE)
    assert not rule.completed(SCORES)
    assert not rule.completed(SCORES, {"token": {"test_token": (9.0, 9.0)}})
    total = Rule.from_dict({**COURSE, "completion": {"rule": "total_at_least", "threshold": 0.5}})
    assert not total.completed(SCORES, {}) and total.completed(
        SCORES, {"exploits": {"test_reentrancy": (3.0, 3.0)}}
    )


def test_a_course_without_required_skills_is_judged_on_scores_alone() -> None:
    labs = [{k: v for k, v in lab.items() if k != "required"} for lab in COURSE["labs"]]
    rule = Rule.from_dict({**COURSE, "labs": labs})
    assert rule.required == () and rule.completed(SCORES)


def test_the_criteria_name_the_core_skills() -> None:
    text = Rule.from_dict(COURSE).criteria()
    assert "Scored at least 60% of the points of every lab" in text
    assert "core skills of each lab (Exploit levels: test_reentrancy)" in text


@pytest.mark.parametrize("bad", ["test_reentrancy", [""], [3], {"a": 1}])
def test_a_malformed_required_list_is_refused_with_the_lab_named(bad: object) -> None:
    labs = [{"id": "exploits", "title": "Exploit levels", "required": bad}]
    with pytest.raises(CompletionError, match=r"\[\[labs\]\] exploits: required must be a list"):
        Rule.from_dict({**COURSE, "labs": labs})
