"""A lab in English and 简体中文: one assignment, two versions that must stay in step.

``academy course check`` refuses a translation that changes a cell, a grade id, points or the
program, and grades the translation's reference and starter as it grades the English ones; the
grader lists only English notebooks as the assignment and grades a translated submission against
the translated source.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from academy.courses import load_course
from academy.courses.check import check_courses
from academy.courses.labtext import LabTextError, build_file, build_notebook
from academy.courses.languages import program_of, version_problems

from grader.assignment import Course as GraderCourse
from grader.language import notebook_language, split_name, translation_path

GOOD = """# %% md
# Double
# %% solution double
def double(x):
    \"\"\"Return twice x.\"\"\"
    ### BEGIN SOLUTION
    return 2 * x  # twice
    ### END SOLUTION
# %% test test_double 2
assert double(2) == 4, "double(2) should be 4"
### BEGIN HIDDEN TESTS
assert str(double(-3)) == "-6", f"double(-3) gave {double(-3)}"
### END HIDDEN TESTS
"""

ZH = """# %% md
# 加倍
# %% solution double
def double(x):
    \"\"\"返回 x 的两倍。\"\"\"
    ### BEGIN SOLUTION
    return 2 * x  # 两倍
    ### END SOLUTION
# %% test test_double 2
assert double(2) == 4, "double(2) 应当等于 4"
### BEGIN HIDDEN TESTS
assert str(double(-3)) == "-6", f"double(-3) 的结果是 {double(-3)}"
### END HIDDEN TESTS
"""


def _course(root: Path, english: str, chinese: str | None, readme_zh: bool = True) -> Path:
    course = root / "demo"
    folder = course / "source" / "double"
    folder.mkdir(parents=True)
    (course / "course.toml").write_text(
        '[course]\nid = "demo"\ntitle = "Demo"\ntitle_zh = "演示"\nsummary = "s"\n'
        'summary_zh = "s"\nlevel = "primary"\norder = 9\n'
        '\n[[labs]]\nid = "double"\ntitle = "Double"\ntitle_zh = "加倍"\n'
    )
    (folder / "lab.toml").write_text('[lab]\nid = "double"\ntitle = "Double"\n')
    (folder / "README.md").write_text("# Double\n")
    (folder / "double.ipynb").write_text(nbformat.writes(build_notebook(english)))
    if chinese is not None:
        nb = build_notebook(chinese, language="zh-CN")
        (folder / "double.zh-CN.ipynb").write_text(nbformat.writes(nb))
        if readme_zh:
            (folder / "README.zh-CN.md").write_text("# 加倍\n")
    return course


# -- the rule --------------------------------------------------------------------------------


def test_comments_docstrings_and_text_may_change() -> None:
    en = 'def f(x):\n    """Twice."""\n    # why\n    assert x, f"bad {x} at {len(x)}"\n    return "a"\n'
    zh = 'def f(x):\n    """两倍。"""\n    # 原因\n    assert x, f"{len(x)} 处的 {x} 有误"\n    return "乙"\n'
    assert program_of(en) == program_of(zh)


@pytest.mark.parametrize(
    ("english", "changed"),
    [
        ("def f(x):\n    return x + 1\n", "def f(x):\n    return x - 1\n"),  # an operator
        ("def f(x):\n    return x + 1\n", "def f(y):\n    return y + 1\n"),  # a name
        ("def f(x):\n    return x + 1\n", "def f(x):\n    return x + 1\n    pass\n"),
        ('x = b"\\x00"\n', 'x = b"\\x01"\n'),  # bytes are data
        ('x = f"{a + 1} {b}"\n', 'x = f"{a + 2} {b}"\n'),  # an expression in an f-string
        ('x = f"{a} {b}"\n', 'x = f"{a}"\n'),  # one left out
    ],
)
def test_anything_else_in_code_is_a_difference(english: str, changed: str) -> None:
    assert program_of(english) != program_of(changed)


def test_magic_lines_must_be_equal_and_unparsable_cells_compared_as_text() -> None:
    assert program_of("%time x = 1\n") != program_of("%timeit x = 1\n")
    assert program_of("x = (\n") != program_of("y = (\n")
    assert program_of("x = (\n") == program_of("x = (\n\n")


def _nb(text: str, language: str = "zh-CN") -> nbformat.NotebookNode:
    return build_notebook(text, language=language)


def test_a_comparison_continued_on_its_own_line_is_python_not_a_shell_line() -> None:
    en = 'assert (\n    f(1)\n    != f(2)\n), "roots differ"\n'
    zh = 'assert (\n    f(1)\n    != f(2)\n), "根不同"\n'
    assert program_of(en) == program_of(zh)
    assert program_of(en) != program_of(en.replace("f(2)", "f(3)"))


def test_contract_cells_may_translate_comments_and_strings_only() -> None:
    sol = "%%writefile Bank.sol\n// a bank\ncontract B {\n  /* note */ uint x = 6 / 2;\n"
    sol += '  function f() public { require(x > 0, "empty"); }\n}\n'
    sol_zh = sol.replace("// a bank", "// 银行").replace("/* note */", "/* 注 */")
    assert program_of(sol) == program_of(sol_zh.replace('"empty"', '"空"'))
    assert program_of(sol) != program_of(sol.replace("6 / 2", "6 / 3"))
    assert program_of(sol) != program_of(sol.replace("Bank.sol", "Vault.sol"))
    vy = '%%writefile Bank.vy\n"""A bank."""\n# owner\nowner: public(address)\n\n'
    vy += "@external\ndef f(x: uint256) -> uint256:\n    return x * 2  # double\n"
    vy_zh = vy.replace('"""A bank."""', '"""银行。"""').replace("# owner", "# 所有者")
    assert program_of(vy) == program_of(vy_zh.replace("# double", "# 两倍"))
    assert program_of(vy) != program_of(vy.replace("x * 2", "x * 3"))


def test_version_problems_name_each_difference() -> None:
    en = _nb(GOOD, "en")
    assert version_problems(en, _nb(ZH), "zh-CN", "x") == []
    assert any("metadata.lang" in p for p in version_problems(en, _nb(ZH, "en"), "zh-CN", "x"))
    fewer = _nb(ZH.split("# %% test")[0])
    assert any(
        "2 cells, the English version has 3" in p for p in version_problems(en, fewer, "zh-CN", "x")
    )
    points = _nb(ZH.replace("test_double 2", "test_double 3"))
    assert any(
        "cell 2 (test_double): nbgrader metadata" in p
        for p in version_problems(en, points, "zh-CN", "x")
    )
    renamed = _nb(ZH.replace("test_double 2", "test_twice 2"))
    assert any("nbgrader metadata" in p for p in version_problems(en, renamed, "zh-CN", "x"))
    unlocked = _nb(ZH.replace("# %% solution double", "# %% readonly double"))
    assert any("cell 1 (double)" in p for p in version_problems(en, unlocked, "zh-CN", "x"))
    typed = _nb(ZH.replace("# %% md\n# 加倍", "# %% code\nx = 1"))
    assert any(
        "cell 0 is a code cell, in English a markdown" in p
        for p in version_problems(en, typed, "zh-CN", "x")
    )
    code = _nb(ZH.replace("return 2 * x  # 两倍", "return x + x"))
    assert any(
        "cell 1 (double): the code differs" in p for p in version_problems(en, code, "zh-CN", "x")
    )


# -- the course check -----------------------------------------------------------------------


def test_a_faithful_translation_checks_out_in_both_languages(tmp_path: Path) -> None:
    course = _course(tmp_path, GOOD, ZH)
    loaded = load_course(course)
    (lab,) = loaded.labs
    assert [p.name for p in lab.notebooks] == ["double.ipynb"]  # one assignment, not two
    assert lab.languages == ["en", "zh-CN"]
    report = check_courses(course.parent, chain=False, require_languages=True)
    (r,) = report.labs
    assert r.ok, r.problems
    assert r.solution == (2, 2) and r.starter == (0, 2) and r.languages == ["en", "zh-CN"]
    assert "languages en 1, zh-CN 1" in report.summary()
    assert "languages en zh-CN" in r.line()


def test_a_translation_whose_reference_fails_is_refused(tmp_path: Path) -> None:
    """A data string the rule lets through (it is a text literal) is caught by grading the
    translation's own reference solution."""
    course = _course(tmp_path, GOOD, ZH.replace('== "-6"', '== "-7"'))
    (r,) = check_courses(course.parent, chain=False).labs
    assert any(
        p.startswith("double.zh-CN.ipynb: reference solution loses points in test_double")
        for p in r.problems
    ), r.problems


