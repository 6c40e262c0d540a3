"""Answers to ChainMaker's read-only system contracts (CHAIN_QUERY, CHAIN_CONFIG, CONTRACT_MANAGE,
CERT_MANAGE).

The chain is the node's own: a ChainMaker block here is a minichain block seen through
ChainMaker's messages, with the block's ChainMaker requests as its transactions. Answers are the
protobuf messages (or, where ChainMaker answers JSON, the JSON) that the SDK parses.
"""

from __future__ import annotations

import json
from typing import Any, Protocol

from . import pb
from .chainconfig import ChainMakerConfig
from .executor import RequestRefused, params_of


class ChainView(Protocol):
    """What the node offers the queries: blocks, the ChainMaker results and contract status."""

    def head_height(self) -> int: ...

    def block(self, height: int) -> Any | None: ...

    def height_of_hash(self, block_hash: bytes) -> int | None: ...

    def cm_tx(self, tx_id: str) -> tuple[int, int, bytes] | None: ...

    def cm_results(self, height: int) -> list[bytes]: ...

    def contract_status(self, name: str) -> tuple[int, str] | None: ...

    def nodes(self) -> list[tuple[str, str]]: ...

    def config_at(self, height: int | None) -> ChainMakerConfig:
        """The chain configuration after block ``height`` (None: the head)."""
        ...

    def last_config_block(self) -> int: ...

    def cert_query(self, params: dict[str, bytes]) -> bytes: ...


def chain_config_message(config: ChainMakerConfig) -> Any:
    """The chain configuration as ChainMaker's ChainConfig message."""
    from chainmaker.protos.accesscontrol import policy_pb2
    from chainmaker.protos.config import chain_config_pb2 as cc

    msg = pb.ChainConfig(
        chain_id=config.chain_id,
        version=config.version,
        auth_type=config.auth_type,
        sequence=config.sequence,
        crypto=cc.CryptoConfig(hash=config.crypto.get("hash", "SHA256")),
        block=cc.BlockConfig(
            tx_timestamp_verify=config.block.tx_timestamp_verify,
            tx_timeout=config.block.tx_timeout,
            block_tx_capacity=config.block.block_tx_capacity,
            block_size=config.block.block_size,
            block_interval=config.block.block_interval,
        ),
        consensus=cc.ConsensusConfig(
            type=config.consensus_type,
            nodes=[
                cc.OrgConfig(org_id=n.org_id, node_id=n.node_id) for n in config.consensus_nodes
            ],
        ),
        trust_roots=[cc.TrustRootConfig(org_id=t.org_id, root=t.root) for t in config.trust_roots],
        resource_policies=[
            cc.ResourcePolicy(
                resource_name=rp.resource_name,
                policy=policy_pb2.Policy(
                    rule=rp.policy.rule,
                    org_list=rp.policy.org_list,
                    role_list=rp.policy.role_list,
                ),
            )
            for rp in config.resource_policies
        ],
        vm=cc.Vm(support_list=config.vm.get("support_list", []), addr_type=config.vm["addr_type"]),
    )
    return msg


def block_info(view: ChainView, config: ChainMakerConfig, height: int) -> Any:
    block = view.block(height)
    if block is None:
        raise RequestRefused("CONTRACT_FAIL", f"block {height} not found")
    header = block.header
    txs = []
    for raw, result in zip(block.cm, view.cm_results(height), strict=False):
        request = pb.TxRequest()
        request.ParseFromString(raw)
        tx = pb.Transaction(
            payload=request.payload, sender=request.sender, endorsers=request.endorsers
        )
        tx.result.ParseFromString(result)
        txs.append(tx)
    return pb.BlockInfo(
        block=pb.Block(
            header=pb.BlockHeader(
                block_version=3000000,
                block_type=0,
                chain_id=config.chain_id,
                block_height=height,
                block_hash=block.hash,
                pre_block_hash=header.parent_hash if height else b"",
                tx_count=len(txs),
                tx_root=header.transaction_root,
                block_timestamp=header.timestamp,
            ),
            txs=txs,
        )
    )


def _height_param(params: dict[str, bytes]) -> int:
    raw = params.get("blockHeight", b"").decode(errors="replace")
    try:
        return int(raw)
    except ValueError:
        raise RequestRefused("INVALID_PARAMETER", f"blockHeight {raw!r} is not a number") from None


def _hash_param(view: ChainView, params: dict[str, bytes]) -> int:
    text = params.get("blockHash", b"").decode(errors="replace")
    try:
        block_hash = bytes.fromhex(text[2:] if text.startswith("0x") else text)
    except ValueError:
        raise RequestRefused("INVALID_PARAMETER", "blockHash must be hex") from None
    height = view.height_of_hash(block_hash)
    if height is None:
        raise RequestRefused("CONTRACT_FAIL", f"block {text} not found")
    return height


