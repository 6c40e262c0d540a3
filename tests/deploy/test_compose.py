"""deploy/compose.yaml is a valid Compose file and wires the platform the way the docs say.

Validated against the Compose Specification JSON schema shipped as test data (source named in
tests/deploy/data/README.md), then checked for what the schema cannot see: references between
services, networks and volumes, and files the services mount or build from.
"""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "deploy" / "compose.yaml"
SCHEMA = Path(__file__).with_name("data") / "compose_spec.json"


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def _validator() -> jsonschema.protocols.Validator:
    schema = json.loads(SCHEMA.read_text())
    return jsonschema.Draft201909Validator(schema)


def test_schema_rejects_what_compose_rejects() -> None:
    v = _validator()
    assert not v.is_valid({"services": {"a": {"image": "x", "no_such_key": 1}}})
    assert not v.is_valid({"services": {"a": {"image": "x", "ports": {"80": 80}}}})
    assert v.is_valid({"services": {"a": {"image": "x"}}})


def test_compose_file_validates_against_the_schema(compose: dict) -> None:
    errors = sorted(_validator().iter_errors(compose), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors)


def test_platform_services_and_references(compose: dict) -> None:
    services = compose["services"]
    assert {"postgres", "proxy", "hub", "academy", "dask-scheduler", "grader"} <= set(services)
    for name, svc in services.items():
        for net in svc.get("networks", []):
            assert net in compose["networks"], f"{name} uses undeclared network {net}"
        for vol in svc.get("volumes", []):
            source = vol.split(":")[0]
            if source.startswith((".", "/")):
                if source.startswith("."):
                    assert (COMPOSE.parent / source).resolve().exists(), f"{name}: {source}"
            else:
                assert source in compose["volumes"], f"{name} uses undeclared volume {source}"
        deps = svc.get("depends_on", {})
        for dep in deps:
            assert dep in services, f"{name} depends on unknown {dep}"
        build = svc.get("build")
        if build:
            assert (COMPOSE.parent / build["context"] / build["dockerfile"]).is_file()
    hub = services["hub"]
    assert "/var/run/docker.sock:/var/run/docker.sock" in hub["volumes"]
    assert hub["group_add"], "the hub's user needs the socket's group to drive the engine"
    # the names the hub connects to each learner network are the containers' real names
    platform = hub["environment"]["ACADEMY_PLATFORM_CONTAINERS"].split(",")
    names = {svc.get("container_name") for svc in services.values()}
    assert set(platform) <= names
    assert services["grader"]["deploy"]["replicas"] >= 1
