"""``academy course check``: prove every lab of a course works before a learner opens it.

For each lab, the things that a broken lab would get wrong:

1. the *reference solution* (the source notebook itself, solutions filled in) gets full marks on
   every autograded cell when graded by the real grader, in its sandbox;
2. the *released starter* (what ``grader.release`` gives learners: solutions stubbed, hidden tests
   removed) gets zero -- a test that passes on an empty answer grades nothing;
3. the chain in ``lab.toml`` starts as real validator processes, answers JSON-RPC, commits a
   block, takes the preloaded contracts, and stops again;
4. every *mutant* of the lab (a known-wrong answer, see ``variants``) loses points in the test
   cells it names, and every *alternative* (a correct answer written differently) gets full
   marks. With ``require_variants`` a lab also needs at least ``MIN_MUTANTS`` mutants and
   ``MIN_ALTERNATIVES`` alternatives;
5. every *translation* of a notebook (``<lab>.zh-CN.ipynb``) is the English one cell for cell,
   grade id for grade id, its code the same program (:mod:`.languages`), and its reference and
   starter grade full marks and zero too. With ``require_languages`` every notebook and README
   needs its translation.

Labs that ask for the same chain share one start (the chain is checked, not the lab).
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from grader.executor import use_lab_preload

from .labtext import LabTextError, out_of_date
from .languages import (
    ENGLISH,
    LANGUAGES,
    TRANSLATIONS,
    readme_path,
    translation_path,
    version_problems,
)
from .spec import ChainSpec, Course, CourseError, Lab, find_courses, load_course
from .variants import (
    MIN_ALTERNATIVES,
    MIN_MUTANTS,
    Variant,
    VariantError,
    apply_variant,
    load_variants,
)

# no lab pays for importing web3, py-evm and the Vyper compiler in every sandbox (seconds each)
use_lab_preload()

CHAIN_BLOCK_TIMEOUT = 30.0
"""Seconds a freshly started lab chain has to commit its first block."""


@dataclass
class LabReport:
    course: str
    lab: str
    solution: tuple[float, float] | None = None
    starter: tuple[float, float] | None = None
    manual_points: float = 0.0
    chain: str = "-"
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)
    mutants: tuple[int, int] = (0, 0)
    """(killed, total)"""
    alternatives: tuple[int, int] = (0, 0)
    """(full marks, total)"""
    languages: list[str] = field(default_factory=lambda: [ENGLISH])
    """The languages whose version was checked (English always; a translation once found)."""

    @property
    def ok(self) -> bool:
        return not self.problems

    def line(self) -> str:
        def pts(v: tuple[float, float] | None) -> str:
            return f"{v[0]:g}/{v[1]:g}" if v else "-"

        state = "ok" if self.ok else "FAIL"
        manual = f" (+{self.manual_points:g} manual)" if self.manual_points else ""
        variants = ""
        if self.mutants[1] or self.alternatives[1]:
            variants = (
                f", mutants {self.mutants[0]}/{self.mutants[1]} killed, "
                f"alternatives {self.alternatives[0]}/{self.alternatives[1]} full"
            )
        head = (
            f"{state:4} {self.course}/{self.lab}: solution {pts(self.solution)}{manual}, "
            f"starter {pts(self.starter)}{variants}, languages {' '.join(self.languages)}, "
            f"chain {self.chain} [{self.seconds:.1f}s]"
        )
        return head + "".join(f"\n       - {p}" for p in self.problems)


@dataclass
class CheckReport:
    labs: list[LabReport] = field(default_factory=list)
    course_problems: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.course_problems and all(r.ok for r in self.labs)

    def summary(self) -> str:
        failed = sum(1 for r in self.labs if not r.ok)
        points = sum(r.solution[1] for r in self.labs if r.solution)
        killed = sum(r.mutants[0] for r in self.labs)
        mutants = sum(r.mutants[1] for r in self.labs)
        full = sum(r.alternatives[0] for r in self.labs)
        alternatives = sum(r.alternatives[1] for r in self.labs)
        variants = ""
        if mutants or alternatives:
            rate = f" ({100 * killed / mutants:.0f}% killed)" if mutants else ""
            variants = (
                f", {killed}/{mutants} mutant(s) killed{rate}, "
                f"{full}/{alternatives} alternative(s) full"
            )
        langs = ", ".join(
            f"{lang} {sum(1 for r in self.labs if lang in r.languages)}" for lang in LANGUAGES
        )
        return (
            f"{len(self.labs)} lab(s), {points:g} autograded points{variants}, "
            f"languages {langs}: "
            f"{len(self.labs) - failed} ok, {failed} failed"
            + (f", {len(self.course_problems)} course problem(s)" if self.course_problems else "")
            + f" in {self.seconds:.1f}s"
        )


def _totals(results: dict[str, Any]) -> tuple[float, float, float, list[Any]]:
    """(points, max autograded points, manual points, autograded results)."""
    auto = [r for r in results.values() if r.status != "manual"]
    manual = sum(r.max_points for r in results.values() if r.status == "manual")
    return sum(r.points or 0 for r in auto), sum(r.max_points for r in auto), manual, auto


def grade_lab(
    lab: Lab, report: LabReport, limits: Any = None, variants: list[Variant] | None = None
) -> None:
    """Grade the reference solution, the released starter and the variants of every notebook
    of ``lab``, and the reference and starter of every translation of it (the variants are
    English edits; a translation runs the same program, see :mod:`.languages`)."""
    from grader.assignment import AssignmentError, read_node
    from grader.executor import SandboxError
    from grader.jobs import side_files

    files = side_files(lab.folder)
    sol_got = sol_max = start_got = start_max = manual = 0.0
    tests: set[str] = set()
    for path in lab.notebooks:
        name = path.stem
        try:
            source = read_node(path)
            solved, empty = _reference_and_starter(
                source, name, lab.id, path, report, limits, files
            )
        except (AssignmentError, SandboxError, OSError) as exc:
            report.problems.append(f"{path.name}: {exc}")
            continue
        got, top, man, auto = _totals(solved)
        tests |= {r.grade_id for r in auto}
        sol_got, sol_max, manual = sol_got + got, sol_max + top, manual + man
        got0, top0, _, _ = _totals(empty)
        start_got, start_max = start_got + got0, start_max + top0
        mine = [v for v in variants or [] if v.notebook_stem(lab.id) == name]
        _grade_variants(mine, source, solved, name, report, limits, files)
        for language in TRANSLATIONS:
            version = lab.version(path, language)
            if version is None:
                continue
            try:
                other = read_node(version)
                report.problems += version_problems(source, other, language, version.name)
                _reference_and_starter(other, name, lab.id, version, report, limits, files)
            except (AssignmentError, SandboxError, OSError) as exc:
                report.problems.append(f"{version.name}: {exc}")
                continue
            if language not in report.languages:
                report.languages.append(language)
    for v in variants or []:
        if v.notebook_stem(lab.id) not in {p.stem for p in lab.notebooks}:
            report.problems.append(f"{v.path}: the lab has no notebook {v.notebook_stem(lab.id)!r}")
    for cell in lab.ref.required:
        if tests and cell not in tests:
            report.problems.append(
                f"course.toml: [[labs]] {lab.id} requires {cell!r}, which is no autograded test "
                f"cell of the lab"
            )
    report.solution = (sol_got, sol_max)
    report.starter = (start_got, start_max)
    report.manual_points = manual


def _reference_and_starter(
    source: Any, name: str, lab_id: str, path: Path, report: LabReport, limits: Any, files: Any
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Grade one notebook's reference solution (full marks expected) and its released starter
    (zero expected) through the real grader; a shortfall either way is a problem of ``report``."""
    from grader.assignment import parse_node
    from grader.jobs import grade_notebook
    from grader.release import release_node

    parse_node(source, name, str(path))
    starter = release_node(source, name, lab_id)
    solved = grade_notebook(source, source, name, limits=limits, files=files)
    empty = grade_notebook(source, starter, name, limits=limits, files=files)
    _, top, _, auto = _totals(solved)
    if top == 0:
        report.problems.append(f"{path.name}: no autograded test cells")
    for r in auto:
        if (r.points or 0) < r.max_points:
            report.problems.append(
                f"{path.name}: reference solution loses points in {r.grade_id}: "
                f"{r.points or 0:g}/{r.max_points:g} ({r.status}: {r.reason})"
            )
    for r in _totals(empty)[3]:
        if (r.points or 0) > 0:
            report.problems.append(
                f"{path.name}: the released starter already scores in {r.grade_id}: "
                f"{r.points:g}/{r.max_points:g} (a test that passes on an empty answer)"
            )
    return solved, empty


