"""The whole platform, as a learner meets it: a real JupyterHub with its configurable-http-proxy,
academy as its managed service (PostgreSQL, local grading pool), the learner's own JupyterLab
spawned by the hub with a chain of its own, and release -> fetch -> submit -> graded -> feedback,
through the same routes the JupyterLab Submit button and ``academy.client.submit()`` use."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from academy.hub.origins import learner_origin

from labs.minichain.waiting import wait_until
from tests.e2e.hubharness import HubBrowser
from tests.platform.academy.builders import COURSE, LAB, SECRET

pytestmark = pytest.mark.slow


def _learner_home(platform_hub, name: str) -> Path:
    return Path(platform_hub.settings.state_dir).resolve() / "hub" / "users" / name


def _solve(path: Path) -> None:
    """What the learner does in JupyterLab: fill in the solution cell and save."""
    nb = json.loads(path.read_text())
    for cell in nb["cells"]:
        if cell.get("metadata", {}).get("nbgrader", {}).get("grade_id") == "impl":
            cell["source"] = (
                "import hashlib\n\ndef sha_hex(data: bytes) -> str:\n"
                "    return hashlib.sha256(data).hexdigest()\n"
            )
    path.write_text(json.dumps(nb))


def _environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    return dict(
        item.split("=", 1) for item in raw.decode(errors="replace").split("\0") if "=" in item
    )


def _ppid(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def _children(pid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if _ppid(int(entry)) == pid:
                    out.append(int(entry))
            except (OSError, ValueError, IndexError):
                continue
    return out


def _forked_by(pid: int, parent: int) -> bool:
    """``pid`` is ``parent``'s child, or the child of a jail's relay that is (academy.hub.jail)."""
    return _ppid(pid) == parent or _ppid(_ppid(pid)) == parent


def _warm_parent(platform_hub) -> int:
    """The hub's warm parent of learners' servers (academy.hub.forkserver), a child of the hub."""
    for pid in _children(platform_hub.proc.pid):
        with contextlib.suppress(OSError):
            if b"academy.hub.forkserver" in Path(f"/proc/{pid}/cmdline").read_bytes():
                return pid
    raise AssertionError("the hub runs no warm parent:\n" + platform_hub.log_tail())


def _server_pid(platform_hub, name: str) -> int:
    """``name``'s single-user server: the process working in their folder below the hub."""
    home = _learner_home(platform_hub, name)
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                cmd = Path(f"/proc/{entry}/cmdline").read_bytes()
                if Path(os.readlink(f"/proc/{entry}/cwd")) == home and b"ipykernel" not in cmd:
                    return int(entry)
    raise AssertionError(f"no single-user server process for {name}")


def _server_env(platform_hub, name: str, password: str) -> dict[str, str]:
    """The environment the hub gave ``name``'s server, as a kernel of that server inherits it.

    A server forked from the warm parent shows the parent's variables in /proc (the kernel, a
    fresh program the server starts with its own environment, shows the server's).
    """
    learner = HubBrowser(platform_hub)
    try:
        learner.login(name, password)
        learner.spawn()
        started = learner.server("POST", "api/kernels", json={"name": "python3"})
        assert started.status_code == 201, started.text
        kernel_id = started.json()["id"]
        try:
            for entry in os.listdir("/proc"):
                if not entry.isdigit():
                    continue
                with contextlib.suppress(OSError):
                    cmd = Path(f"/proc/{entry}/cmdline").read_bytes()
                    if b"ipykernel" in cmd and kernel_id.encode() in cmd:
                        return _environ(int(entry))
            raise AssertionError(f"no kernel process {kernel_id} for {name}")
        finally:
            learner.server("DELETE", f"api/kernels/{kernel_id}")
    finally:
        learner.close()


def _wait_graded(learner: HubBrowser, submission_id: int, timeout: float = 90.0) -> dict:
    state: dict = {}

    def settled() -> dict | None:
        state.update(learner.server("GET", f"academy/submissions/{submission_id}").json())
        return dict(state) if state["status"] in ("graded", "failed") else None

    return wait_until(
        settled,
        timeout,
        interval=0.3,
        message=lambda: f"submission {submission_id} still {state['status']} after {timeout}s",
    )


def test_wrong_password_is_refused_at_the_login_form(platform_hub) -> None:
    browser = HubBrowser(platform_hub)
    try:
        reply = browser.login("learner2", "not-the-password")
        assert reply.status_code == 403
        assert "Invalid username or password" in reply.text
        assert browser.http.get("/hub/api/user").status_code == 403
    finally:
        browser.close()


