"""Every red-team case of cases.toml as a submission to a real course, graded end to end.

The course (``course.py``) has visible, hidden, checker, side-file and partial-credit tests worth
13 points. Each case becomes one learner's submission: its ``answer`` (by default one that is
wrong on every input), its own cells after the answer (``learner``, or the learner cells of its
sandbox-level ``cells``) and at the end (``after``), a metadata ``edit`` and side ``files``. All
submissions are graded by ``grader.autograde`` (one run per set of limits; a case with a
``group`` is graded on its own, after its ``planter`` when it has one), and once more by stock
``nbgrader autograde`` (in a few runs side by side, beside ours). Only the cases the session
selects are graded. For every case:

1. points: a wrong answer scores 0 on every autograded cell (``points = "full"``: an honest
   answer scores full marks, exactly as nbgrader gives);
2. no hidden test text, no neighbour's data and no host environment in the results JSON, any
   reason, the notes or the feedback page;
3. the source's graded cells, maximum points (13) and cell kinds;
4. no process, kernel key, System V IPC object or temporary file of a sandbox uid left behind;

and, in a test of its own, wherever stock nbgrader gives a cell 0, ours gives it 0 too.

A case marked ``open = "why"`` is known to break today: it runs as a strict xfail, so the day
the grader holds, the suite says so and the mark must go (``open_stock`` likewise for the
comparison with nbgrader).
"""

from __future__ import annotations

import contextlib
import html
import json
import os
import shutil
import tempfile
import tomllib
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat
import pytest

from grader import executor
from grader.autograde import autograde
from grader.executor import leftover_pids, uids_taken
from grader.jobs import SubmissionResult
from grader.limits import Limits
from grader.release import release
from grader.results import feedback_html, learner_reason
from grader.scoring import results_json
from tests.grader.redteam import course as rc
from tests.grader.redteam.stock import StockRun, start_stock_autograde

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="the grading sandbox needs root"),
    # the first test of each kind waits for a whole batch: every case, graded once
    pytest.mark.timeout(3000),
]

DATA = tomllib.loads(Path(__file__).with_name("cases.toml").read_text())
CASES: list[dict[str, Any]] = [c for c in DATA["case"] if c.get("graded", True)]
"""The cases graded as submissions (``graded = false``: a sandbox limit, in test_redteam.py
only, where stock nbgrader would only wait out its timeouts or floods)."""
MACROS: dict[str, str] = {"wrong": rc.WRONG, "honest": rc.HONEST, **DATA.get("macros", {})}
BASE = {"cell_timeout": 10.0, "submission_timeout": 120.0}
FINDINGS = {"verdict", "state", "metadata", "side_files", "channels", "threads", "containment"}
NEIGHBOUR = "neighbour"


def _sid(index: int) -> str:
    return f"c{index:03d}"


def _learner_cells(case: dict[str, Any]) -> list[str]:
    if "learner" in case:
        return list(case["learner"])
    return [c["source"] for c in case.get("cells", []) if not c.get("hidden", False)]


def _graded_case(case: dict[str, Any]) -> dict[str, Any]:
    """The case as ``course.submission`` reads it (sandbox-level cells become learner cells)."""
    return {**case, "learner": _learner_cells(case)}


def _where(root: Path, s: rc.Secrets) -> dict[str, str]:
    sub = root / "submitted" / NEIGHBOUR / rc.ASSIGNMENT
    return {
        "COURSE": str(root),
        "SOURCE": str(root / "source" / rc.ASSIGNMENT / f"{rc.NOTEBOOK}.ipynb"),
        "NEIGHBOUR": str(sub / f"{rc.NOTEBOOK}.ipynb"),
        "NEIGHBOUR_FILE": str(sub / "diary.txt"),
        "SECRET": "not-the-secret",
        "WRONG_VECTORS": rc.vectors_csv(wrong=True),
    }


def _neighbour(s: rc.Secrets) -> dict[str, Any]:
    """An honest learner graded in the same batch, whose notebook and files hold their data."""
    return {
        "answer": f"# {s.neighbour}\n" + rc.HONEST,
        "files": [{"name": "diary.txt", "text": f"{s.neighbour} my diary\n"}],
    }


def _planter(case: dict[str, Any], s: rc.Secrets) -> dict[str, Any]:
    """The submission graded right before ``case``: the planter's code, with the neighbour's
    secret in reach (its own notebook, a side file and the ``@PLANT@`` macro)."""
    text = case["planter"].replace("@PLANT@", s.neighbour)
    return {
        "answer": rc.HONEST,
        "learner": [text],
        "files": [{"name": "diary.txt", "text": f"{s.neighbour} planted\n"}],
    }