def _grade_variants(
    variants: list[Variant],
    source: Any,
    solved: dict[str, Any],
    name: str,
    report: LabReport,
    limits: Any,
    files: Any,
) -> None:
    """Grade each variant through the real grader and hold it to what it claims."""
    from grader.executor import SandboxError
    from grader.jobs import grade_notebook

    killed, mutants = report.mutants
    full, alternatives = report.alternatives
    for variant in variants:
        label = f"{variant.kind} {variant.name}"
        try:
            results = grade_notebook(
                source, apply_variant(variant, source), name, limits=limits, files=files
            )
        except (VariantError, SandboxError, OSError) as exc:
            report.problems.append(f"{label}: {exc}")
            continue
        if variant.kind == "alternative":
            alternatives += 1
            short = [r for r in _totals(results)[3] if (r.points or 0) < r.max_points]
            if short:
                lost = ", ".join(f"{r.grade_id} {r.points or 0:g}/{r.max_points:g}" for r in short)
                report.problems.append(
                    f"{label} ({variant.path.name}) is correct but loses points: {lost} "
                    f"(the tests demand the reference's style, not the skill)"
                )
            else:
                full += 1
            continue
        mutants += 1
        unknown = [t for t in variant.spec.breaks if t not in solved]
        if unknown:
            report.problems.append(f"{label}: no test cell {', '.join(map(repr, unknown))}")
            continue
        survived = [
            t for t in variant.spec.breaks if (results[t].points or 0) >= results[t].max_points
        ]
        if survived:
            report.problems.append(
                f"{label} survives {', '.join(survived)}: {variant.spec.what} "
                f"(a test that should catch it gives full marks)"
            )
        else:
            killed += 1
    report.mutants = (killed, mutants)
    report.alternatives = (full, alternatives)


