"""A learner's server is the learner's: whatever it serves must not act as the staff who open it.

Staff (here the platform admin, who may open any learner's server) look at a learner's work in the
learner's JupyterLab. The learner chooses what their server answers (their code runs in it: a
trusted notebook's output, an extension, a server of their own), so any script there is theirs.
In real Chromium, signed in at the hub and at academy as the admin, this runs a script in a page
of learner1's server and checks it can neither read academy's answers nor make academy do
anything with the admin's cookie: mint an API token of the admin's (a JSON post, which the browser
preflights) or move an assignment's deadline (the dashboard's form, a "simple" post the browser
sends without asking). The same script in one of academy's own pages reads and does both (it
works, so its failure from the learner's page is the boundary's doing).
"""

from __future__ import annotations

import shutil
from urllib.parse import urlsplit

import pytest

from tests.e2e.hubharness import HubBrowser
from tests.e2e.test_hub_learner_flow import CHROMIUM_ARGS

pytestmark = pytest.mark.slow

#: what a learner's page would do with the staff member's session at academy
STEAL = """async ({academy, deadline, due}) => {
  const out = {};
  try {
    const me = await fetch(academy + "/api/me", {credentials: "include"});
    out.read = {status: me.status, body: await me.text()};
  } catch (e) { out.read = {error: String(e)}; }
  try {
    const made = await fetch(academy + "/api/tokens", {
      method: "POST", credentials: "include",
      headers: {"Content-Type": "application/json"},
      body: JSON.stringify({name: "from-a-learner-page"}),
    });
    out.post = {status: made.status, body: await made.text()};
  } catch (e) { out.post = {error: String(e)}; }
  try {  // a "simple" request (a form's): no preflight, the browser sends it whatever the answer
    await fetch(academy + deadline, {
      method: "POST", credentials: "include", mode: "no-cors",
      body: new URLSearchParams({due_at: due}),
    });
  } catch (e) { out.simple = String(e); }
  return out;
}"""


OWN_DUE, LEARNER_DUE = "2098-01-01T00:00", "2099-01-01T00:00"


def _admin_tokens(page, academy: str) -> list[str]:
    names = page.evaluate(
        "async (a) => (await (await fetch(a + '/api/tokens')).json()).map(t => t.name)", academy
    )
    return list(names)


def _get(page, url: str):
    return page.evaluate("async (u) => (await fetch(u)).json()", url)


def _due(page, academy: str, cohort: int) -> str:
    return str(_get(page, f"{academy}/api/cohorts/{cohort}/assignments")[0]["due_at"])


def test_a_page_of_a_learners_server_cannot_act_as_the_staff_who_open_it(platform_hub) -> None:
    from playwright.sync_api import sync_playwright

    hub, academy = platform_hub.url, platform_hub.academy_url
    learner = HubBrowser(platform_hub)
    try:
        learner.login("learner1", "learner1-demo")
        learner.spawn()
    finally:
        learner.close()

    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            session = browser.new_context()  # the admin's browser: its pages share cookies
            page = session.new_page()
            page.set_default_timeout(120_000)
            page.goto(hub + "/hub/login")
            page.fill("#username_input", "admin")
            page.fill("#password_input", "admin-demo")
            page.click("#login_submit")
            page.wait_for_load_state()
            page.goto(academy + "/")  # signs in at academy through the hub's OAuth
            assert urlsplit(page.url).path.startswith(urlsplit(academy).path), page.url

            # a deadline the admin may set with the dashboard's form (a learner would like it later)
            cohort = _get(page, academy + "/api/cohorts")[0]["id"]
            assignment = _get(page, f"{academy}/api/cohorts/{cohort}/assignments")[0]["id"]
            deadline = f"/dashboard/{cohort}/assignments/{assignment}/deadline"

            # control: the same script in academy's own page reads and posts as the admin
            own = page.evaluate(STEAL, {"academy": academy, "deadline": deadline, "due": OWN_DUE})
            assert own["read"]["status"] == 200 and '"admin"' in own["read"]["body"], own
            assert own["post"]["status"] == 201, own
            before = _admin_tokens(page, academy)
            assert "from-a-learner-page" in before
            assert _due(page, academy, cohort).startswith(OWN_DUE), own

            # the admin opens learner1's JupyterLab, wherever the hub says it lives
            theirs = session.new_page()
            theirs.set_default_timeout(120_000)
            theirs.goto(hub + "/user/learner1/lab", wait_until="domcontentloaded")
            authorize = theirs.locator("form input[type=submit], form button[type=submit]")
            if "/oauth2/authorize" in theirs.url and authorize.count():
                authorize.first.click()  # the hub asks before handing another's server a token
                theirs.wait_for_url("**/user/learner1/**", wait_until="domcontentloaded")
            assert "/user/learner1/" in theirs.url, theirs.url
            stolen = theirs.evaluate(
                STEAL, {"academy": academy, "deadline": deadline, "due": LEARNER_DUE}
            )
            read = stolen["read"]
            assert "error" in read or read["status"] != 200, stolen
            assert '"admin"' not in read.get("body", ""), read
            assert "error" in stolen["post"] or stolen["post"]["status"] >= 400, stolen["post"]
            after = _admin_tokens(page, academy)
            made = [n for n in after if n.startswith("from-a-learner-page")]
            assert made == ["from-a-learner-page"], after  # only the control's token
            assert _due(page, academy, cohort).startswith(OWN_DUE), stolen  # the form post too
            learner_origin = "{0.scheme}://{0.netloc}".format(urlsplit(theirs.url))
            academy_origin = "{0.scheme}://{0.netloc}".format(urlsplit(academy))
            assert learner_origin != academy_origin, (
                f"learner1's server shares academy's origin {academy_origin}"
            )
        finally:
            browser.close()
