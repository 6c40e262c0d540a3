"""The chain configuration in the shape of ChainMaker's ``bc1.yml``, and the SDK's ``sdk_config.yml``.

Every validator must judge a request alike, so the configuration that decides (trust roots, org of
each consensus node, resource policies) is part of the genesis, with the CA certificates inline.
``bc1.yml`` beside it is the same configuration as ChainMaker writes it, naming the CA files, for
people and tools to read; ``sdk_config.yml`` is what ``ChainClient.from_conf()`` reads as it is.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, Field

CHAIN_ID = "chain1"
VERSION = "v3.0.0"
# ChainMaker's consensus type numbers (its ConsensusType enum), for the engines minichain runs
CONSENSUS_TYPES = {"solo": 0, "tbft": 1, "raft": 4}
# ChainMaker's address type numbers: 2 is Ethereum-style (keccak of the public key, last 20 bytes)
ADDR_TYPE_ETHEREUM = 2
MAX_PAYLOAD_BYTES = 10 * 1024 * 1024
# ChainMaker's identity modes (auth_type)
CERT_MODE, KEY_MODE, PUBLIC_MODE = "permissionedWithCert", "permissionedWithKey", "public"
# crypto profiles: the keys' algorithm and the chain's hash (crypto.hash in bc1.yml)
CRYPTO_HASH = {"ecdsa": "SHA256", "sm2": "SM3"}


class Policy(BaseModel):
    """Who must endorse: ``rule`` is ANY, MAJORITY, ALL, SELF, FORBIDDEN or a ratio like 2/3."""

    rule: str = "MAJORITY"
    org_list: list[str] = Field(default_factory=list)
    role_list: list[str] = Field(default_factory=list)


class ResourcePolicy(BaseModel):
    resource_name: str
    policy: Policy


class TrustRoot(BaseModel):
    org_id: str
    root: list[str] = Field(
        description="PEM certificates of the org's CAs, or (permissionedWithKey, public) PEM "
        "public keys of its admins"
    )


class ConsensusOrg(BaseModel):
    org_id: str
    node_id: list[str]


class BlockSettings(BaseModel):
    tx_timestamp_verify: bool = True
    tx_timeout: int = 600
    block_tx_capacity: int = 1000
    block_size: int = 10
    block_interval: int = 10


def default_policies() -> list[ResourcePolicy]:
    """ChainMaker's defaults in permissionedWithCert, resource by resource: a change to the chain
    configuration or to a contract's lifecycle needs a MAJORITY of org admins; an org updates its
    own trust root or node id alone (SELF); any one admin manages certificates (ANY)."""
    majority = Policy(rule="MAJORITY", role_list=["admin"])
    self_admin = Policy(rule="SELF", role_list=["admin"])
    any_admin = Policy(rule="ANY", role_list=["admin"])
    lifecycle = ["INIT_CONTRACT", "UPGRADE_CONTRACT", "FREEZE_CONTRACT", "UNFREEZE_CONTRACT"]
    config = [
        "CORE_UPDATE",
        "BLOCK_UPDATE",
        "TRUST_ROOT_ADD",
        "TRUST_ROOT_DELETE",
        "NODE_ID_ADD",
        "NODE_ID_DELETE",
        "NODE_ORG_ADD",
        "NODE_ORG_UPDATE",
        "NODE_ORG_DELETE",
        "CONSENSUS_EXT_ADD",
        "CONSENSUS_EXT_UPDATE",
        "CONSENSUS_EXT_DELETE",
        "PERMISSION_ADD",
        "PERMISSION_UPDATE",
        "PERMISSION_DELETE",
    ]
    certs = ["CERTS_FREEZE", "CERTS_UNFREEZE", "CERTS_DELETE", "CERTS_REVOKE"]
    return (
        [ResourcePolicy(resource_name=f"CONTRACT_MANAGE-{m}", policy=majority) for m in lifecycle]
        + [ResourcePolicy(resource_name="CONTRACT_MANAGE-REVOKE_CONTRACT", policy=majority)]
        + [ResourcePolicy(resource_name=f"CHAIN_CONFIG-{m}", policy=majority) for m in config]
        + [
            ResourcePolicy(resource_name="CHAIN_CONFIG-TRUST_ROOT_UPDATE", policy=self_admin),
            ResourcePolicy(resource_name="CHAIN_CONFIG-NODE_ID_UPDATE", policy=self_admin),
            # permissionedWithKey: an org's admins register its members (SELF: the key's org)
            ResourcePolicy(resource_name="PUBKEY_MANAGE-PUBKEY_ADD", policy=self_admin),
            ResourcePolicy(resource_name="PUBKEY_MANAGE-PUBKEY_DELETE", policy=self_admin),
        ]
        + [ResourcePolicy(resource_name=f"CERT_MANAGE-{m}", policy=any_admin) for m in certs]
    )


DEFAULT_POLICIES = {rp.resource_name: rp.policy for rp in default_policies()}
"""What a resource falls back to when the configuration holds no policy of its own (as after a
PERMISSION_DELETE): deleting a policy restores ChainMaker's default, never opens the resource."""


