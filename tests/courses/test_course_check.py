"""``academy course check`` on the real courses, and on broken courses that it must refuse.

The real run grades every lab's reference solution and released starter in the grader's sandbox
and starts every lab's chain as validator processes: it is the proof that each lab works.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import nbformat
import pytest
from academy.courses import CourseError, load_course
from academy.courses.check import check_courses
from academy.courses.labtext import build_notebook

REPO = Path(__file__).resolve().parents[2]
COURSES = REPO / "courses"
ACADEMY = [sys.executable, "-m", "academy.cli"]
NO_PRELOAD = dict(os.environ, CHAINACADEMY_SANDBOX_PRELOAD="")  # small labs need no web3 warm


def _listed_labs() -> list[str]:
    labs = []
    for course in sorted(COURSES.glob("*/course.toml")):
        data = tomllib.loads(course.read_text())
        labs += [f"{data['course']['id']}/{lab['id']}" for lab in data["labs"]]
    return labs


@pytest.mark.timeout(1800)
def test_every_course_checks_out() -> None:
    """Every lab, in both languages: full marks for the solution, zero for the starter, every
    mutant killed and every alternative full, its chain comes up."""
    proc = subprocess.run(
        [*ACADEMY, "course", "check", str(COURSES), "--require-variants", "--require-languages"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=1700,
    )
    print(proc.stdout, proc.stderr)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    labs = _listed_labs()
    assert labs
    lines = [ln for ln in proc.stdout.splitlines() if re.match(r"^(ok|FAIL) ", ln)]
    assert [ln.split()[1].rstrip(":") for ln in lines] == labs
    for line in lines:
        m = re.search(r"solution (\d+(?:\.\d+)?)/(\d+(?:\.\d+)?).*starter 0/(\d+(?:\.\d+)?)", line)
        assert m and m[1] == m[2] == m[3] and float(m[2]) > 0, line
    assert re.search(rf"^{len(labs)} lab\(s\), .*{len(labs)} ok, 0 failed", proc.stdout, re.M)


def _course(root: Path, labs: dict[str, str], chain: str = "") -> Path:
    """A course folder whose labs are given as lab text."""
    course = root / "demo"
    refs = "".join(
        f'\n[[labs]]\nid = "{lab}"\ntitle = "{lab}"\ntitle_zh = "{lab}"\n' for lab in labs
    )
    (course).mkdir(parents=True)
    (course / "course.toml").write_text(
        '[course]\nid = "demo"\ntitle = "Demo"\ntitle_zh = "演示"\nsummary = "s"\n'
        'summary_zh = "s"\nlevel = "primary"\norder = 9\n' + refs
    )
    for lab, text in labs.items():
        folder = course / "source" / lab
        folder.mkdir(parents=True)
        (folder / "lab.toml").write_text(f'[lab]\nid = "{lab}"\ntitle = "{lab}"\n{chain}')
        (folder / "README.md").write_text(f"# {lab}\n")
        nb = build_notebook(text)
        (folder / f"{lab}.ipynb").write_text(nbformat.writes(nb))
    return course


GOOD = """# %% md
# Double
# %% solution double
def double(x):
    ### BEGIN SOLUTION
    return 2 * x
    ### END SOLUTION
# %% test test_double 2
assert double(2) == 4
### BEGIN HIDDEN TESTS
assert double(-3) == -6
### END HIDDEN TESTS
"""

LENIENT = GOOD.replace("assert double(2) == 4", "assert True  # passes on an empty answer").replace(
    "assert double(-3) == -6", "pass"
)
WRONG = GOOD.replace("return 2 * x", "return x + 2")


def test_check_refuses_broken_labs(tmp_path: Path) -> None:
    """A test that passes on the starter and a solution that fails its own test are both caught,
    each on its lab's line with the cell named; the command exits non-zero."""
    course = _course(tmp_path, {"good": GOOD, "lenient": LENIENT, "wrong": WRONG})
    report = check_courses(course.parent, chain=False)
    by_lab = {r.lab: r for r in report.labs}
    assert by_lab["good"].ok and by_lab["good"].solution == (2, 2)
    assert by_lab["good"].starter == (0, 2)
    assert any("starter already scores in test_double" in p for p in by_lab["lenient"].problems)
    assert any("solution loses points in test_double" in p for p in by_lab["wrong"].problems)
    assert not report.ok
    assert "3 lab(s)" in report.summary() and "2 failed" in report.summary()


