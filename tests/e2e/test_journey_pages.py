"""The whole journey in headless Chromium, through a real JupyterHub, in English and in Chinese.

A new learner logs in at the hub, fetches a lab in JupyterLab, finds their own chain running, runs
the cell that deploys a contract on it, finds that transaction in the explorer, submits and reads
grade and feedback on their pages; the instructor sees the submission on the dashboard; the
institution issues the certificate, anchored on the academy ledger; the public page says valid to
someone who is not logged in, and a tampered copy is shown invalid with the failed check.

One hub for the module (PostgreSQL, a one-validator TBFT ledger, a chain per learner); the Chinese
journey is a second learner in a ``zh-CN`` browser context. Screenshots of every page go to
``test-artifacts/journey/``.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell

from labs.minichain.netconfig import init_network
from labs.minichain.network import start_network, stop_network
from tests.e2e.hubharness import PgDatabase, hub_settings
from tests.e2e.test_hub_learner_flow import CHROMIUM_ARGS
from tests.grader.coursegen import python_notebook
from tests.platform.academy.builders import _graded
from tests.platform.credentials.harness import LEDGER_PARAMS

if TYPE_CHECKING:
    from academy.hub.launcher import HubRun
    from playwright.sync_api import Browser, Locator, Page

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "journey"
COURSE, LAB = "chain-basics", "deploy"

COUNTER = '''SOURCE = """
# pragma version ~=0.4.3
count: public(uint256)

@deploy
def __init__(start: uint256):
    self.count = start

@external
def bump(step: uint256) -> uint256:
    self.count += step
    return self.count
"""'''
DEPLOY = (
    COUNTER
    + """
import os
from labs.client import accounts, connect
from labs.minichain.contracts import compile_vyper

w3 = connect()
me = accounts()[0]
compiled = compile_vyper(SOURCE, name="Counter")
factory = w3.eth.contract(abi=compiled.abi, bytecode=compiled.bytecode)
tx = factory.constructor(7).build_transaction(
    {"from": me.address, "nonce": w3.eth.get_transaction_count(me.address, "pending"),
     "chainId": w3.eth.chain_id}
)
tx_hash = w3.eth.send_raw_transaction(me.sign_transaction(tx).raw_transaction)
receipt = w3.eth.wait_for_transaction_receipt(tx_hash)
print("transaction", tx_hash.to_0x_hex())
print("contract", receipt["contractAddress"])
print("explorer", os.environ.get("ACADEMY_EXPLORER_URL", "-"))
"""
)
SOLUTION = "def next_count(count: int, step: int) -> int:\n    return count + step\n"


def write_chain_course(courses: Path) -> Path:
    """A one-lab course whose lab runs on a one-validator chain of the learner's own."""
    root = courses / COURSE
    lab = root / "source" / LAB
    lab.mkdir(parents=True)
    (root / "course.toml").write_text(
        f'[course]\nid = "{COURSE}"\ntitle = "Chain basics"\ntitle_zh = "区块链基础"\n'
        'summary = "Deploy a contract."\nsummary_zh = "部署合约。"\nlevel = "primary"\norder = 1\n\n'
        '[completion]\nrule = "all_labs_at_least"\nthreshold = 0.6\n\n'
        f'[[labs]]\nid = "{LAB}"\ntitle = "Deploy a counter"\ntitle_zh = "部署计数器"\n',
        encoding="utf-8",
    )
    (lab / "lab.toml").write_text(
        f'[lab]\nid = "{LAB}"\ntitle = "Deploy a counter"\n\n'
        '[chain]\nvalidators = 1\nconsensus = "solo"\n'
    )
    (lab / "README.md").write_text("Deploy a counter on your chain.\n")
    nb = python_notebook(
        [
            new_markdown_cell("# Deploy a counter\nRun the next cell: it deploys on your chain."),
            new_code_cell(DEPLOY),
            _graded(
                "def next_count(count: int, step: int) -> int:\n"
                "    ### BEGIN SOLUTION\n    return count + step\n    ### END SOLUTION",
                "impl",
                "solution",
            ),
            _graded("assert next_count(1, 2) == 3", "visible", "test", 1),
            _graded(
                "assert next_count(0, 0) == 0\n### BEGIN HIDDEN TESTS\n"
                "assert next_count(40, 2) == 42\n### END HIDDEN TESTS",
                "hidden",
                "test",
                2,
            ),
        ]
    )
    nbformat.write(nb, lab / f"{LAB}.ipynb")
    return lab / "lab.toml"


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    """The platform with a ledger: hub, proxy, academy (PostgreSQL), a chain per learner."""
    from academy.hub.launcher import start_hub

    from labs.minichain.ports import free_port

    root = tmp_path_factory.mktemp("journey")
    lab_toml = write_chain_course(root / "courses")
    ledger = root / "ledger"
    # one TBFT validator: its blocks carry the signed commits a verifier checks anchors against
    init_network(ledger, nodes=1, consensus="tbft", params=LEDGER_PARAMS)
    cfg = start_network(ledger)
    try:
        with PgDatabase() as db:
            port = free_port()
            settings = hub_settings(
                root / "state",
                root / "courses",
                db.url,
                hub_lab=lab_toml,
                hub_port=port,
                public_url=f"http://localhost:{port}",  # the hub's host, academy's too
                ledger_rpc_url=cfg.rpc_url(0),
                ledger_private_key=cfg.accounts()[0]["private_key"],
                credentials_auto_seconds=0,
            )
            run = start_hub(settings)
            try:
                yield run
            finally:
                run.stop()
    finally:
        stop_network(ledger)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


