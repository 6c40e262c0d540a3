"""A network folder: what ``academy chain init`` writes and every node and tool reads.

::

    DIR/genesis.json      what all nodes agree on (validators, identity mode, alloc, consensus)
    DIR/network.json      where each node listens and, while running, its pid
    DIR/accounts.json     funded development accounts with their private keys (never for production)
    DIR/ca/               the consortium CA key and certificate (cert mode)
    DIR/node<i>/          one validator: node.key, node.crt, chain.db, node.log
    DIR/crypto-config/    ChainMaker's orgs: each org's CA, consensus nodes, admin1, client1
    DIR/chainmaker/       bc1.yml (the chain configuration) and sdk_config.yml (the SDK's)
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from eth_account import Account as EthAccount
from pydantic import BaseModel, Field

from .chainmaker.chainconfig import (
    CERT_MODE,
    CONSENSUS_TYPES,
    CRYPTO_HASH,
    ChainMakerConfig,
    ConsensusOrg,
    TrustRoot,
    bc1_document,
    sdk_config_document,
    write_yaml,
)
from .chainmaker.cryptogen import PROFILES, org_id, spread, write_key_org, write_org
from .genesis import Account, ConsensusConfig, Genesis, GenesisError, Validator, save_genesis
from .identity import (
    cert_pem,
    generate_key,
    issue_node_cert,
    key_to_pem,
    make_ca,
    node_id,
    raw_public,
)

DEV_BALANCE = 10**24  # one million ether per development account


class NetworkError(ValueError):
    """The network folder is missing or broken; the message says what to do."""


class NodeEntry(BaseModel):
    id: str
    home: str
    p2p_port: int = 0
    rpc_port: int = 0
    grpc_port: int = 0
    chainmaker_node: str = ""
    """The node's folder in crypto-config (its org's consensus certificates for gRPC TLS)."""
    pid: int | None = None


class NetworkConfig(BaseModel):
    host: str = "127.0.0.1"
    nodes: list[NodeEntry] = Field(default_factory=list)
    root: Path = Field(default=Path("."), exclude=True)

    @property
    def genesis_path(self) -> Path:
        return self.root / "genesis.json"

    def node_home(self, index: int) -> Path:
        return self.root / self.nodes[index].home

    def rpc_url(self, index: int) -> str:
        return f"http://{self.host}:{self.nodes[index].rpc_port}"

    def grpc_addr(self, index: int) -> str:
        return f"{self.host}:{self.nodes[index].grpc_port}"

    @property
    def crypto_config(self) -> Path:
        return (self.root / "crypto-config").resolve()

    @property
    def sdk_config_path(self) -> Path:
        return (self.root / "chainmaker" / "sdk_config.yml").resolve()

    def write_sdk_config(self, chainmaker: ChainMakerConfig) -> Path:
        """``sdk_config.yml`` for org1's client1 (admin1 where members are keys that an admin
        registers, as ChainMaker's own examples sign) with every node's current gRPC address.
        Where the RPC speaks TLS, its trust roots are every org's CA in crypto-config, those of
        orgs that joined later too (their nodes present certificates from their own CA)."""
        orgs = chainmaker.orgs()
        later = sorted(
            p.name
            for p in (self.crypto_config.iterdir() if self.crypto_config.is_dir() else ())
            if p.name not in orgs and (p / "ca" / "ca.crt").exists()
        )
        document = sdk_config_document(
            chainmaker,
            self.crypto_config,
            orgs[0],
            "client1" if chainmaker.auth_type == CERT_MODE else "admin1",
            [self.grpc_addr(i) for i in range(len(self.nodes)) if self.nodes[i].grpc_port],
            orgs + later,
        )
        write_yaml(self.sdk_config_path, document)
        return self.sdk_config_path

    @classmethod
    def load(cls, root: Path) -> NetworkConfig:
        path = root / "network.json"
        if not root.is_dir():
            raise NetworkError(
                f"no network folder at {root}: run `academy chain init --data {root}`"
            )
        if not path.exists():
            raise NetworkError(
                f"{root} has no network.json: run `academy chain init --data {root}`"
            )
        try:
            cfg = cls.model_validate_json(path.read_text())
        except ValueError as exc:
            raise NetworkError(
                f"{path} is broken ({str(exc).splitlines()[0]}); run init again"
            ) from exc
        cfg.root = root
        return cfg

    def save(self) -> None:
        tmp = self.root / "network.json.tmp"
        tmp.write_text(self.model_dump_json(indent=2) + "\n")
        os.replace(tmp, self.root / "network.json")

    def accounts(self) -> list[dict]:
        path = self.root / "accounts.json"
        return json.loads(path.read_text()) if path.exists() else []


def init_network(
    root: Path,
    nodes: int = 4,
    consensus: str = "tbft",
    identity_mode: str = "permissionedWithCert",
    accounts: int = 10,
    chain_id: int = 1337,
    params: dict | None = None,
    force: bool = False,
    orgs: int | None = None,
    crypto: str = "ecdsa",
    auth_type: str | None = None,
) -> NetworkConfig:
    """Create the CA, validator keys and certificates, dev accounts and the genesis, and
    ChainMaker's orgs (``orgs``, default one per validator) with their crypto-config, keys of
    the ``crypto`` profile (``ecdsa`` or ``sm2``). ChainMaker's ``auth_type`` follows
    ``identity_mode`` unless given (``public``)."""
    if crypto not in PROFILES:
        raise NetworkError(f"--crypto {crypto!r} is unknown: use {' or '.join(PROFILES)}")
    cm_auth = auth_type or identity_mode
    if nodes < 1:
        raise NetworkError("--nodes must be at least 1")
    try:
        per_org = spread(nodes, nodes if orgs is None else orgs)
    except ValueError as exc:
        raise NetworkError(str(exc)) from None
    if consensus == "solo" and nodes != 1:
        raise NetworkError("solo consensus runs exactly one node: use --nodes 1")
    if (root / "genesis.json").exists() and not force:
        raise NetworkError(f"{root} already holds a chain: use another --data folder or --force")
    root.mkdir(parents=True, exist_ok=True)
    (root / "ca").mkdir(exist_ok=True)
    ca_key, ca_cert = make_ca()
    (root / "ca" / "ca.key").write_bytes(key_to_pem(ca_key))
    os.chmod(root / "ca" / "ca.key", 0o600)
    (root / "ca" / "ca.crt").write_text(cert_pem(ca_cert))

    validators, entries = [], []
    for i in range(nodes):
        home = root / f"node{i}"
        home.mkdir(exist_ok=True)
        key = generate_key()
        raw = raw_public(key.public_key())
        vid = node_id(raw)
        (home / "node.key").write_bytes(key_to_pem(key))
        os.chmod(home / "node.key", 0o600)
        pem = cert_pem(issue_node_cert(ca_key, ca_cert, key.public_key()))
        (home / "node.crt").write_text(pem)
        validators.append(
            Validator(
                id=vid,
                public_key=raw.hex(),
                cert=pem if identity_mode == "permissionedWithCert" else None,
            )
        )
        entries.append(NodeEntry(id=vid, home=f"node{i}"))

    crypto_dir = root / "crypto-config"
    consensus_orgs, trust_roots = [], []
    node_index = 0
    for k, count in enumerate(per_org, start=1):
        org = org_id(k)
        if cm_auth == CERT_MODE:
            org_dir = write_org(crypto_dir, org, count, crypto)
            root_pem = (org_dir / "ca" / "ca.crt").read_text()
        else:  # members are key pairs; the org's admin key is its trust root
            org_dir = write_key_org(crypto_dir, org, count, crypto)
            root_pem = (org_dir / "user" / "admin1" / "admin1.pem").read_text()
        trust_roots.append(TrustRoot(org_id=org, root=[root_pem]))
        ids = []
        for j in range(1, count + 1):
            entries[node_index].chainmaker_node = f"crypto-config/{org}/node/consensus{j}"
            (org_dir / "node" / f"consensus{j}" / f"consensus{j}.nodeid").write_text(
                entries[node_index].id + "\n"
            )
            ids.append(entries[node_index].id)
            node_index += 1
        consensus_orgs.append(ConsensusOrg(org_id=org, node_id=ids))
    chainmaker = ChainMakerConfig(
        consensus_type=CONSENSUS_TYPES.get(consensus, 1),
        consensus_nodes=consensus_orgs,
        trust_roots=trust_roots,
        auth_type=cm_auth,
        crypto={"hash": CRYPTO_HASH[crypto]},
    )

    dev = [EthAccount.create() for _ in range(accounts)]
    (root / "accounts.json").write_text(
        json.dumps([{"address": a.address, "private_key": a.key.hex()} for a in dev], indent=2)
        + "\n"
    )
    os.chmod(root / "accounts.json", 0o600)
    try:
        genesis = Genesis(
            chain_id=chain_id,
            consensus=ConsensusConfig(engine=consensus, params=params or {}),
            identity_mode=identity_mode,
            ca_cert=cert_pem(ca_cert) if identity_mode == "permissionedWithCert" else None,
            validators=validators,
            alloc={a.address: Account(balance=DEV_BALANCE) for a in dev},
            chainmaker=chainmaker,
        )
    except ValueError as exc:
        raise GenesisError(str(exc).splitlines()[0]) from exc
    save_genesis(genesis, root / "genesis.json")
    write_yaml(root / "chainmaker" / "bc1.yml", bc1_document(chainmaker, crypto_dir.resolve()))
    cfg = NetworkConfig(nodes=entries, root=root)
    cfg.write_sdk_config(chainmaker)
    cfg.save()
    return cfg


def ensure_network(
    root: Path,
    nodes: int = 4,
    consensus: str = "tbft",
    orgs: int | None = None,
    crypto: str = "ecdsa",
    identity_mode: str = "permissionedWithCert",
) -> NetworkConfig | None:
    """Initialise ``root`` as ``academy chain init`` would by default, unless it holds a chain.

    Returns the new network, or None when ``root`` already held one (it is then left as it is).
    ``academy chain up`` and ``academy up --chains shared`` start on a folder that may be empty;
    both get the same chain here. An unknown consensus fails before anything is written.
    """
    if (root / "genesis.json").exists():
        return None
    from .consensus import EngineNotFound, load_engine

    try:
        load_engine(consensus)
    except EngineNotFound as exc:
        raise NetworkError(str(exc)) from None
    return init_network(root, nodes, consensus, identity_mode, orgs=orgs, crypto=crypto)