def build_course(
    root: Path, s: rc.Secrets, cases: Collection[int], extras: bool = True
) -> dict[str, dict[str, Any]]:
    """Source, release and one submission per case of ``cases`` (indices into CASES), beside the
    neighbour; with ``extras`` also the planters and the submissions graded beside a case;
    {student: case}."""
    rc.write_source(root, s)
    release(root, rc.ASSIGNMENT)
    released = nbformat.read(root / "release" / rc.ASSIGNMENT / f"{rc.NOTEBOOK}.ipynb", 4)
    where = _where(root, s)
    students: dict[str, dict[str, Any]] = {NEIGHBOUR: _neighbour(s)}
    for i in sorted(cases):
        case = CASES[i]
        students[_sid(i)] = _graded_case(case)
        if not extras:
            continue
        if "planter" in case:
            students[f"p{i:03d}"] = _planter(case, s)
        if "beside" in case:
            students[f"b{i:03d}"] = {**case["beside"], "learner": case["beside"].get("learner", [])}
    for student, case in students.items():
        folder = root / "submitted" / student / rc.ASSIGNMENT
        folder.mkdir(parents=True)
        nb = rc.submission(released, case, MACROS, where)
        nbformat.write(nb, folder / f"{rc.NOTEBOOK}.ipynb")
        rc.place_files(folder, case.get("files", []), where)
    for student, case in students.items():  # links to other students' files, now they exist
        folder = root / "submitted" / student / rc.ASSIGNMENT
        rc.place_files(folder, case.get("links", []), where)
    return students


def key_users(uids: frozenset[int]) -> list[str]:
    """Lines of /proc/key-users (kernel keys per uid, every user of the host) for ``uids``."""
    with open("/proc/key-users") as fh:
        return [line.strip() for line in fh if int(line.split(":")[0]) in uids]


def sysv_objects(uids: frozenset[int]) -> list[str]:
    """System V shared memory, semaphores and message queues owned by ``uids``."""
    found = []
    for kind in ("shm", "sem", "msg"):
        with open(f"/proc/sysvipc/{kind}") as fh:
            head = fh.readline().split()
            at = head.index("uid")
            found += [f"{kind}: {line.strip()}" for line in fh if int(line.split()[at]) in uids]
    return found


def host_files(uids: frozenset[int]) -> list[str]:
    """Files a sandbox uid owns in the host's shared temporary folders."""
    found = []
    for folder in ("/tmp", "/var/tmp", "/dev/shm", "/dev/mqueue"):
        if not os.path.isdir(folder):
            continue
        with os.scandir(folder) as entries:
            for entry in entries:
                try:
                    if entry.stat(follow_symlinks=False).st_uid in uids:
                        found.append(entry.path)
                except OSError:
                    continue
    return found


def leftovers() -> set[str]:
    uids = uids_taken()
    return {
        *(f"process {p}" for p in leftover_pids(uids)),
        *(f"key-users {k}" for k in key_users(uids)),
        *sysv_objects(uids),
        *(f"file {f}" for f in host_files(uids)),
    }


@dataclass
class Graded:
    secrets: rc.Secrets
    root: Path
    ours: dict[str, SubmissionResult] = field(default_factory=dict)
    left: dict[str, set[str]] = field(default_factory=dict)


def _groups(cases: Collection[int]) -> list[tuple[Limits, list[str], int]]:
    """(limits, students in grading order, workers) per autograde run: one run per set of
    limits, the neighbour in the first, and a run of its own for each case with a ``group``."""
    shared: dict[str, list[str]] = {}
    alone: list[tuple[Limits, list[str], int]] = []
    for i in sorted(cases):
        case = CASES[i]
        limits = {**BASE, **case.get("limits", {})}
        if "group" in case:
            order = [f"p{i:03d}"] if "planter" in case else []
            order += [_sid(i)] + ([f"b{i:03d}"] if "beside" in case else [])
            alone.append((Limits(**limits), order, 2 if "beside" in case else 1))
        else:
            shared.setdefault(json.dumps(limits, sort_keys=True), []).append(_sid(i))
    runs = [(Limits(**json.loads(k)), v, 2) for k, v in shared.items()]
    if not runs:
        runs = [(Limits(**BASE), [], 2)]
    runs[0][1].insert(0, NEIGHBOUR)
    return runs + alone


