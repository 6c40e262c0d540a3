"""The dependency rule holds: bench -> academy -> grader -> labs, one-way, and no import circles."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

from tests.lint_contracts import import_cycles, one_circle

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("bench", "academy", "grader", "labs")


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph(*PACKAGES, cache_dir=None)


def test_the_import_contracts_in_pyproject_hold() -> None:
    """What ``make lint`` runs: the layers and the no-circle contract of [tool.importlinter]."""
    done = subprocess.run(
        [str(Path(sys.executable).with_name("lint-imports")), "--no-cache"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": f"{ROOT / 'platform'}{os.pathsep}{ROOT}"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 kept, 0 broken" in done.stdout


def test_no_module_imports_itself_through_others(graph: grimp.ImportGraph) -> None:
    assert import_cycles(graph, PACKAGES) == []


@pytest.mark.parametrize(
    ("importer", "imported"),
    [
        ("grader.cluster", "grader.autograde"),  # the job types once lived in autograde
        ("academy.hub.launcher", "academy.cli"),  # chain initialisation once lived in the CLI
        ("bench.ours_hub", "bench.time_to_lab"),  # measuring helpers once lived in time_to_lab
    ],
)
def test_each_circle_we_had_would_be_found(
    graph: grimp.ImportGraph, importer: str, imported: str
) -> None:
    """The check is not vacuous: putting back one import of a circle we broke is caught."""
    assert graph.chain_exists(importer=imported, imported=importer, as_packages=False)
    tangled = copy.deepcopy(graph)
    tangled.add_import(importer=importer, imported=imported, line_number=1, line_contents="")
    groups = import_cycles(tangled, PACKAGES)
    assert len(groups) == 1 and {importer, imported} <= set(groups[0])
    links = one_circle(tangled, groups[0])
    assert links[0][0] == links[-1][1]  # it closes
    assert all(a[1] == b[0] for a, b in zip(links, links[1:], strict=False))