SOLUTION = "import hashlib\n\ndef sha_hex(data: bytes) -> str:\n    return hashlib.sha256(data).hexdigest()\n"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def test_jupyterlab_academy_menu_and_submit_button_in_chromium(platform_hub) -> None:
    """A learner in real Chromium: the hub's login form, their JupyterLab, Academy > Fetch
    Assignment, the solution typed into the cell, the Submit button, the score in a dialog."""
    from playwright.sync_api import expect, sync_playwright

    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.set_default_timeout(60_000)
            page.goto(platform_hub.url + "/hub/login")
            page.fill("#username_input", "learner1")
            page.fill("#password_input", "learner1-demo")
            page.click("#login_submit")
            page.wait_for_url("**/user/learner1/lab**", timeout=240_000)

            menu = page.locator(".lm-MenuBar-itemLabel", has_text="Academy")
            expect(menu).to_be_visible(timeout=120_000)
            menu.click()
            page.locator(".lm-Menu-itemLabel", has_text="Fetch Assignment").click()
            expect(page.locator(".jp-Dialog .academy-assignment-select")).to_contain_text("SHA-256")
            page.locator(".jp-Dialog button", has_text="Fetch").click()

            cell = page.locator(".jp-Notebook .jp-Cell", has_text="NotImplementedError").first
            expect(cell).to_be_visible(timeout=120_000)
            cell.locator(".cm-content").click()
            page.keyboard.press("Control+a")
            page.keyboard.insert_text(SOLUTION)

            page.locator(".academy-submit-button").first.click()
            score = page.locator(".jp-Dialog .academy-score")
            expect(score).to_have_text("Score: 3 / 3", timeout=120_000)
            frame = page.frame_locator(".jp-Dialog iframe.academy-feedback")
            expect(frame.locator("body")).not_to_contain_text(SECRET)
        except Exception:
            page.screenshot(path=str(Path(platform_hub.settings.state_dir) / "lab.png"))
            raise
        finally:
            browser.close()
    saved = _learner_home(platform_hub, "learner1") / COURSE / LAB / f"{LAB}.ipynb"
    assert "hashlib.sha256(data).hexdigest()" in saved.read_text()


def test_fetch_and_submit_routes_of_the_learners_server(platform_hub) -> None:
    """The routes behind the menu and the button, as JupyterLab calls them (cookie + XSRF)."""
    learner = HubBrowser(platform_hub)
    try:
        landed = learner.login("learner1", "learner1-demo")
        assert landed.status_code == 200, landed.text[-500:]
        learner.spawn()

        # the page JupyterLab is served from lists the academy extension as installed
        lab = learner.http.get("/user/learner1/lab")
        assert "@chainacademy/jupyterlab-academy" in lab.text

        # what the Academy menu shows: the lab the demo cohort was given, then Fetch
        listed = learner.server("GET", "academy/assignments")
        assert listed.status_code == 200, listed.text
        [assignment] = [a for a in listed.json()["assignments"] if a["lab"] == LAB]
        fetched = learner.server("POST", "academy/fetch", json={"assignment_id": assignment["id"]})
        assert fetched.status_code == 200, fetched.text
        notebook = next(p for p in fetched.json()["paths"] if p.endswith(".ipynb"))
        path = _learner_home(platform_hub, "learner1") / notebook
        assert SECRET not in path.read_text() and "BEGIN SOLUTION" not in path.read_text()
        assert notebook.startswith(f"{COURSE}/{LAB}/")
        if "NotImplementedError" in path.read_text():  # not yet solved in the browser test
            _solve(path)

        # the learner's work is never overwritten by fetching again
        mine = path.read_text()
        learner.server("POST", "academy/fetch", json={"assignment_id": assignment["id"]})
        assert path.read_text() == mine

        # Submit button: submit, poll, then score and feedback
        submitted = learner.server("POST", "academy/submit", json={"path": notebook})
        assert submitted.status_code == 200, submitted.text
        result = _wait_graded(learner, submitted.json()["id"])
        assert result["status"] == "graded", result
        assert result["score"] == result["max_score"] == 3
        assert "sha_hex" in result["feedback_html"] or "hidden" in result["feedback_html"]
        assert SECRET not in result["feedback_html"]

        # a notebook outside the learner's folder is refused with one line
        bad = learner.server("POST", "academy/submit", json={"path": "../../secrets.json"})
        assert bad.status_code == 400 and "not a notebook in your folder" in bad.text
    finally:
        learner.close()


