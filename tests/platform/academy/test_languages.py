"""A learner works in English or 简体中文: the pages, the notebooks they fetch and the grader's
messages follow their choice (or their browser), and both versions grade the same."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import nbformat
import pytest
from academy.models import User
from academy.services.errors import Invalid
from academy.services.language import files_in, version_of
from sqlmodel import Session, select

from .builders import LAB, answer, source_notebook, write_course
from .conftest import BASE, World
from .test_learner_flow import submit, wait_graded

ZH = "zh-CN"


def _versions(courses: Path, points: float = 1) -> None:
    """The demo course's lab with a message on its visible test, in English and Chinese."""
    root = write_course(courses)
    folder = root / "source" / LAB
    english = source_notebook()
    english.cells[2].source += ", 'sha_hex is wrong'"
    chinese = nbformat.from_dict(json.loads(json.dumps(english)))
    chinese.metadata["lang"] = ZH
    chinese.cells[0].source = "# SHA-256\n实现 `sha_hex`。"
    chinese.cells[2].source = chinese.cells[2].source.replace(
        "sha_hex is wrong", "sha_hex 的结果不对"
    )
    chinese.cells[2].metadata["nbgrader"]["points"] = points
    nbformat.write(english, folder / f"{LAB}.ipynb")
    nbformat.write(chinese, folder / f"{LAB}.{ZH}.ipynb")
    (folder / f"README.{ZH}.md").write_text("哈希。\n")


def _release(world: World, who: str, **headers: str) -> tuple[str, dict[str, bytes]]:
    aid = world.ids["assignment_a"]
    r = world.client.get(
        f"{BASE}/assignments/{aid}/release", headers={**world.headers(who), **headers}
    )
    assert r.status_code == 200, r.text
    body = r.json()
    return body["language"], {
        f["path"]: base64.b64decode(f["content_base64"]) for f in body["files"]
    }


def test_files_of_a_language() -> None:
    files = [
        Path(n)
        for n in (
            "README.md",
            "README.zh-CN.md",
            "a.ipynb",
            "a.zh-CN.ipynb",
            "b.ipynb",
            "lab.toml",
            "x.fr-FR.md",
        )
    ]
    assert version_of(Path("README.zh-CN.md")) == (Path("README.md"), ZH)
    assert [p.name for p in files_in(files, ZH)] == [
        "README.zh-CN.md",
        "a.zh-CN.ipynb",
        "b.ipynb",
        "lab.toml",
        "x.fr-FR.md",
    ]
    assert [p.name for p in files_in(files, "en")] == [
        "README.md",
        "a.ipynb",
        "b.ipynb",
        "lab.toml",
        "x.fr-FR.md",
    ]


def test_a_learner_gets_and_is_graded_in_their_language(world_on, tmp_path: Path) -> None:
    _versions(tmp_path / "courses")
    world = world_on("sqlite")
    # the browser's language until a choice is stored
    lang, files = _release(world, "learner_a")
    assert lang == "en" and set(files) == {"sha.ipynb", "README.md", "lab.toml"}
    lang, files = _release(world, "learner_a", **{"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.5"})
    assert lang == ZH and set(files) == {"sha.zh-CN.ipynb", "README.zh-CN.md", "lab.toml"}
    zh_nb = json.loads(files["sha.zh-CN.ipynb"])
    assert zh_nb["metadata"]["lang"] == ZH and "实现" in "".join(zh_nb["cells"][0]["source"])

    put = world.client.put(
        f"{BASE}/me/language", headers=world.headers("learner_a"), json={"language": "zh_CN"}
    )
    assert put.status_code == 200 and put.json() == {"language": ZH, "effective": ZH}
    assert (
        world.client.get(f"{BASE}/me", headers=world.headers("learner_a")).json()["language"] == ZH
    )
    lang, _ = _release(world, "learner_a", **{"Accept-Language": "en"})
    assert lang == ZH  # the stored choice wins over the browser
    lang, _ = _release(world, "learner_a2")
    assert lang == "en"  # and is the learner's own
    aid = world.ids["assignment_a"]
    asked = world.client.get(
        f"{BASE}/assignments/{aid}/release?language=en", headers=world.headers("learner_a")
    )
    assert asked.json()["language"] == "en"

    # the Chinese notebook, wrong: graded against the Chinese source, same ids and points
    wrong = submit(world, "learner_a", aid, answer(zh_nb, correct=False), "sha.zh-CN.ipynb")
    graded = wait_graded(world, "learner_a", wrong.json()["id"])
    assert (graded["status"], graded["score"], graded["max_score"]) == ("graded", 0.0, 3.0)
    assert set(graded["cells"]) == {"visible", "hidden"}
    feedback = world.client.get(
        f"{BASE}/submissions/{graded['id']}/feedback", headers=world.headers("learner_a")
    ).text
    assert "sha_hex 的结果不对" in feedback and "sha_hex is wrong" not in feedback
    assert "得分" in feedback and "<td>未通过</td>" in feedback
    right = submit(world, "learner_a", aid, answer(zh_nb, correct=True), "sha.zh-CN.ipynb")
    assert wait_graded(world, "learner_a", right.json()["id"])["score"] == 3.0
    # the English notebook, wrong: English message
    _, files = _release(world, "learner_a2")
    en_nb = json.loads(files["sha.ipynb"])
    other = submit(world, "learner_a2", aid, answer(en_nb, correct=False))
    graded = wait_graded(world, "learner_a2", other.json()["id"])
    assert (graded["score"], graded["max_score"]) == (0.0, 3.0)
    feedback = world.client.get(
        f"{BASE}/submissions/{graded['id']}/feedback", headers=world.headers("learner_a2")
    ).text
    assert "sha_hex is wrong" in feedback