LANGS: dict[str, dict[str, Any]] = {  # keyword arguments of browser.new_context
    "en": {"locale": "en-US", "extra_http_headers": {"Accept-Language": "en-US,en;q=0.9"}},
    "zh": {"locale": "zh-CN", "extra_http_headers": {"Accept-Language": "zh-CN,zh;q=0.9"}},
}
# words each page must show in that language (and the English one the Chinese page must not)
WORDS = {
    "en": {"course": "Chain basics", "labs": "My labs", "running": "running", "created": "Contract created",
           "graded": "graded", "feedback": "Feedback", "dashboard": "Hidden tests that fail most",
           "issued": "Certificates issued", "share": "Make a share link", "valid": "valid",
           "invalid": "invalid", "signature": "signature"},
    "zh": {"course": "区块链基础", "labs": "我的实验", "running": "运行中", "created": "创建的合约",
           "graded": "已评分", "feedback": "反馈", "dashboard": "失败最多的隐藏测试",
           "issued": "证书已颁发", "share": "生成分享链接", "valid": "有效",
           "invalid": "无效", "signature": "签名"},
}  # fmt: skip


class Shots:
    def __init__(self, lang: str) -> None:
        self.lang, self.n = lang, 0
        ARTIFACTS.mkdir(parents=True, exist_ok=True)

    def __call__(self, page: Page, name: str) -> None:
        self.n += 1
        page.screenshot(
            path=str(ARTIFACTS / f"{self.lang}-{self.n:02d}-{name}.png"), full_page=True
        )


def _login(page: Page, hub: HubRun, user: str, password: str, next_url: str = "") -> None:
    page.goto(hub.url + "/hub/login" + (f"?next={quote(next_url)}" if next_url else ""))
    page.fill("#username_input", user)
    page.fill("#password_input", password)
    page.click("#login_submit")


def _run_cell(page: Page, cell: Locator, tries: int = 4) -> None:
    """Shift+Enter in ``cell`` until the kernel takes it (a kernel still starting may drop the
    first request without a trace: the prompt stays ``[ ]``)."""
    from playwright.sync_api import TimeoutError as NotYet

    prompt = cell.locator(".jp-InputArea-prompt")
    for _ in range(tries):
        cell.locator(".cm-content").click()
        page.keyboard.press("Shift+Enter")
        try:
            page.wait_for_function(
                "el => !/\\[\\s*\\]/.test(el.textContent)",
                arg=prompt.element_handle(),
                timeout=20_000,
            )
            return
        except NotYet:  # not taken: click and press again
            continue
    raise AssertionError("the kernel never ran the cell")