class ChainMakerConfig(BaseModel):
    """What ``bc1.yml`` holds, with the trust roots inline (so the genesis hash covers them)."""

    chain_id: str = CHAIN_ID
    version: str = VERSION
    sequence: int = 0
    auth_type: str = "permissionedWithCert"
    crypto: dict[str, str] = Field(default_factory=lambda: {"hash": "SHA256"})
    vm: dict[str, Any] = Field(
        default_factory=lambda: {"addr_type": ADDR_TYPE_ETHEREUM, "support_list": ["evm"]}
    )
    block: BlockSettings = Field(default_factory=BlockSettings)
    consensus_type: int = 1
    consensus_nodes: list[ConsensusOrg] = Field(default_factory=list)
    trust_roots: list[TrustRoot] = Field(default_factory=list)
    resource_policies: list[ResourcePolicy] = Field(default_factory=default_policies)

    def policy(self, resource: str) -> Policy | None:
        for rp in self.resource_policies:
            if rp.resource_name == resource:
                return rp.policy
        return DEFAULT_POLICIES.get(resource)

    def orgs(self) -> list[str]:
        return [t.org_id for t in self.trust_roots]

    @property
    def crypto_profile(self) -> str:
        """``sm2`` when the chain hashes with SM3 (its members hold SM2 keys), else ``ecdsa``."""
        return "sm2" if self.crypto.get("hash", "SHA256").upper() == "SM3" else "ecdsa"

    @property
    def rpc_tls(self) -> bool:
        """Whether RpcNode speaks mutual TLS. ChainMaker's SM2 profile needs GM TLS, which the
        Python SDK lacks, and permissionedWithKey members hold no TLS certificates: for both,
        ChainMaker's own examples run the RPC with ``tls.mode: disable`` and every request is
        still signed and checked."""
        return self.auth_type == CERT_MODE and self.crypto_profile == "ecdsa"


def bc1_document(cfg: ChainMakerConfig, crypto_config: Path) -> dict[str, Any]:
    """``bc1.yml`` as ChainMaker lays it out: trust roots name the CA (or admin key) files."""
    root_file = "ca/ca.crt" if cfg.auth_type == CERT_MODE else "user/admin1/admin1.pem"
    return {
        "chain_id": cfg.chain_id,
        "version": cfg.version,
        "sequence": cfg.sequence,
        "auth_type": cfg.auth_type,
        "crypto": cfg.crypto,
        "contract": {"enable_sql_support": False},
        "vm": cfg.vm,
        "block": cfg.block.model_dump(),
        "core": {"tx_scheduler_timeout": 10, "tx_scheduler_validate_timeout": 10},
        "consensus": {
            "type": cfg.consensus_type,
            "nodes": [n.model_dump() for n in cfg.consensus_nodes],
        },
        "trust_roots": [
            {"org_id": t.org_id, "root": [str(crypto_config / t.org_id / root_file)]}
            for t in cfg.trust_roots
        ],
        "resource_policies": [rp.model_dump() for rp in cfg.resource_policies],
    }


def sdk_config_document(
    config: ChainMakerConfig,
    crypto_config: Path,
    org: str,
    user: str,
    grpc_addrs: list[str],
    tls_orgs: list[str] | None = None,
) -> dict[str, Any]:
    """What ``ChainClient.from_conf()`` reads: one user of one org and every node (mutual TLS
    where the chain speaks it, trusting the CAs of ``tls_orgs``, by default the chain's orgs)."""
    folder = crypto_config / org / "user" / user
    if config.auth_type == CERT_MODE:
        files = {
            "user_key_file_path": str(folder / f"{user}.tls.key"),
            "user_crt_file_path": str(folder / f"{user}.tls.crt"),
            "user_sign_key_file_path": str(folder / f"{user}.sign.key"),
            "user_sign_crt_file_path": str(folder / f"{user}.sign.crt"),
        }
    else:  # a member is its key pair
        files = {"user_sign_key_file_path": str(folder / f"{user}.key")}
    node: dict[str, Any] = {"conn_cnt": 1, "enable_tls": config.rpc_tls}
    if config.rpc_tls:
        node["trust_root_paths"] = [
            str(crypto_config / o / "ca") for o in tls_orgs or config.orgs()
        ]
        node["tls_host_name"] = "chainmaker.org"
    return {
        "chain_client": {
            "chain_id": config.chain_id,
            "org_id": org,
            **files,
            "crypto": {"hash": config.crypto.get("hash", "SHA256")},
            "auth_type": config.auth_type,
            "retry_limit": 20,
            "retry_interval": 500,
            "nodes": [{"node_addr": addr, **node} for addr in grpc_addrs],
            "rpc_client": {"max_receive_message_size": 16, "max_send_message_size": 16},
        }
    }


def write_yaml(path: Path, document: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(yaml.safe_dump(document, sort_keys=False, allow_unicode=True))
    tmp.replace(path)
