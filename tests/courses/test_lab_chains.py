"""Each lab runs on the chain its ``lab.toml`` asks for, through the code the notebooks run.

The real academy app on a loopback port, two real course labs released to a learner (the solo
``sha256`` lab and the four-validator TBFT ``tbft`` lab), fetched with ``academy.client`` into the
learner's home the way the JupyterLab Fetch button does, then run in a real Jupyter kernel from the
lab's folder with only ``ACADEMY_URL``/``ACADEMY_TOKEN`` set, as in the learner's server:
``labs.client`` asks academy for that lab's chain, academy starts it through ``labs.sandbox``
(validator count answered over JSON-RPC), reuses it, and a chain stopped by the idle cull is
started again under the notebook's feet.
"""

from __future__ import annotations

import copy
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest
from academy.client import AcademyClient
from academy.db import session_scope
from academy.models import Cohort, LatePolicy, Role
from academy.services.access import ALL_SCOPES, Principal
from academy.services.courses import import_course, release_lab
from academy.services.enrollment import enroll
from academy.services.identity import (
    create_institution,
    ensure_user,
    grant_role,
    issue_token,
    roles_of,
)
from academy.settings import Settings
from nbclient import NotebookClient

from tests.labs.sandbox.helpers import rpc
from tests.platform import appserver

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
LABS = {"sha256": "crypto-foundations", "tbft": "consensus"}


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """academy serving two real labs released to learner ``ada``, on a loopback port."""
    tmp = tmp_path_factory.mktemp("labchains")
    settings = Settings(
        state_dir=tmp / "state",
        courses_dir=ROOT / "courses",
        grade_workers=0,
        credentials_auto_seconds=0,
    )
    served: appserver.Served | None = None
    try:
        with appserver.serve(settings) as served:
            app = served.app
            with session_scope(app.state.academy.engine) as session:
                inst = create_institution(session, None, "uni", "University")
                teacher, _ = ensure_user(session, "teacher")
                grant_role(session, None, teacher, Role.instructor, inst)
                assert teacher.id is not None and inst.id is not None  # flushed rows have ids
                actor = Principal(teacher, roles_of(session, teacher.id), ALL_SCOPES)
                ada, _ = ensure_user(session, "ada")
                for lab, course_id in LABS.items():
                    course = import_course(session, ROOT / "courses" / course_id)
                    assert course.id is not None
                    cohort = Cohort(institution_id=inst.id, course_id=course.id, slug=course_id, name="c")  # fmt: skip
                    session.add(cohort)
                    session.flush()
                    enroll(session, None, cohort, ada)
                    release_lab(
                        session, settings, actor, cohort, lab, opens_at=None, due_at=None,
                        late_policy=LatePolicy.accept, late_penalty_per_day=0.0,
                    )  # fmt: skip
                token = issue_token(session, ada, ["learn"])[1]
            yield {"url": served.url, "token": token, "home": tmp / "home", "app": app}
    finally:
        if served is not None:  # after the server stopped (and with it the idle cull)
            manager = served.app.state.academy.labchains.manager
            for env in manager.list():
                manager.destroy(env.learner, env.lab_id)
            manager.close()  # and its chain zygote


def solved(folder: Path, lab: str) -> nbformat.NotebookNode:
    """The released notebook with the learner's answers: the reference solution's code cells."""
    released = nbformat.read(folder / f"{lab}.ipynb", as_version=4)
    source = nbformat.read(
        ROOT / "courses" / LABS[lab] / "source" / lab / f"{lab}.ipynb", as_version=4
    )
    answers = {
        c.metadata["nbgrader"]["grade_id"]: c.source
        for c in source.cells
        if c.metadata.get("nbgrader", {}).get("solution")
    }
    nb = copy.deepcopy(released)
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if cell.metadata.get("nbgrader", {}).get("solution") and grade_id in answers:
            cell.source = answers[grade_id]
    return nb