def test_a_language_choice_is_checked_and_can_be_undone(world_on) -> None:
    world = world_on("sqlite")
    bad = world.client.put(
        f"{BASE}/me/language", headers=world.headers("learner_a"), json={"language": "fr"}
    )
    assert bad.status_code == 422 and "choose one of en, zh-CN" in bad.text
    aid = world.ids["assignment_a"]
    asked = world.client.get(
        f"{BASE}/assignments/{aid}/release?language=klingon", headers=world.headers("learner_a")
    )
    assert asked.status_code == 422 and "not offered" in asked.text
    world.client.put(
        f"{BASE}/me/language", headers=world.headers("learner_a"), json={"language": ZH}
    )
    undo = world.client.put(
        f"{BASE}/me/language", headers=world.headers("learner_a"), json={"language": None}
    )
    assert undo.json() == {"language": None, "effective": "en"}
    # a lab with no Chinese version comes in English whatever the choice
    world.client.put(
        f"{BASE}/me/language", headers=world.headers("learner_a"), json={"language": ZH}
    )
    lang, files = _release(world, "learner_a")
    assert lang == ZH and set(files) == {"sha.ipynb", "README.md", "lab.toml"}


def test_the_pages_follow_the_choice(world_on) -> None:
    world = world_on("sqlite")
    me = world.client.get(f"{BASE.removesuffix('/api')}/me/", headers=world.headers("learner_a"))
    assert me.status_code == 200, me.text
    assert '<html lang="en"' in me.text and 'id="language-form"' in me.text
    posted = world.client.post(
        f"{BASE.removesuffix('/api')}/me/language",
        headers=world.headers("learner_a"),
        data={"language": ZH},
        follow_redirects=False,
    )
    assert posted.status_code == 303
    me = world.client.get(f"{BASE.removesuffix('/api')}/me/", headers=world.headers("learner_a"))
    assert '<html lang="zh-CN"' in me.text and "我的课程" in me.text
    with Session(world.engine) as session:
        user = session.exec(select(User).where(User.username == "learner-a")).one()
        assert user.language == ZH


def test_release_refuses_a_translation_out_of_step(world_on, tmp_path: Path) -> None:
    _versions(tmp_path / "courses", points=5)  # the Chinese visible test is worth 5, not 1
    with pytest.raises(Invalid, match=r"sha\.zh-CN\.ipynb: cell 2 \(visible\): nbgrader metadata"):
        world_on("sqlite")


def test_fetch_in_jupyterlab_follows_the_browser_until_a_choice(
    settings_for, tmp_path: Path
) -> None:
    """What the Fetch button does: the learner's client asks academy with the browser's
    Accept-Language (the server extension passes it on); a stored choice wins over it."""
    from academy.app import create_app
    from academy.client import AcademyClient

    from tests.platform import appserver

    from .conftest import build_world

    _versions(tmp_path / "courses")
    settings = settings_for("sqlite", grade_workers=0, credentials_auto_seconds=0)
    app = create_app(settings)
    port = appserver.free_port()
    stop = appserver.start(app, port)
    try:
        world = build_world(settings, None, engine=app.state.academy.engine)
        learner = AcademyClient(
            f"http://127.0.0.1:{port}/services/academy", world.tokens["learner_a"]
        )
        zh = learner.fetch("sha", tmp_path / "zh-home", accept_language="zh-CN,zh;q=0.9")
        assert sorted(p.name for p in zh) == ["README.zh-CN.md", "lab.toml", "sha.zh-CN.ipynb"]
        fetched = json.loads((tmp_path / "zh-home/demo-hashing/sha/sha.zh-CN.ipynb").read_text())
        assert fetched["metadata"]["lang"] == ZH and fetched["metadata"]["academy"]["lab"] == "sha"
        en = learner.fetch("sha", tmp_path / "en-home")
        assert sorted(p.name for p in en) == ["README.md", "lab.toml", "sha.ipynb"]
        learner._call("PUT", "/me/language", json={"language": "en"})
        chosen = learner.fetch("sha", tmp_path / "chosen-home", accept_language="zh-CN")
        assert "sha.ipynb" in {p.name for p in chosen}
        learner.close()
    finally:
        stop()


def test_the_submission_page_words_the_grader_s_own_messages_in_chinese() -> None:
    from academy.pages.learner import _reason

    assert _reason("zh", "hidden test raised ValueError") == "隐藏测试抛出了 ValueError"
    assert _reason("zh", "hidden test failed") == "隐藏测试未通过"
    assert _reason("en", "hidden test failed") == "hidden test failed"
    assert _reason("zh", "AssertionError: 结果不对") == "AssertionError: 结果不对"


def test_a_notebook_that_claims_another_language_grades_the_same(world_on, tmp_path: Path) -> None:
    """metadata.lang only picks which version's words a submission is graded with: an English
    notebook relabelled Chinese, or a language we do not offer, scores what it earns."""
    _versions(tmp_path / "courses")
    world = world_on("sqlite")
    aid = world.ids["assignment_a"]
    _, files = _release(world, "learner_a")
    english = json.loads(files["sha.ipynb"])
    scores = {}
    for claim in (ZH, "fr", None):
        nb = json.loads(json.dumps(english))
        if claim:
            nb["metadata"]["lang"] = claim
        for correct in (True, False):
            sub = submit(world, "learner_a", aid, answer(nb, correct=correct))
            scores[(claim, correct)] = wait_graded(world, "learner_a", sub.json()["id"])["score"]
    assert scores == {(c, ok): 3.0 if ok else 0.0 for c in (ZH, "fr", None) for ok in (True, False)}