def test_notebook_side_submit_uses_the_environment_the_hub_handed_over(platform_hub) -> None:
    """``from academy.client import submit; submit()`` inside the learner's server: run it with the
    exact environment the spawn hook gave that server (ACADEMY_URL, ACADEMY_TOKEN, the chain)."""
    env = _server_env(platform_hub, "learner1", "learner1-demo")
    assert env["ACADEMY_URL"] == platform_hub.academy_url
    assert env["ACADEMY_TOKEN"]
    home = _learner_home(platform_hub, "learner1")
    notebook = home / COURSE / LAB / f"{LAB}.ipynb"
    assert notebook.exists(), "run after the JupyterLab flow test fetched the lab"
    if platform_hub.settings.hub_lab:
        rpc = env["ACADEMY_RPC_URL"]
        reply = httpx.post(rpc, json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId"})
        assert reply.json()["result"].startswith("0x")
        assert len(env["ACADEMY_RPC_URLS"].split(",")) >= 1
    code = (
        "from academy.client import submit\n"
        "state = submit()\n"
        "assert state['status'] == 'graded', state\n"
        "print('SCORE', state['score'], state['max_score'])\n"
    )
    # the kernel of the notebook knows its own path through JPY_SESSION_NAME
    env = dict(env, JPY_SESSION_NAME=str(notebook))
    proc = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        cwd=notebook.parent,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "SCORE 3.0 3.0" in proc.stdout
    assert "graded: 3 / 3" in proc.stdout


#: what the hub, academy and the proxy hold and no learner may read
_SECRETS = (
    "ACADEMY_SERVICE_TOKEN",
    "ACADEMY_HUB_API_TOKEN",
    "JUPYTERHUB_API_TOKEN",
    "CONFIGPROXY_AUTH_TOKEN",
)


def _admin_code_for(
    platform_hub, admin: HubBrowser, server: str, scope: str = ""
) -> tuple[str, str, str]:
    """The admin opens ``server``'s JupyterLab: walk the hub's OAuth as their browser does, up to
    the redirect that hands the learner's server the admin's authorization code (what the
    learner's code sees); return (code, redirect_uri, code_verifier), or ("", the hub's error,
    code_verifier) when the hub handed out no code. The learner's server
    chooses the authorize URL it sends the admin to: its own PKCE challenge and, with ``scope``,
    that scope as well."""
    import base64
    import hashlib
    import secrets
    from urllib.parse import parse_qs, urlencode, urlsplit

    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    ours = {"code_challenge": challenge.decode().rstrip("="), "code_challenge_method": "S256"}
    if scope:
        ours["scope"] = scope

    origin = learner_origin(platform_hub.url, server)
    reply = admin.http.get(f"{origin}/user/{server}/lab", follow_redirects=False)
    for _hop in range(10):
        location = reply.headers.get("location", "")
        if reply.is_redirect and "/oauth_callback" in location:
            query = parse_qs(urlsplit(location).query)
            if "code" not in query:  # the hub refused the request (a scope it may not grant)
                return "", query.get("error", ["no code"])[0], verifier
            return query["code"][0], location.split("?", 1)[0], verifier
        if reply.is_redirect:
            url = str(reply.url.join(location))
            if "/hub/api/oauth2/authorize" in url:
                parts = urlsplit(url)
                query = {k: v[0] for k, v in parse_qs(parts.query).items()}
                url = parts._replace(query=urlencode({**query, **ours})).geturl()
            reply = admin.http.get(url, follow_redirects=False)
            continue
        assert reply.status_code == 200, (reply.status_code, str(reply.url), reply.text[:300])
        # the hub asks the admin before it hands another user's server a token: they agree
        form = dict(re.findall(r'<input[^>]*name="([^"]+)"[^>]*value="([^"]*)"', reply.text))
        scopes = re.findall(r'name="scopes"[^>]*value="([^"]*)"', reply.text)
        reply = admin.http.post(
            str(reply.url),
            data={**form, "scopes": scopes},
            headers={"Referer": str(reply.url)},
            follow_redirects=False,
        )
    raise AssertionError(f"no authorization code reached {server}'s server: {reply.headers}")


def test_an_oauth_token_a_learners_server_captures_from_a_visiting_admin_is_refused(
    platform_hub,
) -> None:
    """Finding 5, with the real hub: the admin opens learner1's JupyterLab; learner1's server
    (their code) exchanges the admin's authorization code with the server's own OAuth
    credentials and holds a live hub token of the admin's. Academy refuses it, also when the
    learner's server asked the hub for academy's scope in the admin's name."""
    env = _server_env(platform_hub, "learner1", "learner1-demo")
    hub_api = f"http://127.0.0.1:{platform_hub.settings.hub_api_port}/hub/api"
    admin = HubBrowser(platform_hub)
    try:
        admin.login("admin", "admin-demo")
        for scope in ("", "access:services!service=academy"):
            code, redirect_uri, verifier = _admin_code_for(platform_hub, admin, "learner1", scope)
            if scope and not code:
                # the hub grants a server's OAuth client no scope beyond its own: academy's is
                # refused outright (academy's own check below must hold all the same)
                assert redirect_uri == "invalid_scope", redirect_uri
                continue
            exchanged = httpx.post(
                f"{hub_api}/oauth2/token",
                data={
                    "client_id": env["JUPYTERHUB_CLIENT_ID"],
                    "client_secret": env["JUPYTERHUB_API_TOKEN"],
                    "grant_type": "authorization_code",
                    "code": code,
                    "redirect_uri": redirect_uri,
                    "code_verifier": verifier,
                },
                timeout=30.0,
            )
            assert exchanged.status_code == 200, exchanged.text
            captured = {"Authorization": f"Bearer {exchanged.json()['access_token']}"}
            # a live token of the admin's, as the hub sees it
            who = httpx.get(f"{hub_api}/user", headers=captured, timeout=30.0)
            assert who.status_code == 200 and who.json()["name"] == "admin", who.text
            assert "access:services!service=academy" not in who.json().get("scopes", [])
            refused = httpx.get(
                platform_hub.academy_url + "/api/me", headers=captured, timeout=30.0
            )
            assert refused.status_code == 401, (scope, refused.text)
            assert "access:services!service=academy" in refused.json()["detail"]
    finally:
        admin.close()


def test_servers_are_forked_from_the_warm_parent_without_the_hubs_secrets(platform_hub) -> None:
    """Each learner's server is a child of the hub's warm parent (no import per login), runs in
    the learner's own folder with their own token, and neither it nor the parent holds a secret of
    the hub's (the parent starts with a minimal environment; a fork inherits only that)."""
    from academy.db import make_engine
    from academy.services.seed import seed_demo

    seed_demo(platform_hub.settings, make_engine(platform_hub.settings), learners=5)
    parent = _warm_parent(platform_hub)
    assert not [k for k in _environ(parent) if k in _SECRETS]
    a = _server_env(platform_hub, "learner3", "learner3-demo")
    b = _server_env(platform_hub, "learner4", "learner4-demo")
    servers = {name: _server_pid(platform_hub, name) for name in ("learner3", "learner4")}
    for name, pid in servers.items():
        assert _forked_by(pid, parent), f"{name}'s server was not forked by the warm parent"
        assert not [k for k in _environ(pid) if k in _SECRETS]
    assert a["JUPYTERHUB_USER"] == "learner3" and b["JUPYTERHUB_USER"] == "learner4"
    assert a["HOME"] == str(_learner_home(platform_hub, "learner3"))
    assert a["JUPYTERHUB_API_TOKEN"] != b["JUPYTERHUB_API_TOKEN"]
    assert a["ACADEMY_TOKEN"] != b["ACADEMY_TOKEN"]
    if platform_hub.settings.hub_lab:  # each has a chain of their own
        assert a["ACADEMY_RPC_URLS"] != b["ACADEMY_RPC_URLS"]
        assert a["ACADEMY_PRIVATE_KEYS"] != b["ACADEMY_PRIVATE_KEYS"]
    # learner4's browser session opens nothing of learner3's server
    other = HubBrowser(platform_hub)
    try:
        other.login("learner4", "learner4-demo")
        theirs = learner_origin(platform_hub.url, "learner3") + "/user/learner3/api/contents"
        reply = other.http.get(theirs, follow_redirects=False)
        assert reply.status_code == 403, (reply.status_code, reply.text[:200])
    finally:
        other.close()


def test_a_dead_warm_parent_is_replaced_and_spawns_go_on(platform_hub) -> None:
    """If the warm parent dies, the next spawn starts a new one (or starts the server anew)."""
    os.kill(_warm_parent(platform_hub), signal.SIGKILL)
    env = _server_env(platform_hub, "learner5", "learner5-demo")
    assert env["JUPYTERHUB_USER"] == "learner5"
    assert _forked_by(_server_pid(platform_hub, "learner5"), _warm_parent(platform_hub))


def _admin_token(platform_hub) -> str:
    """An academy API token of the demo platform admin (what the admin makes in the UI)."""
    from academy.db import make_engine, session_scope
    from academy.services.identity import issue_token, user_by_name

    engine = make_engine(platform_hub.settings)
    try:
        with session_scope(engine) as session:
            _row, token = issue_token(session, user_by_name(session, "admin"), ["admin", "enroll"])
    finally:
        engine.dispose()
    return token


def test_academy_creates_hub_accounts_before_the_first_login(platform_hub) -> None:
    """A learner academy creates or enrolls has a hub account at once, so their first login
    finds it rather than making the hub create it while they wait; the demo learners got
    theirs when academy started."""
    hub = httpx.Client(
        base_url=platform_hub.url + "/hub/api",
        headers={"Authorization": f"token {platform_hub.settings.hub_api_token}"},
        timeout=30.0,
    )
    academy = httpx.Client(
        base_url=platform_hub.academy_url + "/api",
        headers={"Authorization": f"Bearer {_admin_token(platform_hub)}"},
        timeout=60.0,
    )
    try:
        wait_until(
            lambda: hub.get("/users/learner3").status_code == 200,
            30,
            interval=0.3,
            message="demo learner3 has no hub account",
        )
        assert hub.get("/users/early1").status_code == 404
        made = academy.post("/users", json={"username": "early1", "password": "early1-pass"})
        assert made.status_code == 201, made.text
        created = hub.get("/users/early1").json()["created"]
        cohort = academy.get("/cohorts").json()[0]["id"]
        csv = "username,display_name\nearly1,Early One\nearly2,Early Two\n"
        enrolled = academy.post(
            f"/cohorts/{cohort}/enrollments/csv",
            content=csv,
            headers={"Content-Type": "text/csv"},
        )
        assert enrolled.status_code == 200, enrolled.text
        assert hub.get("/users/early2").json()["name"] == "early2"

        browser = HubBrowser(platform_hub)
        try:
            landed = browser.login("early1", "early1-pass")
            assert landed.status_code == 200
            assert browser.http.get("/hub/api/user").json()["name"] == "early1"
            # the login used the account academy made, it did not make another
            assert hub.get("/users/early1").json()["created"] == created
        finally:
            browser.close()
    finally:
        hub.close()
        academy.close()


def test_academy_takes_a_hub_token_only_when_it_grants_access_to_academy(platform_hub) -> None:
    """A hub token reaches academy's API only when the hub granted it access to academy
    (``access:services!service=academy``), as the learner's server's own token is; a token made
    for anything else (here one that may only read its owner's name) is refused."""
    browser = HubBrowser(platform_hub)
    api = httpx.Client(base_url=platform_hub.academy_url + "/api", timeout=30.0)
    try:
        browser.login("learner2", "learner2-demo")
        xsrf = next(
            c.value
            for c in browser.http.cookies.jar
            if c.name == "_xsrf" and c.path.startswith("/hub")
        )

        def hub_token(scopes: list[str]) -> str:
            made = browser.http.post(
                "/hub/api/users/learner2/tokens",
                json={"scopes": scopes, "note": "academy access test"},
                headers={"X-XSRFToken": xsrf},
            )
            assert made.status_code == 201, made.text
            return str(made.json()["token"])

        name_only = {"Authorization": f"Bearer {hub_token(['read:users:name!user'])}"}
        refused = api.get("/me", headers=name_only)
        assert refused.status_code == 401, refused.text
        assert "access:services!service=academy" in refused.json()["detail"]

        granted = {"Authorization": f"Bearer {hub_token(['access:services!service=academy'])}"}
        me = api.get("/me", headers=granted)
        assert me.status_code == 200 and me.json()["username"] == "learner2", me.text
        # the browser's sign-in to academy (HubOAuth) still works, with every scope
        page = browser.academy("GET", "/")
        assert page.status_code == 200 and page.url.path.startswith(browser.run.settings.base_path)
        signed_in = browser.academy("GET", "/api/me").json()
        assert signed_in["username"] == "learner2" and "admin" in signed_in["scopes"]
        # a Bearer hub token acts as a learner only
        assert me.json()["scopes"] == ["learn"]
    finally:
        api.close()
        browser.close()

    # the learner's server's own hub token (given access by server_token_scopes) reaches academy
    env = _server_env(platform_hub, "learner1", "learner1-demo")
    server_token = {"Authorization": f"Bearer {env['JUPYTERHUB_API_TOKEN']}"}
    me = httpx.get(platform_hub.academy_url + "/api/me", headers=server_token, timeout=30.0)
    assert me.status_code == 200 and me.json()["username"] == "learner1", me.text
    assert me.json()["scopes"] == ["learn"]
