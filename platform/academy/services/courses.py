"""The course catalog: import ``courses/<id>/course.toml`` and release a lab to a cohort.

Courses are read through :mod:`academy.courses` (the course contract's own loader); releasing
snapshots the lab's source into STATE_DIR/assignments/<id>/ so that grading keeps using exactly
what was released even when the course folder changes later.
"""

from __future__ import annotations

import json
import shutil
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlmodel import Session, select

from ..models import Assignment, Cohort, Course, LatePolicy, id_of, to_utc, utcnow
from ..settings import Settings
from .access import Principal
from .errors import Conflict, Invalid, NotFound


def discover(courses_dir: Path) -> list[Path]:
    """Course folders under ``courses_dir`` (each has a course.toml), sorted."""
    from ..courses import find_courses

    return find_courses(courses_dir) if courses_dir.is_dir() else []


def import_course(session: Session, root: Path) -> Course:
    """Create or refresh the catalog entry of the course in ``root`` (checked by
    :func:`academy.courses.load_course`; every problem it finds is reported at once)."""
    from ..courses import CourseError, load_course

    try:
        loaded = load_course(root)
    except CourseError as exc:
        problems = exc.problems
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise Invalid(f"course {root.name}: {problems[0]}{more}") from None
    info = loaded.spec.course
    row = session.exec(select(Course).where(Course.slug == info.id)).first() or Course(
        slug=info.id, title=info.title
    )
    row.title = info.title
    row.title_zh = info.title_zh
    row.summary = info.summary
    row.level = info.level
    labs = [
        {
            "id": lab.id,
            "title": lab.ref.title,
            "title_zh": lab.ref.title_zh,
            "required": list(lab.ref.required),
        }
        for lab in loaded.labs
    ]
    row.labs = json.dumps(labs, ensure_ascii=False)
    row.completion = loaded.spec.completion.model_dump_json()
    row.source_dir = str(root.resolve())
    row.imported_at = utcnow()
    session.add(row)
    session.flush()
    return row


def course_labs(course: Course) -> list[dict[str, Any]]:
    return json.loads(course.labs or "[]")


def assignment_dir(settings: Settings, assignment_id: int) -> Path:
    return settings.state_dir / "assignments" / str(assignment_id)


def release_lab(
    session: Session,
    settings: Settings,
    actor: Principal,
    cohort: Cohort,
    lab: str,
    *,
    opens_at: datetime | None,
    due_at: datetime | None,
    late_policy: LatePolicy,
    late_penalty_per_day: float,
) -> Assignment:
    """Release ``lab`` of the cohort's course: snapshot the source, write learner notebooks."""
    from grader.assignment import AssignmentError, parse_node, read_node
    from grader.assignment import Course as GraderCourse
    from grader.release import release_node

    from . import audit

    course = session.get(Course, cohort.course_id)
    assert course is not None
    if lab not in {item["id"] for item in course_labs(course)}:
        raise NotFound(f"course {course.slug!r} has no lab {lab!r}")
    exists = session.exec(
        select(Assignment).where(Assignment.cohort_id == cohort.id, Assignment.lab == lab)
    ).first()
    if exists is not None:
        raise Conflict(f"lab {lab!r} is already released to this cohort as assignment {exists.id}")
    opens = to_utc(opens_at) if opens_at else utcnow()
    due = to_utc(due_at) if due_at else None
    if due is not None and due <= opens:
        raise Invalid("due_at must be after opens_at")
    grader_course = GraderCourse(Path(course.source_dir))
    try:
        sources = grader_course.source_notebooks(lab)
        released = [(p, read_node(p)) for p in sources]
        learner = [(p, release_node(nb, p.stem, lab)) for p, nb in released]
        max_score = sum(parse_node(nb, p.stem).max_points for p, nb in released)
        learner += _translations(released, lab)
    except AssignmentError as exc:
        raise Invalid(str(exc)) from None
    notebook = next((p.name for p in sources if p.stem == lab), sources[0].name)
    title = next((item["title"] for item in course_labs(course) if item["id"] == lab), lab)
    row = Assignment(
        cohort_id=id_of(cohort),
        course_id=id_of(course),
        lab=lab,
        title=title,
        notebook=notebook,
        opens_at=opens,
        due_at=due,
        late_policy=late_policy,
        late_penalty_per_day=late_penalty_per_day,
        max_score=max_score,
        released_by=actor.user_id,
    )
    session.add(row)
    session.flush()
    _snapshot(settings, id_of(row), grader_course.source_dir(lab), learner)
    audit.record(
        session, actor, "assignment.release", "assignment", row.id, cohort.institution_id, lab=lab
    )
    return row


def _translations(released: list[tuple[Path, Any]], lab: str) -> list[tuple[Path, Any]]:
    """The learner version of every translation of the released notebooks. A translation out
    of step with its English notebook (another cell, grade id or points) is refused: it would
    grade a learner differently for their language."""
    from grader.assignment import AssignmentError, read_node
    from grader.release import release_node

    from ..courses.languages import TRANSLATIONS, translation_path, version_problems

    out: list[tuple[Path, Any]] = []
    for path, english in released:
        for language in TRANSLATIONS:
            version = translation_path(path, language)
            if not version.is_file():
                continue
            nb = read_node(version)
            problems = version_problems(english, nb, language, version.name)
            if problems:
                more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
                raise AssignmentError(
                    f"{problems[0]}{more}; run `academy course check` on the course"
                )
            out.append((version, release_node(nb, path.stem, lab)))
    return out


def _snapshot(settings: Settings, assignment_id: int, src: Path, learner: list) -> None:
    import nbformat

    base = assignment_dir(settings, assignment_id)
    tmp = base.with_name(base.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(src, tmp / "source", ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    release = tmp / "release"
    release.mkdir()
    for path, nb in learner:
        (release / path.name).write_text(nbformat.writes(nb) + "\n", encoding="utf-8")
    for extra in sorted(src.rglob("*")):
        if extra.is_file() and extra.suffix != ".ipynb" and ".ipynb_checkpoints" not in extra.parts:
            dest = release / extra.relative_to(src)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(extra, dest)
    shutil.rmtree(base, ignore_errors=True)
    tmp.rename(base)


def released_files(settings: Settings, assignment: Assignment) -> list[Path]:
    """The learner files of an assignment, in name order."""
    folder = assignment_dir(settings, id_of(assignment)) / "release"
    if not folder.is_dir():
        raise NotFound(f"the files of assignment {assignment.id} are missing on the server")
    return sorted(p for p in folder.rglob("*") if p.is_file())


def source_notebook_path(settings: Settings, assignment: Assignment, language: str = "en") -> Path:
    """The released source notebook in ``language`` (the English one where the lab has no
    version in it)."""
    from grader.language import translation_path

    english = assignment_dir(settings, id_of(assignment)) / "source" / assignment.notebook
    version = translation_path(english, language)
    return version if version.is_file() else english