def test_a_translation_whose_starter_scores_is_refused(tmp_path: Path) -> None:
    """A text literal changed in a test can make it pass on an empty answer: grading the
    translation's starter catches it."""
    guard = (
        "\ntry:\n    got = double(2)\nexcept NotImplementedError:\n    got = 'none'\n"
        "assert got != 'none'\n"
    )
    english = GOOD.replace("### BEGIN HIDDEN TESTS", guard.strip("\n") + "\n### BEGIN HIDDEN TESTS")
    english = english.replace('assert double(2) == 4, "double(2) should be 4"\n', "")
    chinese = ZH.replace(
        "### BEGIN HIDDEN TESTS",
        guard.strip("\n").replace("'none'\nassert got != 'none'", "'none'\nassert got != '无'")
        + "\n### BEGIN HIDDEN TESTS",
    )
    chinese = chinese.replace('assert double(2) == 4, "double(2) 应当等于 4"\n', "")
    chinese = chinese.replace(
        'assert str(double(-3)) == "-6", f"double(-3) 的结果是 {double(-3)}"', "pass"
    )
    english = english.replace(
        'assert str(double(-3)) == "-6", f"double(-3) gave {double(-3)}"', "pass"
    )
    course = _course(tmp_path, english, chinese)
    (r,) = check_courses(course.parent, chain=False).labs
    assert r.problems == [
        "double.zh-CN.ipynb: the released starter already scores in test_double: 2/2 "
        "(a test that passes on an empty answer)"
    ]


