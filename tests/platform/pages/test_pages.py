"""The learner pages, the instructor dashboard and the public verification page, against the real
academy app served on a loopback port (grading through the real grader sandbox, no hub).

One cohort world for the module: learner-a hands in right answers to both labs, learner-a2 a wrong
one, learner-b sits at another institution. What each page shows, in English and Chinese; who may
see what (a learner only their own, an instructor only their cohorts); the dashboard's forms act
through the API's rules; in Chromium the certificate is issued, shared, verified, and a tampered
copy dropped on the page is shown invalid with the failed check.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from academy.db import referenced, session_scope
from academy.models import Cohort, LatePolicy, id_of
from academy.services.access import ALL_SCOPES, Principal
from academy.services.courses import release_lab
from academy.services.identity import roles_of, user_by_name
from academy.settings import Settings

from labs.minichain.waiting import wait_until
from tests.platform import appserver
from tests.platform.academy.builders import answer, write_course
from tests.platform.academy.conftest import World, build_world

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[3] / "test-artifacts" / "pages"
ZH = {"Accept-Language": "zh-CN,zh;q=0.9"}


class Site:
    """The served app and a way to call it as any user of the world."""

    def __init__(self, origin: str, base: str, world: World) -> None:
        self.origin, self.url, self.world = origin, origin + base, world
        self.ids = world.ids
        self.http = httpx.Client(timeout=30)

    def get(self, who: str, path: str, **headers: str) -> httpx.Response:
        return self.http.get(self.url + path, headers={**self.world.headers(who), **headers})

    def post(self, who: str, path: str, **kw: Any) -> httpx.Response:
        return self.http.post(self.url + path, headers=self.world.headers(who), **kw)


def _wait_graded(site: Site, who: str, sid: int) -> dict:
    last: dict = {}

    def settled() -> dict | None:
        last.update(site.get(who, f"/api/submissions/{sid}").json())
        return dict(last) if last["status"] in ("graded", "failed") else None

    return wait_until(settled, 90, message=lambda: f"submission {sid} not graded: {last}")


def _submit(site: Site, who: str, aid: int, correct: bool) -> int:
    files = site.get(who, f"/api/assignments/{aid}/release").json()["files"]
    nb = next(
        json.loads(base64.b64decode(f["content_base64"]))
        for f in files
        if f["path"].endswith(".ipynb")
    )
    reply = site.post(who, f"/api/assignments/{aid}/submissions",
                      files={"notebook": ("lab.ipynb", answer(nb, correct), "application/x-ipynb+json")})  # fmt: skip
    assert reply.status_code == 202, reply.text
    return reply.json()["id"]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("pages")
    port = appserver.free_port()
    settings = Settings(
        state_dir=root / "state",
        courses_dir=root / "courses",
        sandbox_dir=root / "sandbox",
        grade_workers=2,
        grade_poll_seconds=0.1,
        cell_timeout=20.0,
        credentials_auto_seconds=0,
        public_url=f"http://127.0.0.1:{port}",
    )
    write_course(settings.courses_dir)
    with appserver.serve(settings, port) as served:
        world = build_world(settings, None, served.engine)
        with session_scope(served.engine) as session:
            teacher = user_by_name(session, "instructor-a")
            actor = Principal(teacher, roles_of(session, id_of(teacher)), ALL_SCOPES)
            cohort = referenced(session, Cohort, world.ids["cohort_a"])
            second = release_lab(session, settings, actor, cohort, "second", opens_at=None,
                                 due_at=None, late_policy=LatePolicy.accept, late_penalty_per_day=0.0)  # fmt: skip
            world.ids["second_a"] = id_of(second)
        s = Site(served.origin, settings.base_path, world)
        subs = {
            "right": _submit(s, "learner_a", world.ids["assignment_a"], True),
            "second": _submit(s, "learner_a", world.ids["second_a"], True),
            "wrong": _submit(s, "learner_a2", world.ids["assignment_a"], False),
        }
        for name, sid in subs.items():
            who = "learner_a2" if name == "wrong" else "learner_a"
            assert _wait_graded(s, who, sid)["status"] == "graded"
        s.ids.update({f"sub_{k}": v for k, v in subs.items()})
        yield s


def test_learner_pages_show_my_courses_labs_submissions(site: Site) -> None:
    courses = site.get("learner_a", "/me/")
    assert courses.status_code == 200 and 'lang="en"' in courses.text
    assert "Hashing demo" in courses.text and "University A" in courses.text
    assert "2 / 2" in courses.text  # both labs graded

    labs = site.get("learner_a", "/me/labs")
    assert "SHA-256" in labs.text and "Second lab" in labs.text and "graded" in labs.text
    assert "no chain yet" in labs.text  # no sandbox chain was started in this world

    mine = site.get("learner_a", "/me/submissions")
    assert f"#{site.ids['sub_right']}" in mine.text and "3 / 3" in mine.text
    assert f"#{site.ids['sub_wrong']}" not in mine.text  # learner-a2's

    one = site.get("learner_a2", f"/me/submissions/{site.ids['sub_wrong']}")
    assert re.search(r'id="score">0 / 3<', one.text)
    assert "visible" in one.text and "hidden" in one.text
    assert "HIDDEN-9f1c" not in one.text  # a hidden test's source never reaches the learner
    assert f"/api/submissions/{site.ids['sub_wrong']}/feedback" in one.text

    zh = site.get("learner_a", "/me/submissions", **ZH)
    assert 'lang="zh-CN"' in zh.text and "我的提交" in zh.text and "已评分" in zh.text
    assert "My submissions" not in zh.text


def test_a_learner_sees_only_their_own(site: Site) -> None:
    other = site.get("learner_a2", f"/me/submissions/{site.ids['sub_right']}", Accept="text/html")
    assert (
        other.status_code == 404
        and "no submission" in other.text
        and '<main id="main"' in other.text
    )
    assert "not submitted anything yet" in site.get("learner_b", "/me/submissions").text
    theirs = site.get("learner_b", "/me/").text
    assert "University B" in theirs and "University A" not in theirs
    assert site.get("learner_a", f"/dashboard/{site.ids['cohort_a']}").status_code == 404
    assert "You do not teach any cohort" in site.get("learner_a", "/dashboard/").text
    assert "/dashboard/" not in site.get("learner_a", "/me/").text  # no link to it either
    assert "/dashboard/" in site.get("instructor_a", "/me/").text
    regrade = f"/dashboard/{site.ids['cohort_a']}/assignments/{site.ids['assignment_a']}/regrade"
    assert site.post("learner_a", regrade).status_code == 404


def test_an_instructor_sees_only_their_cohorts(site: Site) -> None:
    index = site.get("instructor_a", "/dashboard/")
    assert f'/dashboard/{site.ids["cohort_a"]}"' in index.text
    assert f'/dashboard/{site.ids["cohort_b"]}"' not in index.text
    assert site.get("instructor_a", f"/dashboard/{site.ids['cohort_b']}").status_code == 404
    assert site.get("instructor_b", f"/dashboard/{site.ids['cohort_a']}").status_code == 404
    # and may not act on another cohort's assignment through this cohort's page
    moved = site.post(
        "instructor_b",
        f"/dashboard/{site.ids['cohort_b']}/assignments/{site.ids['assignment_a']}/regrade",
    )
    assert moved.status_code == 404


def test_dashboard_shows_progress_distribution_heat_map_missing(site: Site) -> None:
    page = site.get("instructor_a", f"/dashboard/{site.ids['cohort_a']}").text
    aid, second = site.ids["assignment_a"], site.ids["second_a"]
    progress = page[
        page.index('id="progress"') : page.index("</table>", page.index('id="progress"'))
    ]
    assert "2 / 2" in progress and "1 / 2" in progress  # sha: both submitted; second: one
    assert "50 %" in progress  # mean of 100 % and 0 %
    dist = page[
        page.index(f'id="dist-{aid}"') : page.index("</svg>", page.index(f'id="dist-{aid}"'))
    ]
    assert re.findall(r'data-band="(\d)" data-count="1"', dist) == ["0", "9"]
    heat = page[page.index('id="heat"') : page.index("</table>", page.index('id="heat"'))]
    assert "<code>hidden</code>" in heat and 'data-rate="0.50"' in heat and "1 / 2" in heat
    grid = page[page.index('id="heat-grid"') : page.index("</table>", page.index('id="heat-grid"'))]
    assert 'data-learner="learner-a2" data-outcome="fail"' in grid
    assert 'data-learner="learner-a" data-outcome="pass"' in grid
    assert grid.index("learner-a2") < grid.index('"learner-a"')  # most failures first
    missing = page[
        page.index(f'id="missing-{second}"') : page.index(
            "</ul>", page.index(f'id="missing-{second}"')
        )
    ]
    assert "learner-a2" in missing and "learner-a" + "<" not in missing
    assert "Regrade every submission" in page and 'for="due-' in page
    zh = site.get("instructor_a", f"/dashboard/{site.ids['cohort_a']}", **ZH).text
    assert "失败最多的隐藏测试" in zh and "成绩分布" in zh and "Hidden tests" not in zh
    # an instructor is not an institution admin: no certificate section
    assert 'id="certs"' not in page


def test_dashboard_forms_use_the_apis_rules(site: Site) -> None:
    cohort, aid = site.ids["cohort_a"], site.ids["assignment_a"]
    base = f"/dashboard/{cohort}/assignments/{aid}"
    done = site.post(
        "instructor_a",
        base + "/extension",
        data={"username": "learner-a2", "due_at": "2031-01-02T03:04"},
    )
    assert done.status_code == 303 and done.headers["location"].endswith("done=extension")
    mine = site.get("learner_a2", f"/api/assignments/{aid}").json()
    assert mine["my_due_at"].startswith("2031-01-02T03:04")
    bad = site.post("instructor_a", base + "/deadline", data={"due_at": "tomorrow"})
    assert bad.status_code == 303 and bad.headers["location"].endswith("error=bad_date")
    shown = site.get("instructor_a", bad.headers["location"].split("/services/academy", 1)[1])
    assert 'role="alert"' in shown.text and "not a date and time" in shown.text
    regrade = site.post("instructor_a", base + "/regrade")
    assert regrade.headers["location"].endswith("done=regrade")
    assert _wait_graded(site, "learner_a", site.ids["sub_right"])["score"] == 3.0

    # a deadline in the past: learner-a2's work on the second lab is now late, not missing
    second = site.ids["second_a"]
    opens = datetime.fromisoformat(
        site.get("instructor_a", f"/api/assignments/{second}").json()["opens_at"]
    )
    due_at = (opens + timedelta(seconds=1)).replace(microsecond=0)
    due = due_at.strftime("%Y-%m-%dT%H:%M:%S")
    moved = site.post(
        "instructor_a", f"/dashboard/{cohort}/assignments/{second}/deadline", data={"due_at": due}
    )
    assert moved.headers["location"].endswith("done=deadline")
    # the lab opened when the site was built, maybe under a second ago: let the deadline pass
    time.sleep(max(0.0, (due_at - datetime.now(UTC)).total_seconds() + 0.1))
    sub = _wait_graded(site, "learner_a2", _submit(site, "learner_a2", second, True))
    assert sub["status"] == "graded" and sub["late_seconds"] > 0, (sub, due, opens)
    page = site.get("instructor_a", f"/dashboard/{cohort}").text
    assert f'id="late-{second}"' in page, page[page.find(f'id="a{second}"') :][:3000]
    late = page[
        page.index(f'id="late-{second}"') : page.index(
            "</table>", page.index(f'id="late-{second}"')
        )
    ]
    assert "learner-a2" in late and "Regrade" in late and re.search(r"\d+ min<", late)
    assert f'id="missing-{second}"' not in page


def test_certificate_issued_shared_verified_and_tampered_in_chromium(
    site: Site, tmp_path: Path
) -> None:
    """Keyboard only where a person would type: admin issues, learner shares, anyone verifies."""
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    cohort = site.ids["cohort_a"]
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            admin = browser.new_context(extra_http_headers=site.world.headers("admin_a")).new_page()
            admin.goto(f"{site.url}/dashboard/{cohort}")
            assert "learner-a" in admin.inner_text("#eligible")
            admin.screenshot(path=str(ARTIFACTS / "dashboard-en.png"), full_page=True)
            admin.focus("#issue")
            admin.keyboard.press("Enter")
            admin.wait_for_selector("#issued")
            assert "Certificates issued" in admin.inner_text("#notice")

            learner_ctx = browser.new_context(
                extra_http_headers={**site.world.headers("learner_a"), **ZH},
                locale="zh-CN",
                accept_downloads=True,
            )
            learner = learner_ctx.new_page()
            learner.goto(f"{site.url}/me/certificates")
            assert learner.get_attribute("html", "lang") == "zh-CN"
            assert "哈希" in learner.inner_text("#certificates")
            learner.get_by_role("button", name="生成分享链接").click()
            link = learner.locator("a.share").get_attribute("href")
            # (a download does not carry the test's token header; the hub journey clicks it)
            href = learner.locator("a.download").get_attribute("href")
            saved = tmp_path / "credential.json"
            saved.write_bytes(learner_ctx.request.get(site.origin + href).body())
            learner.screenshot(path=str(ARTIFACTS / "certificates-zh.png"), full_page=True)

            anyone = browser.new_context().new_page()  # no login at all
            anyone.goto(link)
            assert anyone.get_attribute("#verdict", "data-verdict") == "valid"
            assert anyone.inner_text("#issuer") == "University A"
            assert anyone.inner_text("#achievement") == "Hashing demo"
            outcomes = anyone.locator("#checks tbody tr").evaluate_all(
                "rs => rs.map(r => r.dataset.outcome)"
            )
            assert "fail" not in outcomes and outcomes.count("pass") >= 4
            anyone.fill("#learner", "learner-a")
            anyone.click("#go")
            assert anyone.inner_text("#identity") == "issued to learner-a"
            anyone.screenshot(path=str(ARTIFACTS / "verify-valid-en.png"), full_page=True)

            doc = json.loads(saved.read_text())
            doc["credentialSubject"]["achievement"]["name"] = "Advanced hashing"
            tampered = tmp_path / "tampered.json"
            tampered.write_text(json.dumps(doc))
            anyone.goto(f"{site.url}/verify")
            anyone.set_input_files("#file", str(tampered))  # the page submits a chosen file itself
            anyone.wait_for_selector("#verdict")
            assert anyone.get_attribute("#verdict", "data-verdict") == "invalid"
            assert (
                anyone.get_attribute('#checks tr[data-check="signature"]', "data-outcome") == "fail"
            )
            assert "signature" in anyone.inner_text("#failed")
            anyone.screenshot(path=str(ARTIFACTS / "verify-tampered-en.png"), full_page=True)

            zh = browser.new_context(locale="zh-CN", extra_http_headers=ZH).new_page()
            zh.goto(f"{site.url}/verify")
            # a file dropped on the drop zone is verified the same way
            data = json.dumps(doc)
            handle = zh.evaluate_handle(
                "text => { const dt = new DataTransfer(); dt.items.add(new File([text], 'c.json', {type: 'application/json'})); return dt; }",
                data,
            )
            zh.dispatch_event("#drop", "drop", {"dataTransfer": handle})
            zh.wait_for_selector("#verdict")
            assert zh.inner_text("#verdict") == "无效" and "签名" in zh.inner_text("#failed")
            zh.screenshot(path=str(ARTIFACTS / "verify-tampered-zh.png"), full_page=True)
        finally:
            browser.close()

    [cert] = site.get("learner_a", "/api/credentials/mine").json()
    theirs = site.post("learner_a2", "/me/certificates/share", data={"uid": cert["id"]})
    assert theirs.status_code == 403 and "only the learner" in theirs.json()["detail"]
    assert "Hashing demo" not in site.get("learner_a2", "/me/certificates").text
    again = site.post("anonymous", "/verify", data={"document": "{ not json"})
    assert again.status_code == 422 and "not JSON" in again.text