class Kernel:
    """A real Jupyter kernel in the lab's folder, started as the learner's server starts one."""

    def __init__(self, platform: dict[str, Any], folder: Path, nb: nbformat.NotebookNode) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ACADEMY_")}
        env.update(
            ACADEMY_URL=platform["url"], ACADEMY_TOKEN=platform["token"], HOME=str(platform["home"])
        )
        self.nb = nb
        self.client = NotebookClient(
            nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(folder)}}
        )
        self._setup = self.client.setup_kernel(env=env)
        self._setup.__enter__()

    def run(self, *, until: str | None = None, cells: list[int] | None = None) -> str:
        """Run cells in order (up to the one with grade_id ``until``, or the given indexes);
        return their text output."""
        out = []
        for index, cell in enumerate(self.nb.cells):
            if cell.cell_type != "code" or (cells is not None and index not in cells):
                continue
            self.client.execute_cell(cell, index)
            out += [o.get("text", "") for o in cell.get("outputs", []) if o.output_type == "stream"]
            if until and cell.metadata.get("nbgrader", {}).get("grade_id") == until:
                break
        return "".join(out)

    def close(self) -> None:
        self._setup.__exit__(None, None, None)


def test_each_lab_gets_its_own_topology_and_its_cells_run_on_it(platform: dict) -> None:
    academy = AcademyClient(platform["url"], platform["token"])
    home: Path = platform["home"]
    folders = {}
    for lab, course in LABS.items():
        academy.fetch(lab, home)
        folders[lab] = home / course / lab
        assert (folders[lab] / "lab.toml").is_file(), "the lab's files come with its lab.toml"

    # the solo lab: its first cells, through to the ones that use the chain, on a 1-validator chain
    sha = Kernel(platform, folders["sha256"], solved(folders["sha256"], "sha256"))
    try:
        out = sha.run(until="test_links_ok")
        assert "your chain for crypto-foundations/sha256: 1 solo validator(s)" in out, out
        env = academy.lab_env("crypto-foundations", "sha256")
        assert env["status"] == "running" and len(env["rpc_urls"]) == 1
        assert len(rpc(env["rpc_url"], "minichain_validators")) == 1
        assert rpc(env["rpc_url"], "minichain_status")["consensus"] == "solo"
        # the notebook's payments landed on that very chain
        assert int(rpc(env["rpc_url"], "eth_blockNumber"), 16) >= 3

        # the consensus lab, opened next: a 4-validator TBFT chain of its own, with fault switches
        tb = Kernel(platform, folders["tbft"], solved(folders["tbft"], "tbft"))
        try:
            live_cell = next(i for i, c in enumerate(tb.nb.cells) if "sw = faults()" in c.source)
            out = tb.run(until="test_quorum_math") + tb.run(cells=[live_cell])
            assert "your chain for consensus/tbft: 4 tbft validator(s)" in out, out
            assert "no live chain here" not in out and "all honest again" in out, out
            tenv = academy.lab_env("consensus", "tbft", start=False)
            assert tenv["status"] == "running" and len(tenv["rpc_urls"]) == 4
            assert tenv["env_id"] != env["env_id"]
            for url in tenv["rpc_urls"]:
                assert len(rpc(url, "minichain_validators")) == 4
                assert rpc(url, "minichain_status")["consensus"] == "tbft"
            heights = [int(line.split("[")[1].split(",")[0]) for line in out.splitlines()
                       if line.startswith(("start", "all honest again"))]  # fmt: skip
            assert heights[-1] > heights[0], f"the chain kept committing: {out}"
        finally:
            tb.close()

        # both chains are kept, per lab; asking again reuses the running one
        again = academy.lab_env("crypto-foundations", "sha256")
        assert again["env_id"] == env["env_id"] and again["rpc_urls"] == env["rpc_urls"]

        # the idle cull stops both; the open notebook's next chain cell brings its chain back
        manager = platform["app"].state.academy.labchains.manager
        assert {e.lab_id for e in manager.cull(idle_for=0)} == {"sha256", "tbft"}
        started = time.monotonic()
        chain_cell = next(i for i, c in enumerate(sha.nb.cells) if "w3 = connect()" in c.source)
        out = sha.run(cells=[chain_cell])
        assert "chain id" in out, out
        back = academy.lab_env("crypto-foundations", "sha256", start=False)
        assert back["status"] == "running" and back["env_id"] == env["env_id"]
        assert time.monotonic() - started < 60
    finally:
        sha.close()
