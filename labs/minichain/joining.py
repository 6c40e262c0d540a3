"""A node for a chain that already runs: a new org's first consensus node, outside the genesis.

On ChainMaker a new org joins a running chain in three steps: it gets its certificates
(chainmaker-cryptogen, of the chain's crypto profile), the consortium adds its CA (on a
permissionedWithKey chain its admin's public key) to the trust roots (``TRUST_ROOT_ADD``) and
its node ids to the consensus nodes (``NODE_ORG_ADD``), each endorsed by a majority of org
admins; from the block after that update on, the node votes. This module does the first step
for a minichain network folder: the org's ``crypto-config`` in cryptogen's layout, the node's
own key and certificate from the consortium CA (what its peers know it by, since the genesis
does not list it) and its entry in ``network.json``. The two updates are the consortium's to
make, through the SDK; ``start_network`` then starts the node, which catches up and, once the
configuration lists it, takes part in consensus.
"""

from __future__ import annotations

import os
from pathlib import Path

from .chainmaker.chainconfig import CERT_MODE
from .chainmaker.cryptogen import org_id, write_key_org, write_org
from .genesis import load_genesis
from .identity import (
    cert_pem,
    generate_key,
    issue_node_cert,
    key_to_pem,
    load_cert,
    load_key,
    node_id,
    raw_public,
)
from .netconfig import NetworkConfig, NetworkError, NodeEntry


def prepare_joining_node(root: Path, org: str | None = None) -> tuple[int, NodeEntry]:
    """Write a new org (default: the next ``wx-org<k>.chainmaker.org``) with one consensus node
    and add that node to ``network.json``; returns its index and entry. Its node id is in
    ``crypto-config/<org>/node/consensus1/consensus1.nodeid``, as for the genesis nodes."""
    cfg = NetworkConfig.load(root)
    genesis = load_genesis(cfg.genesis_path)
    if genesis.identity_mode != "permissionedWithCert" or genesis.ca_cert is None:
        raise NetworkError(
            "a node joins a running chain by a certificate from the consortium CA: this chain "
            f"runs {genesis.identity_mode}, start it with the node in the genesis instead"
        )
    crypto = root / "crypto-config"
    if org is None:
        k = 1
        while (crypto / org_id(k)).exists():
            k += 1
        org = org_id(k)
    elif (crypto / org).exists():
        raise NetworkError(f"{crypto / org} exists already: pick another org id")
    cm = genesis.chainmaker
    profile = cm.crypto_profile if cm is not None else "ecdsa"
    if cm is None or cm.auth_type == CERT_MODE:
        org_dir = write_org(crypto, org, 1, profile)
    else:  # its admin1.pem is the trust root the consortium adds
        org_dir = write_key_org(crypto, org, 1, profile)
    index = len(cfg.nodes)
    home = root / f"node{index}"
    home.mkdir()
    key = generate_key()
    raw = raw_public(key.public_key())
    (home / "node.key").write_bytes(key_to_pem(key))
    os.chmod(home / "node.key", 0o600)
    ca_key = load_key(root / "ca" / "ca.key")
    ca_cert = load_cert((root / "ca" / "ca.crt").read_text())
    (home / "node.crt").write_text(cert_pem(issue_node_cert(ca_key, ca_cert, key.public_key())))
    entry = NodeEntry(
        id=node_id(raw),
        home=home.name,
        chainmaker_node=f"crypto-config/{org}/node/consensus1",
    )
    (org_dir / "node" / "consensus1" / "consensus1.nodeid").write_text(entry.id + "\n")
    cfg.nodes.append(entry)
    cfg.save()
    return index, entry
