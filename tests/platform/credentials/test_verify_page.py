"""The public verification page in a real Chromium (Playwright), against the academy service run
by uvicorn on a loopback port and a real academy ledger: open a share link, see every check pass;
paste a tampered copy, see which check fails. No login anywhere."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from academy.db import referenced, session_scope
from academy.models import CredentialRecord, Institution, User, id_of
from academy.services import credentials as svc
from academy.services.identity import ensure_user
from academy.settings import Settings
from sqlmodel import select

from tests.platform import appserver
from tests.platform.academy.builders import LAB, uni_cohort, write_course

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture
def served(tmp_path: Path, academy_ledger):
    port = appserver.free_port()
    settings = Settings(
        state_dir=tmp_path / "state",
        courses_dir=tmp_path / "courses",
        grade_workers=0,
        credentials_auto_seconds=0,
        ledger_rpc_url=academy_ledger.rpc_url,
        ledger_private_key=academy_ledger.cfg.accounts()[2]["private_key"],
        public_url=f"http://127.0.0.1:{port}",
    )
    write_course(settings.courses_dir)
    with appserver.serve(settings, port) as served:
        with session_scope(served.engine) as session:
            inst, cohort = uni_cohort(session, settings.courses_dir)
            learner, _ = ensure_user(session, "ada")
            session.commit()
            inst = referenced(session, Institution, id_of(inst))
            svc.issue_batch(
                session, settings, inst, [(cohort, learner, {LAB: (3.0, 3.0), "second": (2.5, 3.0)})],
                None,
            )  # fmt: skip
            record = session.exec(select(CredentialRecord)).one()
            record.share_token = "share-token-for-ada"
            session.add(record)
            assert referenced(session, User, record.user_id).username == "ada"
            document = json.loads(record.document)
        yield {"url": served.url, "document": document}


def test_share_link_and_pasted_credential_in_chromium(served, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page()
            page.goto(f"{served['url']}/verify?share=share-token-for-ada")
            page.wait_for_selector("#verdict", timeout=60_000)
            assert page.inner_text("#verdict") == "valid"
            rows = page.locator("#checks tbody tr")
            assert rows.count() == 7
            outcomes = [rows.nth(i).locator("td").first.inner_text() for i in range(7)]
            assert outcomes == ["PASS"] * 7
            assert "Hashing demo" in page.inner_text("#about")
            page.screenshot(path=str(tmp_path / "verify-valid.png"), full_page=True)

            tampered = json.loads(json.dumps(served["document"]))
            tampered["evidence"][1]["description"] = "Second lab: 3 / 3"
            page.fill("#doc", json.dumps(tampered))
            page.click("#go")
            page.wait_for_function(
                "document.getElementById('verdict').textContent === 'invalid'", timeout=60_000
            )
            row = page.locator('#checks tbody tr[data-check="signature"] td').first
            assert row.inner_text() == "FAIL"

            page.fill("#doc", "{ this is not a certificate")
            page.click("#go")
            page.wait_for_function(
                "document.getElementById('error').textContent.includes('not JSON')"
            )
        finally:
            browser.close()
