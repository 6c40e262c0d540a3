"""Reach academy from a learner's JupyterLab: list and fetch assignments, submit, read the grade.

The hub starts every learner's server with ``ACADEMY_URL`` (academy behind the hub's proxy) and
``ACADEMY_TOKEN`` (the server's own hub token, which academy accepts), so inside a notebook::

    from academy.client import fetch, submit
    fetch("sha256")      # copies the released files into ~/<course>/<lab>/
    submit()             # submits this notebook (as last saved), waits, shows score and feedback

The JupyterLab Submit button goes through the same :class:`AcademyClient` (server extension).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import threading
from pathlib import Path
from typing import Any

import httpx

from labs.minichain.waiting import wait_until

FINAL = ("graded", "failed")


class AcademyError(RuntimeError):
    """One line saying what went wrong and what to do."""


def _message(reply: httpx.Response) -> str:
    try:
        body = reply.json()
    except ValueError:
        return reply.text.strip()[:300] or reply.reason_phrase
    detail = body.get("detail", body) if isinstance(body, dict) else body
    if isinstance(detail, list):  # FastAPI validation errors
        return "; ".join(str(d.get("msg", d)) for d in detail if isinstance(d, dict)) or str(detail)
    if isinstance(detail, dict):
        return str(detail.get("message") or detail)
    return str(detail)


class AcademyClient:
    """academy's learner API, authenticated as the learner whose server this is."""

    def __init__(
        self, url: str | None = None, token: str | None = None, timeout: float = 30.0
    ) -> None:
        self.url = (url or os.environ.get("ACADEMY_URL", "")).rstrip("/")
        token = token or os.environ.get("ACADEMY_TOKEN") or os.environ.get("JUPYTERHUB_API_TOKEN")
        if not self.url or not token:
            raise AcademyError(
                "ACADEMY_URL and ACADEMY_TOKEN are not set: run this inside a JupyterLab "
                "started by the ChainAcademy hub"
            )
        self._http = httpx.Client(
            base_url=self.url, headers={"Authorization": f"token {token}"}, timeout=timeout
        )
        # submission id -> (ETag, body) of its last full answer, for conditional polls
        self._seen: dict[str, tuple[str, dict[str, Any]]] = {}
        self._seen_lock = threading.Lock()

    def close(self) -> None:
        self._http.close()

    def _call(self, method: str, path: str, **kw: Any) -> httpx.Response:
        try:
            reply = self._http.request(method, "/api" + path, **kw)
        except httpx.HTTPError as exc:
            raise AcademyError(f"academy at {self.url} did not answer ({exc}); try again") from None
        if reply.status_code >= 400:
            raise AcademyError(f"academy said {reply.status_code}: {_message(reply)}")
        return reply

    # -- reading -----------------------------------------------------------------------------
    def assignments(self) -> list[dict[str, Any]]:
        """The assignments released to my cohorts."""
        return self._call("GET", "/assignments").json()

    def find(self, assignment: str | int) -> dict[str, Any]:
        """One released assignment by id, by name or by lab id (such as ``sha256``)."""
        found = [
            a
            for a in self.assignments()
            if str(a.get("id")) == str(assignment) or assignment in (a.get("name"), a.get("lab"))
        ]
        if not found:
            raise AcademyError(
                f"no assignment {assignment!r} is released to you; "
                "call academy.client.assignments() to list them"
            )
        return found[0]

    def submission(self, submission_id: str | int) -> dict[str, Any]:
        """The submission's state; a repeat poll sends the last ETag and reuses the body on 304."""
        key = str(submission_id)
        with self._seen_lock:
            seen = self._seen.get(key)
        headers = {"If-None-Match": seen[0]} if seen else {}
        reply = self._call("GET", f"/submissions/{submission_id}", headers=headers)
        if reply.status_code == 304 and seen:
            return dict(seen[1])
        body: dict[str, Any] = reply.json()
        etag = reply.headers.get("ETag")
        with self._seen_lock:
            if etag and body.get("status") not in FINAL:
                self._seen[key] = (etag, body)
            else:  # settled: nobody polls it again, so keep no copy
                self._seen.pop(key, None)
        return dict(body)

    def feedback(self, submission_id: str | int) -> str:
        return self._call("GET", f"/submissions/{submission_id}/feedback").text

    # -- the lab's chain ----------------------------------------------------------------------
    def lab_env(self, course: str, lab: str, start: bool = True) -> dict[str, Any]:
        """My chain for ``course``/``lab``: started (or reused) when ``start``, else as it is now.

        The body has ``rpc_urls``, ``validators``, ``explorer_url``, ``accounts`` and
        ``environment`` (what ``labs.client`` uses in that lab's notebooks).
        """
        path = f"/me/labs/{course}/{lab}/env"
        if start:
            return self._call("POST", path, timeout=180.0).json()
        return self._call("GET", path).json()

    def start_lab_env(self, course: str, lab: str) -> threading.Thread:
        """Start the lab's chain in the background, so it is up by the time the notebook asks."""

        def run() -> None:
            with contextlib.suppress(AcademyError):
                self.lab_env(course, lab)

        thread = threading.Thread(target=run, name=f"lab-env-{lab}", daemon=True)
        thread.start()
        return thread

    # -- fetching ----------------------------------------------------------------------------
    def fetch(
        self,
        assignment: str | int,
        home: Path,
        start_chain: bool = False,
        accept_language: str | None = None,
    ) -> list[Path]:
        """Write the assignment's learner files under ``home/<course>/<lab>/``.

        A file already there is the learner's work: it is kept, never overwritten. With
        ``start_chain`` the lab's chain starts meanwhile (:meth:`start_lab_env`). The files come
        in the learner's chosen language, else in ``accept_language``'s (the browser's).
        """
        meta = self.find(assignment)
        headers = {"Accept-Language": accept_language} if accept_language else {}
        release = self._call("GET", f"/assignments/{meta['id']}/release", headers=headers).json()
        lab = str(meta.get("lab") or meta.get("name") or meta["id"])
        folder = Path(home) / _safe(str(meta.get("course") or "course")) / _safe(lab)
        if start_chain and meta.get("course") and meta.get("lab"):
            self.start_lab_env(str(meta["course"]), str(meta["lab"]))
        folder.mkdir(parents=True, exist_ok=True)
        written: list[Path] = []
        for item in release.get("files", []):
            rel = Path(item["path"])
            if rel.is_absolute() or ".." in rel.parts:
                continue
            target = folder / rel
            written.append(target)
            if target.exists():
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            data = base64.b64decode(item["content_base64"])
            if rel.suffix == ".ipynb":
                nb = json.loads(data)
                nb.setdefault("metadata", {})["academy"] = {
                    "assignment_id": meta["id"],
                    "course": meta.get("course"),
                    "lab": lab,
                }
                data = (json.dumps(nb, indent=1, ensure_ascii=False) + "\n").encode()
            target.write_bytes(data)
        return written

    # -- submitting --------------------------------------------------------------------------
    def submit(self, notebook: Path, assignment: str | int | None = None) -> dict[str, Any]:
        """Upload the notebook as saved on disk; return the queued submission."""
        notebook = Path(notebook)
        try:
            data = notebook.read_bytes()
        except OSError as exc:
            raise AcademyError(f"cannot read {notebook}: {exc.strerror}") from None
        if assignment is None:
            assignment = _assignment_of(data, notebook)
        meta = self.find(assignment)
        files = {"notebook": (notebook.name, data, "application/x-ipynb+json")}
        return self._call("POST", f"/assignments/{meta['id']}/submissions", files=files).json()

    def wait(
        self, submission_id: str | int, timeout: float = 180.0, poll: float = 0.5
    ) -> dict[str, Any]:
        """Poll until the submission is graded or failed (or ``timeout`` seconds pass)."""
        last: dict[str, Any] = {}

        def settled() -> bool:
            last.clear()
            last.update(self.submission(submission_id))
            return last.get("status") in FINAL

        with contextlib.suppress(TimeoutError):
            wait_until(settled, timeout, interval=poll)
        return last


