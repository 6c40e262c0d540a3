"""schemathesis against academy's own OpenAPI document: for inputs generated from the schema
(valid and invalid), no endpoint answers 5xx.  Bounded: a few examples per operation, no
shrinking, so the whole run stays within seconds to a minute."""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path
from typing import Any

import schemathesis
from academy.app import create_app
from academy.db import make_engine, upgrade
from academy.settings import Settings
from fastapi import FastAPI
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import APIOperation, Case, GenerationMode

from .builders import write_course
from .conftest import World, build_world

_CACHE: dict[str, Any] = {}


def _world() -> tuple[FastAPI, World]:
    """One app and world for every operation (built on first use, removed at exit)."""
    if not _CACHE:
        root = Path(tempfile.mkdtemp(prefix="academy-fuzz-"))
        atexit.register(shutil.rmtree, root, True)
        write_course(root / "courses")
        cfg = Settings(
            state_dir=root / "state",
            courses_dir=root / "courses",
            grade_workers=0,
            migrate_on_start=False,
        )
        upgrade(cfg)
        world = build_world(cfg, None, make_engine(cfg))
        app = create_app(cfg)
        _CACHE.update(app=app, world=world)
    return _CACHE["app"], _CACHE["world"]


EXAMPLES = 4  # per operation and generation mode


def test_no_server_error_for_generated_input() -> None:
    """Every operation, positive and negative inputs, as a learner (learner API) or a platform
    admin (the rest), so that generated ids and bodies reach the handlers, not just auth."""
    app, world = _world()
    schema = schemathesis.openapi.from_asgi("/services/academy/openapi.json", app)
    errors: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 30
    for op in operations:
        who = "learner_a" if "learner" in op.definition.raw.get("tags", []) else "platform_admin"
        for mode in GenerationMode:
            _fuzz(op, mode, {"Authorization": f"Bearer {world.tokens[who]}"}, errors)
    assert not errors, "\n".join(errors[:20])


def _fuzz(op: APIOperation, mode: GenerationMode, auth: dict[str, str], errors: list[str]) -> None:
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )
    @given(case=op.as_strategy(generation_mode=mode))
    def run(case: Case) -> None:
        response = case.call(headers=auth)
        if response.status_code >= 500:
            errors.append(
                f"{op.label} ({mode.value}): {response.status_code} {case.as_curl_command()}"
            )

    try:
        run()
    except Unsatisfiable:  # no invalid input exists for an operation without parameters
        assert mode == GenerationMode.NEGATIVE
