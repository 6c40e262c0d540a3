"""The grader in two languages: the checkers answer in the language of the source graded
against, and a learner who hands in the Chinese version is graded against the Chinese source."""

from __future__ import annotations

import re
import string
from pathlib import Path

import nbformat
import pytest
from academy.courses.labtext import build_notebook

from grader import jobs
from grader.assignment import Course
from grader.checks import messages
from grader.checks.hashing import check_function, strategies
from grader.jobs import grade_notebook, grade_submission
from grader.language import LANGUAGE_ENV, LANGUAGE_FILE
from grader.release import release, release_node

LAB = """# %% md
# {title}
# %% solution shout
def shout(text):
    ### BEGIN SOLUTION
    return text.upper()
    ### END SOLUTION
# %% test test_shout 3
from grader.checks.hashing import check_function, strategies
check_function(shout, str.upper, strategies.text(max_size=5), name="shout")
### BEGIN HIDDEN TESTS
assert shout("a") == "A", "{hidden}"
### END HIDDEN TESTS
"""
EN = LAB.format(title="Shout", hidden="shout('a') must be 'A'")
ZH = LAB.format(title="大写", hidden="shout('a') 应当返回 'A'")
WRONG = "def shout(text):\n    return text.lower()\n"


def _fields(template: str) -> set[str]:
    return {f for _, f, _, _ in string.Formatter().parse(template) if f}


def test_every_message_has_every_language_with_the_same_fields() -> None:
    for key, entry in messages.MESSAGES.items():
        assert set(entry) == {"en", "zh-CN"}, key
        assert _fields(entry["en"]) == _fields(entry["zh-CN"]), key
        assert re.search(r"[\u4e00-\u9fff]", entry["zh-CN"]), f"{key}: not translated"


def test_the_language_comes_from_the_environment_then_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(LANGUAGE_ENV, raising=False)
    assert messages.language() == "en"
    (tmp_path / LANGUAGE_FILE).write_text("zh-CN")
    assert messages.language() == "zh-CN"
    monkeypatch.setenv(LANGUAGE_ENV, "en-GB")
    assert messages.language() == "en"
    monkeypatch.setenv(LANGUAGE_ENV, "zh_CN")
    assert messages.say("balance", who="alice", got=1, want=2) == "alice 的余额是 1 wei，期望为 2"
    monkeypatch.setenv(LANGUAGE_ENV, "klingon")  # unknown: falls to the file
    assert messages.language() == "zh-CN"
    (tmp_path / LANGUAGE_FILE).write_bytes(b"\xff\xfe")
    assert messages.language() == "en"