def test_a_translation_that_changes_the_program_is_refused(tmp_path: Path) -> None:
    course = _course(tmp_path, GOOD, ZH.replace("return 2 * x  # 两倍", "return x + x"))
    (r,) = check_courses(course.parent, chain=False).labs
    assert any("the code differs" in p for p in r.problems), r.problems


def test_require_languages_asks_for_every_version(tmp_path: Path) -> None:
    course = _course(tmp_path, GOOD, None)
    (r,) = check_courses(course.parent, chain=False).labs
    assert r.ok and r.languages == ["en"]  # untranslated labs still pass without the flag
    (r,) = check_courses(course.parent, chain=False, require_languages=True).labs
    folder = course / "source" / "double"
    assert f"no zh-CN version of double.ipynb: add {folder / 'double.zh-CN.ipynb'}" in r.problems
    assert any(p.startswith(f"no zh-CN version of {folder / 'README.md'}") for p in r.problems)


def test_require_languages_asks_for_the_readme_too(tmp_path: Path) -> None:
    course = _course(tmp_path, GOOD, ZH, readme_zh=False)
    (r,) = check_courses(course.parent, chain=False, require_languages=True).labs
    assert [p for p in r.problems if "README" in p] == [
        f"no zh-CN version of {course / 'source/double/README.md'}: add "
        f"{course / 'source/double/README.zh-CN.md'}"
    ]


def test_a_chinese_lab_text_builds_the_chinese_notebook(tmp_path: Path) -> None:
    src = tmp_path / "double.zh-CN.txt"
    src.write_text(ZH)
    nb = nbformat.read(build_file(src, tmp_path / "double.zh-CN.ipynb"), as_version=4)
    assert nb.metadata["lang"] == "zh-CN" and notebook_language(nb) == "zh-CN"
    with pytest.raises(LabTextError, match="build <lab>.zh-CN.txt into <lab>.zh-CN.ipynb"):
        build_file(src, tmp_path / "double.ipynb")
    assert "lang" not in build_notebook(GOOD).metadata


def test_a_stale_chinese_notebook_is_reported(tmp_path: Path) -> None:
    course = _course(tmp_path, GOOD, ZH)
    (course / "labtext").mkdir()
    (course / "labtext" / "double.zh-CN.txt").write_text(ZH.replace("# 加倍", "# 加倍练习"))
    (r,) = check_courses(course.parent, chain=False).labs
    assert any("double.zh-CN.ipynb is out of date with" in p for p in r.problems), r.problems


# -- the grader's view -----------------------------------------------------------------------


def test_names_and_the_notebooks_of_an_assignment(tmp_path: Path) -> None:
    assert split_name("merkle.zh-CN.ipynb") == ("merkle", "zh-CN")
    assert split_name("merkle.ipynb") == ("merkle", "en")
    assert split_name("v1.2-final.ipynb") == ("v1.2-final", "en")  # not a language of ours
    assert split_name("notes.fr-FR.ipynb") == ("notes.fr-FR", "en")
    assert translation_path(Path("a/merkle.zh-CN.ipynb"), "en") == Path("a/merkle.ipynb")
    course = _course(tmp_path, GOOD, ZH)
    grader_course = GraderCourse(course)
    assert [p.name for p in grader_course.source_notebooks("double")] == ["double.ipynb"]
    assert [p.name for p in grader_course.source_notebooks("double", "zh-CN")] == [
        "double.zh-CN.ipynb"
    ]
