"""Grading outside the service's own threads: ``academy worker`` beside it, and a Dask cluster
(a real scheduler and worker process on loopback) through the same job queue."""

from __future__ import annotations

import json

import pytest
from academy.cli import app as cli
from typer.testing import CliRunner

from .builders import answer
from .conftest import BASE, SettingsFor, World, WorldOn, settings_env
from .test_learner_flow import submit, wait_graded


def _submit_one(world: World) -> int:
    aid = world.ids["assignment_a"]
    nb = json.loads(
        world.client.get(
            f"{BASE}/assignments/{aid}/release/sha.ipynb", headers=world.headers("learner_a")
        ).content
    )
    r = submit(world, "learner_a", aid, answer(nb))
    assert r.status_code == 202
    return r.json()["id"]


def test_worker_command_grades_what_is_queued(
    world_on: WorldOn, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = world_on("sqlite", grade_workers=0)
    sid = _submit_one(world)
    assert (
        world.client.get(f"{BASE}/submissions/{sid}", headers=world.headers("learner_a")).json()[
            "status"
        ]
        == "queued"
    )
    for key, value in settings_env(world.settings).items():
        monkeypatch.setenv(key, value)
    result = CliRunner().invoke(cli, ["worker", "--once"])
    assert result.exit_code == 0, result.output
    assert "graded 1 job(s)" in result.output
    assert wait_graded(world, "learner_a", sid, timeout=5)["score"] == 3.0


@pytest.mark.slow
def test_dask_backend_grades_through_the_same_queue(world_on: WorldOn) -> None:
    from distributed import LocalCluster

    with LocalCluster(
        n_workers=1,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        scheduler_port=0,
        dashboard_address=None,
    ) as cluster:
        world = world_on("sqlite", grader_backend="dask", dask_scheduler=cluster.scheduler_address)
        sid = _submit_one(world)
        graded = wait_graded(world, "learner_a", sid, timeout=120)
        assert (graded["status"], graded["score"]) == ("graded", 3.0)
        assert (
            cluster.scheduler.task_prefixes.keys() & {"academy-job"}
            or cluster.scheduler.tasks is not None
        )


def test_dask_backend_needs_a_scheduler(settings_for: SettingsFor) -> None:
    with pytest.raises(ValueError, match="ACADEMY_DASK_SCHEDULER"):
        settings_for("sqlite", grader_backend="dask")
