"""A network folder made on first use: what ``academy chain up`` and ``academy up`` start on."""

from __future__ import annotations

import pytest

from labs.minichain.genesis import load_genesis
from labs.minichain.netconfig import NetworkError, ensure_network, init_network


def test_ensure_network_initialises_an_empty_folder_once(tmp_path) -> None:
    root = tmp_path / "chain"
    cfg = ensure_network(root, nodes=1, consensus="solo")
    assert cfg is not None and len(cfg.nodes) == 1
    genesis = load_genesis(root / "genesis.json")
    assert (genesis.consensus.engine, genesis.chain_id) == ("solo", 1337)
    assert genesis.identity_mode == "permissionedWithCert"
    written = (root / "genesis.json").read_bytes()
    assert ensure_network(root, nodes=4, consensus="tbft") is None  # a chain is there: kept
    assert (root / "genesis.json").read_bytes() == written


def test_ensure_network_keeps_a_chain_made_by_init(tmp_path) -> None:
    init_network(tmp_path, nodes=2, consensus="raft")
    assert ensure_network(tmp_path, nodes=1, consensus="solo") is None
    assert load_genesis(tmp_path / "genesis.json").consensus.engine == "raft"


def test_ensure_network_refuses_an_unknown_consensus_before_writing(tmp_path) -> None:
    with pytest.raises(NetworkError, match="use one of solo, raft, tbft"):
        ensure_network(tmp_path / "chain", consensus="pbft")
    assert not (tmp_path / "chain").exists()
