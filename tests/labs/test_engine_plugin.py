"""A lab plugs its own consensus engine into the slot the built-in ones use."""

from __future__ import annotations

import pytest

from labs.minichain.consensus import EngineNotFound, load_engine
from labs.minichain.consensus.solo import SoloEngine

from .netharness import Net


def test_a_module_class_path_runs_on_a_real_node(tmp_path) -> None:
    path = "labs.minichain.consensus.solo:SoloEngine"
    assert load_engine(path) is SoloEngine
    net = Net(tmp_path / "chain", nodes=1, consensus=path, params={"empty_block_interval": 0.2})
    try:
        net.wait_height(3, timeout=30)
        assert net.call(0, "minichain_consensusState")["engine"] == path
    finally:
        net.stop()


@pytest.mark.parametrize(
    ("name", "says"),
    [
        ("pbft", "use one of solo, raft, tbft"),
        ("no.such.module:Engine", "cannot load consensus engine"),
        ("labs.minichain.genesis:Genesis", "is not a ConsensusEngine subclass"),
    ],
)
def test_a_wrong_engine_name_says_what_to_write(name: str, says: str) -> None:
    with pytest.raises(EngineNotFound, match=says):
        load_engine(name)
