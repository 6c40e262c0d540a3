"""Which process is a validator of which network: pids get reused, also by another network's
validator, so a stale ``network.json`` must never stop or claim a validator that is not its own."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from labs.minichain.netconfig import NetworkConfig
from labs.minichain.network import network_status, stop_network

from .netharness import Net


@pytest.mark.slow
def test_a_stale_pid_of_another_networks_validator_is_left_alone(tmp_path: Path) -> None:
    theirs = Net(tmp_path / "theirs", nodes=1, consensus="solo")
    ours = Net(tmp_path / "ours", nodes=1, consensus="solo")
    try:
        their_pid = theirs.cfg.nodes[0].pid
        assert their_pid
        ours.stop()
        # our node is gone; its pid in our network.json now names their validator
        cfg = NetworkConfig.load(ours.root)
        cfg.nodes[0].pid = their_pid
        cfg.save()
        assert network_status(ours.root)[0]["running"] is False
        assert stop_network(ours.root) == 0
        os.kill(their_pid, 0)  # still alive
        assert network_status(theirs.root)[0]["running"] is True
        assert theirs.height(0) >= 0
        # and the same validator, named by a relative path from its own folder, is still ours
        assert network_status(Path(os.path.relpath(theirs.root)))[0]["running"] is True
    finally:
        theirs.stop()
        ours.stop()