def _selected(request: pytest.FixtureRequest) -> set[int]:
    """The cases this session runs (all of them, unless ``-k`` or a node id picks a few): only
    those are graded, so a run of one case costs one submission, not the whole suite."""
    chosen = set()
    for item in request.session.items:
        callspec = getattr(item, "callspec", None)
        if callspec is not None and "index" in callspec.params:
            chosen.add(callspec.params["index"])
    return chosen


@pytest.fixture(scope="module")
def secrets() -> rc.Secrets:
    return rc.Secrets()


@pytest.fixture(scope="module")
def graded(request: pytest.FixtureRequest, secrets: rc.Secrets) -> Iterator[Graded]:
    """Every case graded by ``grader.autograde``, group by group (while stock nbgrader, when
    the comparison runs too, grades the same cases on its own)."""
    if any("stock_nbgrader" in item.name for item in request.session.items):
        request.getfixturevalue("stock_started")
    s = secrets
    cases = _selected(request)
    root = Path(tempfile.mkdtemp(prefix="redteam-graded-", dir="/var/tmp"))
    os.chmod(root, 0o700)
    result = Graded(s, root)
    build_course(root, s, cases)
    os.environ[rc.HOST_ENV] = s.host
    executor.shutdown()  # the next zygote starts with the host's probe in its environment
    try:
        for limits, students, workers in _groups(cases):
            before = leftovers()
            done = autograde(root, rc.ASSIGNMENT, workers=workers, limits=limits, students=students)
            result.ours.update(done)
            left = leftovers() - before
            result.left.update({student: left for student in students})
        yield result
    finally:
        os.environ.pop(rc.HOST_ENV, None)
        executor.shutdown()
        shutil.rmtree(root, ignore_errors=True)


@dataclass
class Stock:
    grades: dict[str, dict[str, tuple[float | None, float]]]
    log: str


STOCK_SHARDS = 3
"""Stock nbgrader runs side by side, each on a share of the cases: most of its time is spent
waiting (a kernel starting, a cell running into its timeout), not computing."""
STOCK_CELL_TIMEOUT = 6
"""Seconds stock nbgrader waits for a cell (its default is 30): a cell that ends does so in well
under a second here, so only the hostile cells that never end wait this long."""


@pytest.fixture(scope="module")
def stock_started(
    request: pytest.FixtureRequest, secrets: rc.Secrets, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[tuple[Path, StockRun]]]:
    """The same submissions (not the planters) through stock nbgrader: each shard a course of
    its own, in a run of its own, under a kernel uid of its own (a fork bomb in one shard must
    not use up the process limit of another's kernels)."""
    cases = sorted(_selected(request))
    with contextlib.ExitStack() as stack:
        runs = []
        for shard in range(STOCK_SHARDS):
            mine = cases[shard::STOCK_SHARDS]
            if not mine:
                continue
            root = tmp_path_factory.mktemp(f"redteam-stock{shard}") / "course"
            build_course(root, secrets, mine, extras=False)
            run = start_stock_autograde(
                root,
                rc.ASSIGNMENT,
                uid=_stock_uid(shard),
                cell_timeout=STOCK_CELL_TIMEOUT,
                exclude=[NEIGHBOUR],
            )
            runs.append((root, stack.enter_context(run)))
        yield runs


@pytest.fixture(scope="module")
def stock(stock_started: list[tuple[Path, StockRun]]) -> Stock:
    grades: dict[str, dict[str, tuple[float | None, float]]] = {}
    logs = []
    for root, run in stock_started:
        logs.append(run.wait(timeout=1200)[-2000:])
        grades.update(_stock_grades(root))
    return Stock(grades, "\n".join(logs))


def _stock_uid(shard: int) -> int:
    """An unprivileged uid for stock nbgrader's kernels, outside every sandbox uid range."""
    return 250_000 + (os.getpid() % 3_000) * STOCK_SHARDS + shard


def _stock_grades(root: Path) -> dict[str, dict[str, tuple[float | None, float]]]:
    from nbgrader.api import Gradebook, MissingEntry

    grades: dict[str, dict[str, tuple[float | None, float]]] = {}
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
        for student in [_sid(i) for i in range(len(CASES))]:
            try:
                nb = gb.find_submission_notebook(rc.NOTEBOOK, rc.ASSIGNMENT, student)
            except MissingEntry:
                continue
            grades[student] = {g.name: (g.auto_score, g.max_score) for g in nb.grades}
    return grades