def chain_key(spec: ChainSpec, folder: Path) -> tuple:
    """Two labs with equal keys need the same chain (preloads compare by file content; fault
    switches are on every chain, so the faults a lab lists do not change what is started)."""
    preload = tuple(
        (p.name, tuple(map(repr, p.args)), (folder / p.contract).read_bytes()) for p in spec.preload
    )
    return (spec.validators, spec.consensus, spec.identity, preload)


def start_chain(lab: Lab) -> str:
    """Start the chain ``lab.toml`` asks for the way a learner gets it (the sandbox manager's
    process backend: real validator processes, preloaded contracts), check that every validator
    answers and the chain commits a block, stop it; a short summary.

    Raises RuntimeError with one line when the chain does not come up as specified.
    """
    from labs.minichain.network import rpc
    from labs.minichain.waiting import wait_until
    from labs.sandbox import LabSpec, SandboxManager
    from labs.sandbox.backend import BackendError
    from labs.sandbox.spec import SpecError

    spec = lab.spec.chain
    assert spec is not None
    t0 = time.monotonic()
    root = Path(tempfile.mkdtemp(prefix="academy-course-check-"))
    manager = SandboxManager(state_dir=str(root))
    learner = "course-check"
    try:
        try:
            env = manager.ensure(learner, LabSpec.from_toml(lab.folder / "lab.toml"))
        except (SpecError, BackendError, OSError) as exc:
            raise RuntimeError(f"chain did not start: {exc}") from None
        urls = env.rpc_urls
        if len(urls) != spec.validators:
            raise RuntimeError(f"chain has {len(urls)} validators, lab.toml asks {spec.validators}")
        try:
            wait_until(
                lambda: max(int(rpc(u, "eth_blockNumber"), 16) for u in urls) >= 1,
                CHAIN_BLOCK_TIMEOUT,
                interval=0.2,
                message=f"chain committed no block within {CHAIN_BLOCK_TIMEOUT:.0f} s",
            )
        except TimeoutError as exc:
            raise RuntimeError(str(exc)) from None
        for i, u in enumerate(urls):
            status = rpc(u, "minichain_status")
            if status["consensus"] != spec.consensus:
                raise RuntimeError(f"node{i} runs {status['consensus']}, not {spec.consensus}")
        missing = {p.name for p in spec.preload} - set(env.contracts)
        if missing:
            raise RuntimeError(f"preloaded contracts missing: {', '.join(sorted(missing))}")
        extra = f", {len(spec.preload)} contract(s)" if spec.preload else ""
        return f"{spec.validators}x{spec.consensus} up{extra} in {time.monotonic() - t0:.0f}s"
    finally:
        with contextlib.suppress(Exception):
            manager.destroy(learner, lab.id)
        shutil.rmtree(root, ignore_errors=True)


def _text_problems(course: Course, lab: Lab) -> list[str]:
    """A lab authored as lab text must have its notebook rebuilt after every edit, in every
    language it is written in."""
    problems: list[str] = []
    for language in LANGUAGES:
        suffix = "" if language == ENGLISH else f".{language}"
        text = course.root / "labtext" / f"{lab.id}{suffix}.txt"
        if not text.is_file():
            continue
        nb = lab.folder / f"{lab.id}{suffix}.ipynb"
        try:
            if out_of_date(text, nb):
                problems.append(
                    f"{nb} is out of date with {text}: run `academy course notebook {text} {nb}`"
                )
        except LabTextError as exc:
            problems.append(str(exc))
    return problems