@pytest.mark.parametrize(("lang", "learner"), [("en", "learner2"), ("zh", "learner3")])
def test_learner_instructor_institution_and_public_journey(
    hub: HubRun, browser: Browser, lang: str, learner: str, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    words, shot = WORDS[lang], Shots(lang)
    academy = hub.academy_url
    ctx = browser.new_context(
        viewport={"width": 1400, "height": 900}, accept_downloads=True, **LANGS[lang]
    )
    ctx.set_default_timeout(60_000)
    lab = ctx.new_page()
    try:
        # -- the learner logs in at the hub and opens the lab in JupyterLab
        _login(lab, hub, learner, f"{learner}-demo")
        lab.wait_for_url(f"**/user/{learner}/lab**", timeout=180_000)
        menu = lab.locator(".lm-MenuBar-itemLabel", has_text="Academy")
        expect(menu).to_be_visible(timeout=120_000)
        menu.click()
        lab.locator(".lm-Menu-itemLabel", has_text="Fetch Assignment").click()
        lab.locator(".jp-Dialog button", has_text="Fetch").click()
        deploy = lab.locator(".jp-Notebook .jp-Cell", has_text="compile_vyper").first
        expect(deploy).to_be_visible(timeout=120_000)
        shot(lab, "jupyterlab")

        # -- their chain is up
        mine = ctx.new_page()
        mine.goto(f"{academy}/me/")
        assert words["course"] in mine.inner_text("#courses")
        shot(mine, "my-courses")
        mine.goto(f"{academy}/me/labs")
        assert mine.get_attribute("html", "lang") == ("zh-CN" if lang == "zh" else "en")
        row = mine.locator("#labs tbody tr").first
        expect(row).to_contain_text(words["running"])
        assert words["labs"] in mine.inner_text("h1")
        shot(mine, "my-labs")

        # -- a cell deploys a contract on it
        _run_cell(lab, deploy)
        output = deploy.locator(".jp-OutputArea-output")
        # (labs.client says which chain it connected to first; our three lines come last)
        # absolute: the notebook runs on the learner's own origin, the explorer is academy's
        expect(output).to_contain_text(re.compile(r"\nexplorer http://\S+"), timeout=120_000)
        printed = dict(
            re.findall(r"^(transaction|contract|explorer) (\S+)$", output.inner_text(), re.M)
        )
        shot(lab, "deployed")

        # -- and the learner finds it in the explorer of their chain
        assert printed["explorer"].startswith(academy + "/explorer/"), printed
        mine.goto(printed["explorer"])
        expect(mine.locator("#blocks")).to_be_visible()
        shot(mine, "explorer-chain")
        mine.get_by_role("searchbox").fill(printed["transaction"])
        mine.keyboard.press("Enter")
        expect(mine.locator("#receipt")).to_contain_text(printed["contract"], ignore_case=True)
        assert words["created"] in mine.inner_text("#receipt")
        shot(mine, "explorer-tx")

        # -- solves, submits with the Submit button, sees the score
        solution = lab.locator(".jp-Notebook .jp-Cell", has_text="NotImplementedError").first
        solution.locator(".cm-content").click()
        lab.keyboard.press("Control+a")
        lab.keyboard.insert_text(SOLUTION)
        lab.locator(".academy-submit-button").first.click()
        expect(lab.locator(".jp-Dialog .academy-score")).to_have_text(
            "Score: 3 / 3", timeout=120_000
        )
        shot(lab, "submitted")

        # -- grade and feedback on their own pages
        mine.goto(f"{academy}/me/submissions")
        assert words["graded"] in mine.inner_text("#submissions")
        mine.locator("#submissions tbody a").first.click()
        expect(mine.locator("#score")).to_have_text("3 / 3")
        expect(mine.frame_locator("#feedback").locator("body")).to_contain_text("hidden")
        assert words["feedback"] in mine.inner_text("main")
        assert "BEGIN HIDDEN" not in mine.content()
        shot(mine, "submission")

        # -- the instructor sees it on the dashboard
        teacher = browser.new_context(
            viewport={"width": 1400, "height": 900}, **LANGS[lang]
        ).new_page()
        _login(
            teacher, hub, "instructor", "instructor-demo", f"{hub.settings.base_path}/dashboard/"
        )
        teacher.locator("#cohorts a", has_text="Chain basics").click()
        expect(teacher.locator("#progress")).to_be_visible()
        assert words["dashboard"] in teacher.inner_text("main")
        missing = teacher.locator("ul[id^=missing-], section p").all_inner_texts()
        assert not any(learner in m for m in missing)
        top = teacher.locator("svg[id^=dist-] rect[data-band='9']").first
        assert int(top.get_attribute("data-count") or "0") >= 1
        assert "hidden" in teacher.inner_text("#heat")
        shot(teacher, "dashboard")
        teacher.context.close()

        # -- the institution issues the certificate (platform admin acts for it)
        admin = browser.new_context(
            viewport={"width": 1400, "height": 900}, **LANGS[lang]
        ).new_page()
        _login(admin, hub, "admin", "admin-demo", f"{hub.settings.base_path}/dashboard/")
        admin.locator("#cohorts a", has_text="Chain basics").click()
        expect(admin.locator("#eligible")).to_contain_text(learner)
        admin.focus("#issue")
        admin.keyboard.press("Enter")
        expect(admin.locator("#notice")).to_contain_text(words["issued"], timeout=60_000)
        expect(admin.locator("#issued")).to_contain_text(learner)
        shot(admin, "issued")
        admin.context.close()

        # -- the learner downloads it and makes a share link
        mine.goto(f"{academy}/me/certificates")
        mine.get_by_role("button", name=words["share"]).click()
        link = mine.locator("a.share").get_attribute("href")
        assert link, "the certificates page shows no share link"
        with mine.expect_download() as got:
            mine.click("a.download")
        saved = tmp_path / "credential.json"
        got.value.save_as(saved)
        shot(mine, "certificates")

        # -- anyone, not logged in, opens the share link: valid, every check shown
        anyone_ctx = browser.new_context(**LANGS[lang])
        anyone = anyone_ctx.new_page()
        anyone.goto(link)
        assert anyone.get_attribute("#verdict", "data-verdict") == "valid", anyone.inner_text(
            "main"
        )
        assert anyone.inner_text("#verdict") == words["valid"]
        outcome = {
            r.get_attribute("data-check"): r.get_attribute("data-outcome")
            for r in anyone.locator("#checks tbody tr").all()
        }
        assert set(outcome.values()) == {"pass"} and len(outcome) == 7, outcome
        assert anyone.inner_text("#issuer") == "Demo University"
        assert anyone.inner_text("#achievement") == "Chain basics"
        shot(anyone, "verify-valid")

        # -- a tampered copy, chosen as a file: invalid, and which check failed
        doc = json.loads(saved.read_text())
        doc["evidence"][0]["description"] = "Deploy a counter: 30 / 3"
        tampered = tmp_path / "tampered.json"
        tampered.write_text(json.dumps(doc))
        anyone.goto(f"{academy}/verify")
        anyone.set_input_files("#file", str(tampered))
        expect(anyone.locator("#verdict")).to_have_text(words["invalid"])
        assert anyone.get_attribute('#checks tr[data-check="signature"]', "data-outcome") == "fail"
        assert words["signature"] in anyone.inner_text("#failed")
        shot(anyone, "verify-tampered")
        if lang == "zh":
            assert "Verify a certificate" not in anyone.inner_text("body")
        anyone_ctx.close()
    except Exception:
        for i, p in enumerate(ctx.pages):
            p.screenshot(path=str(ARTIFACTS / f"{lang}-failed-{i}.png"), full_page=True)
        raise
    finally:
        ctx.close()
