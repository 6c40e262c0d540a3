"""The RpcNode methods that look inside one node: its transaction pool and its consensus state.

ChainMaker's pool holds its requests in two pools, config (``CHAIN_CONFIG`` updates) and common
(the rest), each with a queue of requests waiting for a block and a pending stage for those in a
proposed one. minichain's pool is the ChainMaker requests a node admitted and no committed block
carried yet; a block is built from it only when it is proposed, so every request waits in the
queue and the pending stage stays empty. Consensus answers come from the node's running engine:
its validator ids, the height it is deciding and its own status.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from chainmaker.protos.consensus import consensus_pb2
from chainmaker.protos.google.protobuf import wrappers_pb2
from chainmaker.protos.txpool import transaction_pool_pb2 as txpool

from . import pb
from .chainconfig_update import CHAIN_CONFIG

CONFIG_TX, COMMON_TX, ALL_TYPE = (
    txpool.TxType.Value(n) for n in ("CONFIG_TX", "COMMON_TX", "ALL_TYPE")
)
IN_QUEUE, IN_PENDING, ALL_STAGE = (
    txpool.TxStage.Value(n) for n in ("IN_QUEUE", "IN_PENDING", "ALL_STAGE")
)


def _request(raw: bytes) -> Any:
    request = pb.TxRequest()
    request.ParseFromString(raw)
    return request


def _is_config(raw: bytes) -> bool:
    return _request(raw).payload.contract_name == CHAIN_CONFIG


class NodeStatus:
    """Answers from a node's pool (``app.cm_pool``) and engine (``engine()``, None while none
    runs); ``committed(tx_id)`` says whether a block carried the request."""

    def __init__(
        self,
        pool: Any,
        engine: Callable[[], Any],
        committed: Callable[[str], bool],
        capacity: int,
    ) -> None:
        self.pool = pool
        self.engine = engine
        self.committed = committed
        self.capacity = capacity

    # --- transaction pool -------------------------------------------------------------------

    def _waiting(self) -> list[tuple[str, bytes]]:
        out = []
        for tx_id in self.pool.ids():
            raw = self.pool.get(tx_id)
            if raw is not None:
                out.append((tx_id, raw))
        return out

    def pool_status(self) -> Any:
        waiting = self._waiting()
        config = sum(1 for _, raw in waiting if _is_config(raw))
        return txpool.TxPoolStatus(
            config_tx_pool_size=self.capacity,
            common_tx_pool_size=self.capacity,
            config_tx_num_in_queue=config,
            common_tx_num_in_queue=len(waiting) - config,
            config_tx_num_in_pending=0,
            common_tx_num_in_pending=0,
        )

    def tx_ids(self, tx_type: int, tx_stage: int) -> Any:
        wanted = {CONFIG_TX: {True}, COMMON_TX: {False}, ALL_TYPE: {True, False}}.get(tx_type)
        ids = []
        if wanted and tx_stage in (IN_QUEUE, ALL_STAGE):  # nothing is ever IN_PENDING here
            ids = [tx_id for tx_id, raw in self._waiting() if _is_config(raw) in wanted]
        return txpool.GetTxIdsByTypeAndStageResponse(tx_ids=ids)

    def txs(self, tx_ids: list[str]) -> Any:
        found, missing = [], []
        for tx_id in tx_ids:
            raw = self.pool.get(tx_id)
            if raw is None:
                missing.append(tx_id)
                continue
            request = _request(raw)
            found.append(
                pb.Transaction(
                    payload=request.payload, sender=request.sender, endorsers=request.endorsers
                )
            )
        return txpool.GetTxsInPoolByTxIdsResponse(txs=found, tx_ids=missing)

    def tx_status(self, tx_id: str) -> Any:
        if tx_id in self.pool:
            status = "UNPACKAGED"
        elif self.committed(tx_id):
            status = "COMMITTED"
        else:
            status = "UNKNOWN_STATUS"
        return txpool.GetTxStatusResponse(tx_status=txpool.TxStatus.Value(status), tx_id=tx_id)

    # --- consensus --------------------------------------------------------------------------

    def validators(self) -> Any:
        engine = self.engine()
        nodes = list(getattr(engine, "validators", None) or getattr(engine.host, "validators", []))
        return consensus_pb2.Validators(nodes=nodes)

    def height(self) -> Any:
        engine = self.engine()
        height = getattr(engine, "height", None)
        if not isinstance(height, int):
            height = engine.host.committed_height() + 1
        return wrappers_pb2.UInt64Value(value=height)

    def state_json(self) -> Any:
        status = self.engine().status()
        return wrappers_pb2.BytesValue(value=json.dumps(status, default=_plain).encode())


def _plain(value: Any) -> Any:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, set | tuple):
        return list(value)
    return str(value)