def test_a_checker_fails_in_chinese(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(LANGUAGE_ENV, "zh-CN")
    with pytest.raises(AssertionError, match=r"^shout\('A'\) 返回了 'a'，期望结果为 'A'$"):
        check_function(str.lower, str.upper, strategies.just("A"), name="shout")
    monkeypatch.setenv(LANGUAGE_ENV, "en")
    with pytest.raises(AssertionError, match=r"^shout\('A'\) returned 'a', but expected 'A'$"):
        check_function(str.lower, str.upper, strategies.just("A"), name="shout")


def _submission(source: nbformat.NotebookNode, code: str) -> nbformat.NotebookNode:
    nb = release_node(source, "shout", "shout")
    for cell in nb.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == "shout":
            cell.source = code
    return nb


@pytest.mark.parametrize(
    ("text", "language", "said"),
    [(EN, "en", "returned 'a', but expected 'A'"), (ZH, "zh-CN", "返回了 'a'，期望结果为 'A'")],
)
def test_grading_answers_in_the_language_of_the_source(text: str, language: str, said: str) -> None:
    source = build_notebook(text, language=language)
    results = grade_notebook(source, _submission(source, WRONG), "shout")
    assert results["test_shout"].points == 0
    assert said in results["test_shout"].reason
    right = grade_notebook(
        source, _submission(source, "def shout(t):\n    return t.upper()\n"), "shout"
    )
    assert right["test_shout"].points == 3


def _course(root: Path) -> Course:
    folder = root / "source" / "shout"
    folder.mkdir(parents=True)
    (folder / "shout.ipynb").write_text(nbformat.writes(build_notebook(EN)))
    (folder / "shout.zh-CN.ipynb").write_text(nbformat.writes(build_notebook(ZH, language="zh-CN")))
    return Course(root)


def test_release_writes_every_language(tmp_path: Path) -> None:
    course = _course(tmp_path)
    written = sorted(p.name for p in release(tmp_path, "shout"))
    assert written == ["shout.ipynb", "shout.zh-CN.ipynb"]
    zh = nbformat.read(course.release_dir("shout") / "shout.zh-CN.ipynb", as_version=4)
    assert zh.metadata["lang"] == "zh-CN" and zh.cells[0].source == "# 大写"
    assert "应当返回" not in nbformat.writes(zh)  # hidden tests removed in every language
    assert "    # 在此编写你的代码\n    raise NotImplementedError()" in zh.cells[1].source
    en = nbformat.read(course.release_dir("shout") / "shout.ipynb", as_version=4)
    assert "    # YOUR CODE HERE\n    raise NotImplementedError()" in en.cells[1].source


def test_a_chinese_submission_is_graded_against_the_chinese_source(tmp_path: Path) -> None:
    course = _course(tmp_path)
    zh_source = nbformat.read(course.source_dir("shout") / "shout.zh-CN.ipynb", as_version=4)
    folder = course.submitted_dir("li", "shout")
    folder.mkdir(parents=True)
    # right on the visible test, wrong on the hidden one: its message is the Chinese source's
    code = "def shout(text):\n    return text.upper() if text != 'a' else 'a'\n"
    sub = _submission(zh_source, code)
    (folder / "shout.zh-CN.ipynb").write_text(nbformat.writes(sub))
    result = grade_submission(course, "shout", "li")
    assert list(result.notebooks) == ["shout"]  # the same notebook as in English
    cell = result.notebooks["shout"]["test_shout"]
    assert cell.points == 0 and "shout('a') 应当返回 'A'" in cell.reason
    # both versions handed in: the English one is the submission
    (folder / "shout.ipynb").write_text(nbformat.writes(_submission(build_notebook(EN), code)))
    cell = grade_submission(course, "shout", "li").notebooks["shout"]["test_shout"]
    assert "shout('a') must be 'A'" in cell.reason


def test_nothing_handed_in_says_so_in_the_english_name(tmp_path: Path) -> None:
    course = _course(tmp_path)
    (course.submitted_dir("wu", "shout")).mkdir(parents=True)
    job = jobs.load_job(course, "shout", "wu")
    assert [(n, why) for n, _, _, why in job.notebooks] == [
        ("shout", "shout.ipynb was not submitted")
    ]


def test_the_feedback_page_speaks_the_language_of_the_notebook() -> None:
    from grader.results import feedback_html
    from grader.scoring import CellResult

    cells = {
        "shout": {
            "test_shout": CellResult("test_shout", 0.0, 3.0, "failed", "ValueError: x", True),
            "test_more": CellResult("test_more", 2.0, 2.0, "passed", "", False),
        }
    }
    zh = feedback_html("li", "大写", cells, ["notes.txt: too big"], language="zh-CN")
    assert '<html lang="zh-CN">' in zh and "得分: <strong>2 / 5</strong>" in zh
    assert "<th>测试</th><th>分值</th><th>状态</th><th>说明</th>" in zh
    assert "<td>未通过</td><td>隐藏测试抛出了 ValueError</td>" in zh and "<td>通过</td>" in zh
    assert "未使用的文件" in zh and "Score" not in zh and "hidden test" not in zh
    en = feedback_html("li", "shout", cells)
    assert (
        '<html lang="en">' in en and "<td>failed</td><td>hidden test raised ValueError</td>" in en
    )
    assert feedback_html("li", "shout", cells, language="fr") == en  # unknown: English