def _tx(view: ChainView, params: dict[str, bytes]) -> tuple[int, int, bytes]:
    tx_id = params.get("txId", b"").decode(errors="replace")
    found = view.cm_tx(tx_id)
    if found is None:
        raise RequestRefused("CONTRACT_FAIL", f"tx {tx_id} not found")
    return found


def chain_query(view: ChainView, config: ChainMakerConfig, payload: Any) -> bytes:
    """The result bytes of a CHAIN_QUERY method, or RequestRefused."""
    method = payload.method
    params = params_of(payload)
    if method == "GET_CHAIN_INFO":
        return pb.ChainInfo(
            block_height=view.head_height(),
            node_list=[pb.DiscoveryNode(node_id=i, node_address=a) for i, a in view.nodes()],
        ).SerializeToString()
    if method in ("GET_BLOCK_BY_HEIGHT", "GET_FULL_BLOCK_BY_HEIGHT"):
        return block_info(view, config, _height_param(params)).SerializeToString()
    if method == "GET_BLOCK_HEADER_BY_HEIGHT":
        return block_info(view, config, _height_param(params)).block.header.SerializeToString()
    if method == "GET_BLOCK_BY_HASH":
        return block_info(view, config, _hash_param(view, params)).SerializeToString()
    if method == "GET_BLOCK_HEIGHT_BY_HASH":
        return str(_hash_param(view, params)).encode()
    if method == "GET_LAST_BLOCK":
        return block_info(view, config, view.head_height()).SerializeToString()
    if method == "GET_LAST_CONFIG_BLOCK":
        return block_info(view, config, view.last_config_block()).SerializeToString()
    if method == "GET_BLOCK_BY_TX_ID":
        return block_info(view, config, _tx(view, params)[0]).SerializeToString()
    if method == "GET_BLOCK_HEIGHT_BY_TX_ID":
        return str(_tx(view, params)[0]).encode()
    if method == "GET_TX_BY_TX_ID":
        height, index, _ = _tx(view, params)
        info = block_info(view, config, height)
        return pb.TransactionInfo(
            transaction=info.block.txs[index],
            block_height=height,
            block_hash=info.block.header.block_hash,
            tx_index=index,
            block_timestamp=info.block.header.block_timestamp,
        ).SerializeToString()
    if method == "GET_NODE_CHAIN_LIST":
        from chainmaker.protos.discovery import discovery_pb2

        return discovery_pb2.ChainList(chain_id_list=[config.chain_id]).SerializeToString()
    if method == "GET_ARCHIVED_BLOCK_HEIGHT":
        return b"0"
    raise RequestRefused("INVALID_CONTRACT_PARAMETER_METHOD", f"CHAIN_QUERY {method} is not served")


def config_query(view: ChainView, payload: Any) -> bytes:
    """CHAIN_CONFIG queries: the configuration now, after a given block, or its policies."""
    method = payload.method
    if method == "GET_CHAIN_CONFIG":
        return chain_config_message(view.config_at(None)).SerializeToString()
    if method == "GET_CHAIN_CONFIG_AT":
        params = params_of(payload)
        raw = params.get("block_height", b"").decode(errors="replace")
        try:
            height = int(raw)
        except ValueError:
            raise RequestRefused(
                "INVALID_PARAMETER", f"block_height {raw!r} is not a number"
            ) from None
        if not 0 <= height <= view.head_height():
            raise RequestRefused("CONTRACT_FAIL", f"block {height} not found")
        return chain_config_message(view.config_at(height)).SerializeToString()
    if method == "PERMISSION_LIST":
        config = view.config_at(None)
        listed = pb.ChainConfig(resource_policies=chain_config_message(config).resource_policies)
        return listed.SerializeToString()
    raise RequestRefused(
        "INVALID_CONTRACT_PARAMETER_METHOD", f"CHAIN_CONFIG query {method} is not served"
    )


def cert_query(view: ChainView, payload: Any) -> bytes:
    if payload.method == "CERTS_QUERY":
        return view.cert_query(params_of(payload))
    raise RequestRefused(
        "INVALID_CONTRACT_PARAMETER_METHOD", f"CERT_MANAGE query {payload.method} is not served"
    )


def contract_query(view: ChainView, payload: Any) -> bytes:
    """CONTRACT_MANAGE queries (GET_CONTRACT_INFO answers JSON, as ChainMaker does)."""
    params = params_of(payload)
    if payload.method == "GET_CONTRACT_INFO":
        name = params.get("CONTRACT_NAME", b"").decode(errors="replace")
        found = view.contract_status(name)
        if found is None:
            raise RequestRefused("CONTRACT_FAIL", f"contract {name} does not exist")
        from .auth import contract_address

        return json.dumps(
            {
                "name": name,
                "version": found[1],
                "runtime_type": int(pb.RuntimeType.Value("EVM")),
                "status": found[0],
                "address": contract_address(name).hex(),
            }
        ).encode()
    raise RequestRefused(
        "INVALID_CONTRACT_PARAMETER_METHOD", f"CONTRACT_MANAGE query {payload.method} is not served"
    )
