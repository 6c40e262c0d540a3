"""The Jupyter server extension behind JupyterLab's Academy menu and Submit button.

Routes under ``<server base>/academy/`` (same-origin for the page, authenticated as the server's
owner, XSRF-checked like every Jupyter API):

- ``GET  assignments``            the assignments released to the learner
- ``POST fetch``   {assignment_id} the released files into ``<root>/<course>/<name>/``
- ``POST submit``  {path}          the notebook at ``path`` (relative to the server root)
- ``GET  submissions/<id>``       status, score, and once graded the feedback HTML

Each call goes to academy with the server's own hub token (:class:`academy.client.AcademyClient`),
so the browser never holds an academy credential. The one client is shared by every request, so
the Submit button's repeated polls of a submission go to academy as conditional requests
(``If-None-Match``) and an unchanged state comes back as a bodiless 304.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join
from tornado import web

from academy.client import AcademyClient, AcademyError


class _AcademyHandler(APIHandler):
    @property
    def root(self) -> Path:
        return Path(self.settings["server_root_dir"]).expanduser().resolve()

    def client(self) -> AcademyClient:
        client = self.settings.get("academy_client")
        if client is None:
            client = AcademyClient()
            self.settings["academy_client"] = client
        return client

    async def run(self, fn: Any, *args: Any) -> Any:
        """Call academy off the event loop; its errors become a 4xx with their one line."""
        try:
            return await asyncio.to_thread(fn, *args)
        except AcademyError as exc:
            raise web.HTTPError(400, str(exc), reason=str(exc)[:200]) from None

    def reply(self, body: Any) -> None:
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(body, default=str))

    def body(self) -> dict[str, Any]:
        try:
            data = json.loads(self.request.body or b"{}")
        except ValueError:
            raise web.HTTPError(400, "the request body is not JSON") from None
        if not isinstance(data, dict):
            raise web.HTTPError(400, "send a JSON object")
        return data


class AssignmentsHandler(_AcademyHandler):
    @web.authenticated
    async def get(self) -> None:
        self.reply({"assignments": await self.run(self.client().assignments)})


class FetchHandler(_AcademyHandler):
    @web.authenticated
    async def post(self) -> None:
        assignment = self.body().get("assignment_id")
        if assignment in (None, ""):
            raise web.HTTPError(400, 'send {"assignment_id": ...}')
        # the lab's chain starts meanwhile: it is up by the time the notebook's first cell asks
        # in the language the learner chose, else the one their browser asks for
        browser = self.request.headers.get("Accept-Language")
        written = await self.run(self.client().fetch, assignment, self.root, True, browser)
        self.reply({"paths": [str(p.relative_to(self.root)) for p in written]})


class SubmitHandler(_AcademyHandler):
    @web.authenticated
    async def post(self) -> None:
        rel = str(self.body().get("path") or "")
        path = (self.root / rel).resolve()
        if not rel or not path.is_relative_to(self.root) or path.suffix != ".ipynb":
            raise web.HTTPError(400, f"{rel!r} is not a notebook in your folder")
        state = await self.run(self.client().submit, path)
        self.reply(_view(state))


class SubmissionHandler(_AcademyHandler):
    @web.authenticated
    async def get(self, submission_id: str) -> None:
        client = self.client()
        state = _view(await self.run(client.submission, submission_id))
        if state["status"] == "graded":
            state["feedback_html"] = await self.run(client.feedback, submission_id)
        self.reply(state)


def _view(state: dict[str, Any]) -> dict[str, Any]:
    """The fields the frontend shows, whatever else academy sends."""
    return {
        "id": state.get("id"),
        "status": state.get("status"),
        "score": state.get("score"),
        "max_score": state.get("max_score"),
        "message": state.get("error") or state.get("message"),
    }


def _load_jupyter_server_extension(serverapp: Any) -> None:
    base = url_path_join(serverapp.web_app.settings["base_url"], "academy")
    serverapp.web_app.add_handlers(
        ".*$",
        [
            (url_path_join(base, "assignments"), AssignmentsHandler),
            (url_path_join(base, "fetch"), FetchHandler),
            (url_path_join(base, "submit"), SubmitHandler),
            (url_path_join(base, r"submissions/([^/]+)"), SubmissionHandler),
        ],
    )
    serverapp.log.info("academy: Fetch and Submit available at %s", base)
