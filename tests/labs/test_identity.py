"""Who counts as a validator: certificates from the consortium CA, or a registered key list."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import time

from labs.minichain.genesis import load_genesis, save_genesis
from labs.minichain.identity import (
    Membership,
    cert_pem,
    generate_key,
    issue_node_cert,
    load_key,
    make_ca,
    node_id,
    raw_public,
)
from labs.minichain.netconfig import NetworkConfig, init_network
from labs.minichain.network import rpc, start_node, stop_network, wait_ready
from labs.minichain.p2p import Transport


def test_cert_from_another_ca_is_not_a_member(tmp_path) -> None:
    init_network(tmp_path, nodes=4, consensus="tbft")
    genesis = load_genesis(tmp_path / "genesis.json")
    rogue_ca_key, rogue_ca = make_ca("rogue")
    key3 = load_key(tmp_path / "node3" / "node.key")
    genesis.validators[3].cert = cert_pem(
        issue_node_cert(rogue_ca_key, rogue_ca, key3.public_key())
    )
    members = Membership(genesis)
    assert set(members.members) == {v.id for v in genesis.validators[:3]}
    assert "not signed by the consortium CA" in members.rejected[genesis.validators[3].id]
    # Its signatures do not count; a member's do.
    assert not members.verify(genesis.validators[3].id, b"vote", key3.sign(b"vote"))
    key0 = load_key(tmp_path / "node0" / "node.key")
    assert members.verify(genesis.validators[0].id, b"vote", key0.sign(b"vote"))
    assert not members.verify(genesis.validators[0].id, b"vote", key3.sign(b"vote"))


def test_expired_or_misbound_certificate_is_refused(tmp_path) -> None:
    init_network(tmp_path, nodes=2, consensus="raft")
    genesis = load_genesis(tmp_path / "genesis.json")
    ca_key = load_key(tmp_path / "ca" / "ca.key")
    from labs.minichain.identity import load_cert

    ca = load_cert((tmp_path / "ca" / "ca.crt").read_text())
    key1 = load_key(tmp_path / "node1" / "node.key")
    genesis.validators[1].cert = cert_pem(
        issue_node_cert(
            ca_key,
            ca,
            key1.public_key(),
            days=1,
            not_before=dt.datetime.now(dt.UTC) - dt.timedelta(days=2),
        )
    )
    assert "expired" in Membership(genesis).rejected[genesis.validators[1].id]
    other = generate_key()
    genesis.validators[1].cert = cert_pem(issue_node_cert(ca_key, ca, other.public_key()))
    assert "another key" in Membership(genesis).rejected[genesis.validators[1].id]


def test_key_mode_needs_no_certificates(tmp_path) -> None:
    init_network(tmp_path, nodes=3, consensus="raft", identity_mode="permissionedWithKey")
    genesis = load_genesis(tmp_path / "genesis.json")
    assert all(v.cert is None for v in genesis.validators) and genesis.ca_cert is None
    assert len(Membership(genesis).members) == 3
    # A key that is not on the list is no member, whatever it signs.
    stranger = generate_key()
    assert not Membership(genesis).verify(
        node_id(raw_public(stranger.public_key())), b"x", stranger.sign(b"x")
    )
    save_genesis(genesis, tmp_path / "genesis.json")  # round-trips


def test_running_node_refuses_a_peer_without_valid_identity(tmp_path) -> None:
    root = tmp_path / "chain"
    init_network(root, nodes=2, consensus="raft")
    cfg = NetworkConfig.load(root)
    from labs.minichain.network import assign_ports

    assign_ports(cfg)
    cfg.save()
    start_node(cfg, 0)
    try:
        wait_ready(cfg, [0])
        genesis = load_genesis(root / "genesis.json")
        tag = hashlib.sha256(genesis.hash_input()).digest()
        members = Membership(genesis)
        target = {cfg.nodes[0].id: (cfg.host, cfg.nodes[0].p2p_port)}
        rogue_key = generate_key()
        rogue_id = node_id(raw_public(rogue_key.public_key()))
        legit_key = load_key(root / "node1" / "node.key")

        async def connect() -> None:
            rogue = Transport(
                rogue_id, rogue_key, tag, members, ("127.0.0.1", 0), target, lambda *a: None
            )
            impostor = Transport(
                cfg.nodes[1].id, rogue_key, tag, members, ("127.0.0.1", 0), target, lambda *a: None
            )
            legit = Transport(
                cfg.nodes[1].id, legit_key, tag, members, ("127.0.0.1", 0), target, lambda *a: None
            )
            for t in (rogue, impostor):
                await t.start()
            await asyncio.sleep(1.0)
            inbound = rpc(cfg.rpc_url(0), "minichain_status")["inbound"]
            assert inbound == [], f"a peer without a valid identity got in: {inbound}"
            await legit.start()
            deadline = time.monotonic() + 10
            while cfg.nodes[1].id not in rpc(cfg.rpc_url(0), "minichain_status")["inbound"]:
                assert time.monotonic() < deadline, "the real validator was not admitted"
                await asyncio.sleep(0.1)
            for t in (rogue, impostor, legit):
                await t.close()

        asyncio.run(connect())
        log = (root / "node0" / "node.log").read_text()
        assert "refusing" in log
    finally:
        stop_network(root)