def _safe(name: str) -> str:
    cleaned = "".join(c if c.isalnum() or c in "-_." else "_" for c in name).strip(".")
    return cleaned or "assignment"


def _assignment_of(data: bytes, notebook: Path) -> str | int:
    """The assignment a fetched notebook belongs to (recorded in its metadata by fetch)."""
    try:
        meta = json.loads(data).get("metadata", {}).get("academy", {})
    except (ValueError, AttributeError):
        meta = {}
    if meta.get("assignment_id") is not None:
        return meta["assignment_id"]
    # a notebook not fetched through academy: its folder is named after the assignment
    return notebook.parent.name


def summary(state: dict[str, Any]) -> str:
    """One line for a submission's state, e.g. ``graded: 7 / 10``."""
    if state.get("status") == "graded":
        return f"graded: {state.get('score') or 0:g} / {state.get('max_score') or 0:g}"
    return f"{state.get('status')}: {state.get('error') or state.get('message') or ''}".strip(": ")


# -- the notebook-side calls -----------------------------------------------------------------
def assignments() -> list[dict[str, Any]]:
    """The assignments released to me."""
    return AcademyClient().assignments()


def fetch(assignment: str | int, home: str | Path | None = None) -> list[Path]:
    """Copy a released assignment into ``~/<course>/<lab>/``; return the files."""
    home = Path(home) if home else Path(os.environ.get("HOME", "."))
    paths = AcademyClient().fetch(assignment, home, start_chain=True)
    for path in paths:
        print(f"fetched {path}")
    return paths


def submit(
    path: str | Path | None = None,
    assignment: str | int | None = None,
    wait: bool = True,
    timeout: float = 180.0,
) -> dict[str, Any]:
    """Submit a notebook (default: the one this kernel runs, as last saved) and show the grade."""
    if path is None:
        session = os.environ.get("JPY_SESSION_NAME")
        if not session:
            raise AcademyError("pass the notebook's path: submit('lab/lab.ipynb')")
        path = session
    client = AcademyClient()
    state = client.submit(Path(path), assignment)
    print(f"submitted {path} (submission {state.get('id')}); save first: the file on disk counts")
    if not wait:
        return state
    state = client.wait(state["id"], timeout=timeout)
    print(summary(state))
    if state.get("status") == "graded":
        _display_html(client.feedback(state["id"]))
    return state


def _display_html(html: str) -> None:
    try:
        from IPython.display import HTML, display
    except ImportError:
        return
    display(HTML(html))