def test_check_command_exit_code_and_lines(tmp_path: Path) -> None:
    course = _course(tmp_path, {"wrong": WRONG})
    proc = subprocess.run(
        [*ACADEMY, "course", "check", str(course.parent), "--course", "demo", "--no-chain"],
        capture_output=True,
        text=True,
        timeout=300,
        env=NO_PRELOAD,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert proc.stdout.startswith("FAIL demo/wrong: solution 0/2")
    assert "1 lab(s), 2 autograded points, languages en 1, zh-CN 0: 0 ok, 1 failed" in proc.stdout
    missing = check_courses(course.parent, course_id="nope", chain=False)
    assert not missing.ok and missing.course_problems == [
        f"{course.parent}: no course 'nope' (no nope/course.toml)"
    ]


def test_loader_names_file_and_field_of_each_problem(tmp_path: Path) -> None:
    course = _course(
        tmp_path, {"good": GOOD}, chain='[chain]\nvalidators = 2\nconsensus = "pbft"\n'
    )
    toml = course / "course.toml"
    toml.write_text(
        toml.read_text()
        .replace('title_zh = "演示"\n', "")
        .replace("order = 9", "order = 9\ncolor = 1")
        + '\n[[labs]]\nid = "Bad_Id"\ntitle = "x"\ntitle_zh = "x"\n'
    )
    (course / "source" / "good" / "README.md").unlink()
    with pytest.raises(CourseError) as info:
        load_course(course)
    problems = info.value.problems
    assert f"{toml}: course.title_zh: missing: add it" in problems
    assert f"{toml}: course.color: unknown field: remove it or check its spelling" in problems
    assert any(p.startswith(f"{toml}: labs[1] (Bad_Id).id: must be lower-case") for p in problems)
    lab_toml = course / "source" / "good" / "lab.toml"
    assert any(p.startswith(f"{lab_toml}: chain.consensus: input should be") for p in problems)
    assert any("missing README.md" in p for p in problems)
    assert len(problems) == 5, json.dumps(problems, indent=1)


def test_loader_checks_chain_spec_against_itself(tmp_path: Path) -> None:
    course = _course(
        tmp_path,
        {"good": GOOD},
        chain='[chain]\nvalidators = 3\nconsensus = "solo"\nfaults = ["setByzantine"]\n'
        'preload = [{ contract = "Missing.sol", name = "M" }]\n',
    )
    with pytest.raises(CourseError) as info:
        load_course(course)
    text = str(info.value)
    assert "solo consensus runs exactly 1 validator" in text
    assert "preload[0].contract:" in text and "Missing.sol does not exist" in text


def _variant(course: Path, kind: str, lab: str, name: str, body: str) -> None:
    folder = course / kind / lab
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.toml").write_text(body)


def test_mutants_must_lose_and_alternatives_must_pass(tmp_path: Path) -> None:
    """The mutation gate: a mutant the tests catch is killed, one they miss is reported with what it
    gets wrong, a correct alternative the tests refuse is reported, and an edit that no longer
    applies to the reference is reported rather than skipped."""
    course = _course(tmp_path, {"good": GOOD})
    _variant(
        course,
        "mutants",
        "good",
        "adds",
        (
            'what = "adds two instead of doubling"\nbreaks = ["test_double"]\n'
            '[[edit]]\ncell = "double"\nold = "return 2 * x"\nnew = "return x + 2"\n'
        ),
    )
    # x + 2 equals 2 * x at x = 2 only: the visible test misses it, the hidden one catches it
    _variant(
        course,
        "mutants",
        "good",
        "square",
        (
            'what = "squares (right at 0 and 2, wrong elsewhere)"\nbreaks = ["test_double"]\n'
            '[[edit]]\ncell = "double"\nold = "return 2 * x"\nnew = "return x * x if x >= 0 else -6"\n'
        ),
    )
    _variant(
        course,
        "alternatives",
        "good",
        "shift",
        (
            'what = "a left shift"\n[[edit]]\ncell = "double"\n'
            'source = """def double(x):\\n    return x << 1\\n"""\n'
        ),
    )
    _variant(
        course,
        "alternatives",
        "good",
        "float",
        (
            'what = "returns a float, which the tests refuse"\n[[edit]]\ncell = "double"\n'
            'old = "return 2 * x"\nnew = "return float(2 * x) + 0.5"\n'
        ),
    )
    _variant(
        course,
        "mutants",
        "good",
        "stale",
        (
            'what = "edits a line the reference no longer has"\nbreaks = ["test_double"]\n'
            '[[edit]]\ncell = "double"\nold = "return x + x"\nnew = "return 0"\n'
        ),
    )
    report = check_courses(course.parent, chain=False)
    (lab,) = report.labs
    assert lab.mutants == (1, 2), lab.problems
    assert lab.alternatives == (1, 2), lab.problems
    problems = "\n".join(lab.problems)
    assert "mutant square survives test_double: squares" in problems
    assert "alternative float (float.toml) is correct but loses points: test_double 0/2" in problems
    assert "stale.toml: the text to replace occurs 0 times in cell 'double'" in problems
    assert "mutant adds" not in problems
    assert "1/2 mutant(s) killed (50% killed), 1/2 alternative(s) full" in report.summary()
    strict = check_courses(course.parent, chain=False, require_variants=True)
    assert any("at least 5 and 2 are needed" in p for p in strict.labs[0].problems)


def test_a_mutant_must_say_what_it_breaks(tmp_path: Path) -> None:
    course = _course(tmp_path, {"good": GOOD})
    _variant(
        course,
        "mutants",
        "good",
        "silent",
        ('[[edit]]\ncell = "double"\nold = "return 2 * x"\nnew = "return 0"\n'),
    )
    _variant(course, "mutants", "good", "typo", 'what = "x"\nbreaks = ["test_double"]\nedit = 3\n')
    _variant(
        course,
        "mutants",
        "good",
        "nocell",
        (
            'what = "no such cell"\nbreaks = ["test_nothing"]\n'
            '[[edit]]\ncell = "double"\nold = "return 2 * x"\nnew = "return 0"\n'
        ),
    )
    (lab,) = check_courses(course.parent, chain=False).labs
    problems = "\n".join(lab.problems)
    assert "silent.toml: a mutant says `what` it gets wrong" in problems
    assert "typo.toml: edit:" in problems
    assert "mutant nocell: no test cell 'test_nothing'" in problems


def test_a_required_skill_must_be_a_test_cell_of_the_lab(tmp_path: Path) -> None:
    course = _course(tmp_path, {"good": GOOD})
    toml = course / "course.toml"
    toml.write_text(toml.read_text() + 'required = ["test_double", "double", "test_typo"]\n')
    (lab,) = check_courses(course.parent, chain=False).labs
    problems = [p for p in lab.problems if "requires" in p]
    assert problems == [
        "course.toml: [[labs]] good requires 'double', which is no autograded test cell of the lab",
        "course.toml: [[labs]] good requires 'test_typo', which is no autograded test cell of the "
        "lab",
    ]
