"""A lab plugs its own consensus engine into the slot the built-in ones use."""

from __future__ import annotations

import pytest

from labs.minichain.consensus import EngineNotFound, float_param, load_engine
from labs.minichain.consensus.solo import SoloEngine
from labs.minichain.sim import Simulation

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


@pytest.mark.parametrize(
    ("engine", "validators", "param"),
    [
        ("solo", 1, "empty_block_interval"),
        ("raft", 3, "election_timeout"),
        ("tbft", 4, "timeout_propose"),
    ],
)
def test_every_engine_rejects_a_wrong_timing_parameter_in_one_line(
    engine: str, validators: int, param: str
) -> None:
    """The built-in engines read their timings through the one reader a plug-in engine uses too."""
    with pytest.raises(
        ValueError, match=f"^{engine} parameter {param} must be a number >= 0"
    ) as err:
        Simulation(engine, n=validators, seed=1, params={param: "soon"}).run(until_time=0.1)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("value", [-1, True, None, "2"])
def test_a_timing_parameter_is_a_number_of_seconds(value: object) -> None:
    assert float_param("mine", {"t": 2}, "t", 1.0) == 2.0
    assert float_param("mine", {}, "t", 1.5) == 1.5
    with pytest.raises(ValueError, match="mine parameter t must be a number >= 0"):
        float_param("mine", {"t": value}, "t", 1.0)