def _marks(case: dict[str, Any], test: str) -> list[Any]:
    why = case.get("open" if test == "case" else "open_stock")
    # a hog's effect on its neighbour depends on the host's load: such a case may pass by luck
    strict = not case.get("load_dependent", False)
    return [pytest.mark.xfail(reason=why, strict=strict)] if why else []


def _params(test: str) -> list[Any]:
    return [
        pytest.param(i, case, id=case["name"], marks=_marks(case, test))
        for i, case in enumerate(CASES)
    ]


def test_an_honest_submission_scores_full_marks(graded: Graded) -> None:
    """The control: the neighbour's honest answer passes every test, the checker's included,
    so a case that scores 0 does so because of what it did, not a broken course."""
    cells = graded.ours[NEIGHBOUR].notebooks[rc.NOTEBOOK]
    assert {g: r.points for g, r in cells.items()} == {
        g: None if g in rc.MANUAL else m for g, m in rc.SOURCE_MAX.items()
    }, {g: r.reason for g, r in cells.items()}


def test_every_case_names_a_finding_class() -> None:
    assert len(CASES) >= 60
    assert {c.get("finding") for c in CASES} == FINDINGS, "every class, and only these"
    for case in CASES:
        assert case.get("points", "zero") in ("zero", "full"), case["name"]


def _texts(result: SubmissionResult) -> dict[str, str]:
    """Everything of a result that leaves the grader: JSON, reasons, notes and the feedback."""
    page = feedback_html(result.student, rc.ASSIGNMENT, result.notebooks, result.notes)
    reasons = [learner_reason(r) for cells in result.notebooks.values() for r in cells.values()]
    return {
        "results JSON": json.dumps(results_json({result.student: result.notebooks})),
        "feedback": html.unescape(page),
        "learner reasons": "\n".join(reasons),
        "notes": "\n".join(result.notes),
        "problem": result.problem or "",
    }


@pytest.mark.parametrize(("index", "case"), _params("case"))
def test_hostile_submission_is_graded_as_the_source_says(
    index: int, case: dict[str, Any], graded: Graded
) -> None:
    result = graded.ours[_sid(index)]
    cells = result.notebooks[rc.NOTEBOOK]
    problems = []
    # 3. the source's graded cells, points and kinds
    if {g: r.max_points for g, r in cells.items()} != rc.SOURCE_MAX:
        problems.append(f"graded cells: { ({g: r.max_points for g, r in cells.items()}) }")
    for gid, r in cells.items():
        if r.hidden != (gid in rc.SOURCE_HIDDEN):
            problems.append(f"{gid}: hidden={r.hidden}")
        if gid not in rc.MANUAL and r.status == "manual":
            problems.append(f"{gid}: an autograded test left to a human")
    # 1. points
    auto = {g: r for g, r in cells.items() if g not in rc.MANUAL}
    if case.get("points", "zero") == "zero":
        scored = {g: (r.points, r.status, r.reason[:80]) for g, r in auto.items() if r.points}
        if scored:
            problems.append(f"a wrong answer scored: {scored}")
    else:
        short = {g: (r.points, r.reason[:80]) for g, r in auto.items() if r.points != r.max_points}
        if short:
            problems.append(f"an honest answer lost points: {short}")
    # 2. leaks
    for where, text in _texts(result).items():
        for what, secret in graded.secrets.all().items():
            if secret in text:
                problems.append(f"{what} in the {where}")
    # 4. leftovers
    if graded.left.get(_sid(index)):
        problems.append(f"left behind: {sorted(graded.left[_sid(index)])[:5]}")
    assert not problems, problems


@pytest.mark.parametrize(("index", "case"), _params("stock"))
def test_where_stock_nbgrader_gives_zero_so_do_we(
    index: int, case: dict[str, Any], graded: Graded, stock: Stock
) -> None:
    theirs = {g: p for g, (p, _) in stock.grades.get(_sid(index), {}).items() if p is not None}
    if not theirs.keys() - rc.MANUAL:  # nbgrader stopped on the notebook or its kernel
        pytest.skip(f"stock nbgrader recorded no points: {stock.log[-300:]}")
    ours = graded.ours[_sid(index)].notebooks[rc.NOTEBOOK]
    differ = {
        g: (ours[g].points, ours[g].reason[:80]) if g in ours else "missing"
        for g, points in theirs.items()
        if points == 0 and (g not in ours or ours[g].points != 0)
    }
    assert not differ, f"stock nbgrader gives 0, ours gives points: {differ}"
    if case.get("points") == "full":  # an honest submission: exactly nbgrader's points
        assert {g: ours[g].points for g in theirs} == theirs