def _language_problems(course: Course, lab: Lab) -> list[str]:
    """What a lab lacks to be read in every language: a version of each notebook and of each
    README (the lab's and the course's)."""
    problems: list[str] = []
    for language in TRANSLATIONS:
        for nb in lab.notebooks:
            if lab.version(nb, language) is None:
                want = translation_path(nb, language)
                problems.append(f"no {language} version of {nb.name}: add {want}")
        for folder in (lab.folder, course.root):
            english = readme_path(folder, ENGLISH)
            if english.is_file() and not readme_path(folder, language).is_file():
                problems.append(
                    f"no {language} version of {english}: add {readme_path(folder, language)}"
                )
    return problems


def _grade_job(
    course: Course,
    lab: Lab,
    limits: Any,
    chain_note: str,
    require_variants: bool = False,
    require_languages: bool = False,
) -> LabReport:
    t0 = time.monotonic()
    report = LabReport(course.id, lab.id, chain=chain_note)
    report.problems += _text_problems(course, lab)
    if require_languages:
        report.problems += _language_problems(course, lab)
    variants, problems = load_variants(course.root, lab.id)
    report.problems += problems
    if require_variants:
        count = {k: sum(1 for v in variants if v.kind == k) for k in ("mutant", "alternative")}
        if count["mutant"] < MIN_MUTANTS or count["alternative"] < MIN_ALTERNATIVES:
            report.problems.append(
                f"{count['mutant']} mutant(s) and {count['alternative']} alternative(s) under "
                f"{course.root}/{{mutants,alternatives}}/{lab.id}/: at least {MIN_MUTANTS} and "
                f"{MIN_ALTERNATIVES} are needed"
            )
    grade_lab(lab, report, limits, variants)
    report.seconds = time.monotonic() - t0
    return report


def check_courses(
    root: Path | str,
    *,
    course_id: str | None = None,
    chain: bool = True,
    on_lab: Callable[[LabReport], None] | None = None,
    limits: Any = None,
    workers: int = 2,
    require_variants: bool = False,
    require_languages: bool = False,
) -> CheckReport:
    """Check every course under ``root`` (or only ``course_id``); ``on_lab`` sees each result,
    in course and lab order. ``workers`` labs are graded at once (each in its own sandbox) while
    one more thread starts the chains: grading waits on cells, a chain start on processes."""
    started = time.monotonic()
    report = CheckReport()
    folders = find_courses(root)
    if course_id is not None:
        folders = [f for f in folders if f.name == course_id]
        if not folders:
            report.course_problems.append(
                f"{root}: no course {course_id!r} (no {course_id}/course.toml)"
            )
    elif not folders:
        report.course_problems.append(f"{root}: no course folders (each needs a course.toml)")
    chains: dict[tuple, Future[str]] = {}
    jobs: list[tuple[Future[LabReport], Future[str] | None, bool]] = []
    with (
        ThreadPoolExecutor(max(1, workers), thread_name_prefix="course-check-grade") as graders,
        ThreadPoolExecutor(1, thread_name_prefix="course-check-chain") as starter,
    ):
        for folder in folders:
            try:
                course = load_course(folder)
            except CourseError as exc:
                report.course_problems += exc.problems
                continue
            for lab in course.labs:
                spec = lab.spec.chain
                pending: Future[str] | None = None
                shared = False
                note = "-"
                if spec is not None and chain:
                    key = chain_key(spec, lab.folder)
                    shared = key in chains
                    if not shared:
                        chains[key] = starter.submit(start_chain, lab)
                    pending = chains[key]
                elif spec is not None:
                    note = "not started (--no-chain)"
                jobs.append(
                    (
                        graders.submit(
                            _grade_job,
                            course,
                            lab,
                            limits,
                            note,
                            require_variants,
                            require_languages,
                        ),
                        pending,
                        shared,
                    )
                )
        for graded, pending, shared in jobs:
            lab_report = graded.result()
            if pending is not None:
                try:
                    summary = pending.result()
                    lab_report.chain = summary + (" (checked above)" if shared else "")
                except RuntimeError as exc:
                    lab_report.chain = "FAIL"
                    lab_report.problems.append(str(exc))
            report.labs.append(lab_report)
            if on_lab is not None:
                on_lab(lab_report)
    report.seconds = time.monotonic() - started
    return report
