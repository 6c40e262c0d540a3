"""lab.toml's [chain] table: read as written, and every mistake named in one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from labs.sandbox import LabSpec, SpecError

from .helpers import make_lab


def test_reads_chain_table(tmp_path: Path) -> None:
    spec = LabSpec.from_toml(make_lab(tmp_path / "counters"))
    assert spec.id == "counters"
    assert spec.folder == tmp_path / "counters"
    assert spec.chain is not None
    assert (spec.chain.validators, spec.chain.consensus) == (4, "tbft")
    assert spec.chain.faults == ["stopValidator", "partition"]
    assert [(p.contract, p.name, p.args) for p in spec.chain.preload] == [
        ("Counter.vy", "Counter", [7])
    ]


def test_lab_without_chain(tmp_path: Path) -> None:
    (tmp_path / "lab.toml").write_text('[lab]\nid = "sha256"\n')
    assert LabSpec.from_toml(tmp_path / "lab.toml").chain is None


@pytest.mark.parametrize(
    ("chain", "needle"),
    [
        ("validators = 0", "validators"),
        ('consensus = "solo"\nvalidators = 4', "solo consensus runs exactly one"),
        ("validators = 3", "3f+1"),
        ('faults = ["explode"]', "unknown fault switch"),
        ("colour = 3", "colour"),
        ('preload = [{ name = "X" }]', "contract"),
    ],
)
def test_bad_chain_table_is_one_clear_line(tmp_path: Path, chain: str, needle: str) -> None:
    (tmp_path / "lab.toml").write_text(f'[lab]\nid = "x"\n[chain]\n{chain}\n')
    with pytest.raises(SpecError) as info:
        LabSpec.from_toml(tmp_path / "lab.toml")
    assert needle in str(info.value)
    assert "\n" not in str(info.value)


def test_broken_toml_and_missing_file(tmp_path: Path) -> None:
    (tmp_path / "lab.toml").write_text("[chain\n")
    with pytest.raises(SpecError, match="not valid TOML"):
        LabSpec.from_toml(tmp_path / "lab.toml")
    with pytest.raises(SpecError, match="cannot read"):
        LabSpec.from_toml(tmp_path / "nope.toml")
