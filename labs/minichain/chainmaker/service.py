"""The gRPC ``api.RpcNode`` service of a validator, as the official ChainMaker SDK calls it.

It serves the node's own chain and state, beside its Ethereum JSON-RPC. TLS is mutual, as in
ChainMaker's default: the node presents its consensus TLS certificate and accepts clients whose
TLS certificate one of the trusted org CAs issued (chains with SM2 keys or without certificates
serve it in plain text, see ``ChainMakerConfig.rpc_tls``). ``SendRequest`` reads the request's bytes
itself, so a malformed protobuf gets ChainMaker's INVALID_PARAMETER answer rather than a gRPC
error, and nothing a client sends can stop the node.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import grpc

from . import pb
from .chainconfig import ChainMakerConfig
from .chainconfig_update import CHAIN_CONFIG
from .chainconfig_update import QUERIES as CONFIG_READS
from .executor import RequestRefused, params_of
from .nodestatus import NodeStatus
from .queries import (
    ChainView,
    block_info,
    cert_query,
    chain_query,
    config_query,
    contract_query,
)

log = logging.getLogger("minichain.chainmaker")

SERVICE = "api.RpcNode"
MAX_MESSAGE = 16 * 1024 * 1024
PENDING_WAIT_STEP = 0.05
PENDING_WAIT_STEPS = 60
SUBSCRIBE_POLL = 0.1


def _int64(value: bytes | None, default: int) -> int:
    """START_BLOCK / END_BLOCK: the SDK sends 8 little-endian bytes of a signed int64."""
    if value is None or len(value) != 8:
        return default
    return int.from_bytes(value, "little", signed=True)


def _a_read(payload: Any) -> bool:
    """A read of the chain configuration sent as an invoke: SDK 3.0.7 builds GET_CHAIN_CONFIG_AT
    with its invoke-payload helper. A read changes nothing, so it is answered at once rather than
    put in a block whose result the SDK would never look at."""
    return payload.contract_name == CHAIN_CONFIG and payload.method in CONFIG_READS


class AppView:
    """The :class:`~.queries.ChainView` of one node's ExecutionApp."""

    def __init__(self, app: Any, nodes: list[tuple[str, str]]) -> None:
        self.app = app
        self._nodes = nodes

    def head_height(self) -> int:
        return int(self.app.committed_height())

    def block(self, height: int) -> Any | None:
        found = self.app.committed_block(height)
        return None if found is None else found[0]

    def height_of_hash(self, block_hash: bytes) -> int | None:
        height = self.app.store.height_of(block_hash)
        return None if height is None else int(height)

    def cm_tx(self, tx_id: str) -> tuple[int, int, bytes] | None:
        found: tuple[int, int, bytes] | None = self.app.store.cm_tx(tx_id)
        return found

    def cm_results(self, height: int) -> list[bytes]:
        return list(self.app.store.cm_results_at(height))

    def contract_status(self, name: str) -> tuple[int, str] | None:
        found: tuple[int, str] | None = self.app.chainmaker.status(self.app.head_state(), name)
        return found

    def nodes(self) -> list[tuple[str, str]]:
        return list(self._nodes)

    def _state(self, height: int | None) -> Any:
        if height is None:
            return self.app.head_state()
        block = self.block(height)
        if block is None:
            raise RequestRefused("CONTRACT_FAIL", f"block {height} not found")
        return self.app.state_for(block.header)

    def config_at(self, height: int | None) -> ChainMakerConfig:
        config: ChainMakerConfig = self.app.chainmaker.configs.config(self._state(height))
        return config

    def last_config_block(self) -> int:
        return int(self.app.chainmaker.configs.last_block(self.app.head_state()))

    def cert_query(self, params: dict[str, bytes]) -> bytes:
        from .certmanage import query

        return query(self.app.head_state(), params)


class RpcNode:
    """Handlers of the RpcNode methods this chain serves (the rest answer UNIMPLEMENTED)."""

    def __init__(
        self,
        app: Any,
        view: ChainView,
        config: ChainMakerConfig,
        submit: Callable[[bytes], None],
        engine: Callable[[], Any] = lambda: None,
    ) -> None:
        self.app = app
        self.view = view
        self.config = config
        """The genesis configuration: its chain id; the rest is read from the head's state."""
        self.submit = submit
        self.status = NodeStatus(
            app.cm_pool,
            engine,
            lambda tx_id: view.cm_tx(tx_id) is not None,
            app.mempool_limit,
        )

    async def send_request(self, raw: bytes, context: Any) -> Any:
        try:
            await self._await_pending(bytes(raw))
            return self._send(bytes(raw))
        except RequestRefused as exc:
            return pb.TxResponse(code=exc.code, message=str(exc))
        except Exception as exc:  # a bug here must answer, not stop the node
            log.exception("SendRequest failed")
            return pb.TxResponse(code=pb.TxStatusCode.Value("INTERNAL_ERROR"), message=repr(exc))

    async def _await_pending(self, raw: bytes) -> None:
        """Hold a GET_TX_BY_TX_ID for a request still in the pool until it commits (a while).

        The SDK polls for a result with ``sleep(retry_interval // 1000)``, which is no sleep at
        its default of 500 ms; answering when the block is in spares both sides that busy loop.
        """
        try:
            request, _ = self.app.chainmaker.parse(raw)
        except RequestRefused:
            return
        payload = request.payload
        if payload.contract_name != "CHAIN_QUERY" or payload.method != "GET_TX_BY_TX_ID":
            return
        tx_id = params_of(payload).get("txId", b"").decode(errors="replace")
        for _ in range(PENDING_WAIT_STEPS):
            if tx_id not in self.app.cm_pool or self.view.cm_tx(tx_id) is not None:
                return
            await asyncio.sleep(PENDING_WAIT_STEP)

    def _send(self, raw: bytes) -> Any:
        executor = self.app.chainmaker
        payload_type = pb.TxType.Value
        admitted_request, _ = executor.parse(raw)
        if admitted_request.payload.tx_type != payload_type("QUERY_CONTRACT") and not _a_read(
            admitted_request.payload
        ):
            admitted = self.app.check_cm(raw)
            self.submit(raw)
            return pb.TxResponse(code=0, message="OK", tx_id=admitted.tx_id)
        admitted = executor.admit(raw, state=self.app.head_state())
        payload = admitted.request.payload
        name = payload.contract_name
        if name == "CHAIN_QUERY":
            result = chain_query(self.view, self.config, payload)
        elif name == "CHAIN_CONFIG":
            result = config_query(self.view, payload)
        elif name == "CERT_MANAGE":
            result = cert_query(self.view, payload)
        elif name == "CONTRACT_MANAGE":
            result = contract_query(self.view, payload)
        else:
            head = self.app.head.header
            state = self.app.state_for(head)
            outcome = executor.query(state, head, payload, admitted.sender)
            return pb.TxResponse(
                code=outcome.code,
                message=outcome.message,
                contract_result=outcome.contract_result,
                tx_id=payload.tx_id,
            )
        return pb.TxResponse(
            code=0,
            message="SUCCESS",
            contract_result=pb.ContractResult(code=0, result=result, message="SUCCESS"),
            tx_id=payload.tx_id,
        )

    async def subscribe(self, raw: bytes, context: Any) -> AsyncIterator[Any]:
        """Blocks, transactions or contract events from START_BLOCK to END_BLOCK (-1: on and on),
        each block as soon as it commits."""
        try:
            admitted = self.app.chainmaker.admit(bytes(raw), state=self.app.head_state())
        except RequestRefused as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"{exc.status}: {exc}")
            return
        payload = admitted.request.payload
        params = params_of(payload)
        method = payload.method
        if method not in ("SUBSCRIBE_BLOCK", "SUBSCRIBE_TX", "SUBSCRIBE_CONTRACT_EVENT"):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"unknown subscription {method}")
            return
        start = _int64(params.get("START_BLOCK"), 0)
        end = _int64(params.get("END_BLOCK"), -1)
        height = self.view.head_height() + 1 if start < 0 else start
        only_header = params.get("ONLY_HEADER", b"false") == b"true"
        contract = params.get("CONTRACT_NAME", b"").decode(errors="replace")
        tx_ids = {t for t in params.get("TX_IDS", b"").decode(errors="replace").split(",") if t}
        topic = params.get("TOPIC", b"").decode(errors="replace")
        while end < 0 or height <= end:
            while self.view.head_height() < height:
                await asyncio.sleep(SUBSCRIBE_POLL)
            info = block_info(self.view, self.config, height)
            if method == "SUBSCRIBE_BLOCK":
                data = info.block.header if only_header else info
                yield pb.SubscribeResult(data=data.SerializeToString())
            elif method == "SUBSCRIBE_TX":
                for tx in info.block.txs:
                    if contract and tx.payload.contract_name != contract:
                        continue
                    if tx_ids and tx.payload.tx_id not in tx_ids:
                        continue
                    yield pb.SubscribeResult(data=tx.SerializeToString())
            else:
                events = [
                    pb.ContractEventInfo(
                        block_height=height,
                        chain_id=self.config.chain_id,
                        topic=event.topic,
                        tx_id=event.tx_id,
                        event_index=index,
                        contract_name=event.contract_name,
                        contract_version=event.contract_version,
                        event_data=event.event_data,
                    )
                    for tx in info.block.txs
                    for index, event in enumerate(tx.result.contract_result.contract_event)
                    if (not contract or event.contract_name == contract)
                    and (not topic or event.topic == topic)
                ]
                if events:
                    listed = pb.ContractEventInfoList(contract_events=events)
                    yield pb.SubscribeResult(data=listed.SerializeToString())
            height += 1

    async def get_version(self, request: Any, context: Any) -> Any:
        return pb.ChainMakerVersionResponse(code=0, message="OK", version=self.config.version)

    def _status_call(self, answer: Callable[[Any], Any]) -> Callable[[Any, Any], Any]:
        """A txpool / consensus method: the request names this chain, and there is an engine."""

        async def call(request: Any, context: Any) -> Any:
            if request.chain_id != self.config.chain_id:
                await context.abort(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    f"chain id {request.chain_id!r} is not this node's {self.config.chain_id!r}",
                )
            if self.status.engine() is None:
                await context.abort(grpc.StatusCode.UNAVAILABLE, "consensus is not running")
            return answer(request)

        return call

    def _status_handlers(self) -> dict[str, grpc.RpcMethodHandler]:
        from chainmaker.protos.consensus import consensus_pb2
        from chainmaker.protos.txpool import transaction_pool_pb2 as txpool

        status = self.status
        methods: list[tuple[str, Any, Callable[[Any], Any]]] = [
            ("GetPoolStatus", txpool.GetPoolStatusRequest, lambda r: status.pool_status()),
            (
                "GetTxIdsByTypeAndStage",
                txpool.GetTxIdsByTypeAndStageRequest,
                lambda r: status.tx_ids(r.tx_type, r.tx_stage),
            ),
            (
                "GetTxsInPoolByTxIds",
                txpool.GetTxsInPoolByTxIdsRequest,
                lambda r: status.txs(list(r.tx_ids)),
            ),
            ("GetTxStatus", txpool.GetTxStatusRequest, lambda r: status.tx_status(r.tx_id)),
            (
                "GetConsensusValidators",
                consensus_pb2.GetConsensusStatusRequest,
                lambda r: status.validators(),
            ),
            (
                "GetConsensusHeight",
                consensus_pb2.GetConsensusStatusRequest,
                lambda r: status.height(),
            ),
            (
                "GetConsensusStateJSON",
                consensus_pb2.GetConsensusStatusRequest,
                lambda r: status.state_json(),
            ),
        ]
        return {
            name: grpc.unary_unary_rpc_method_handler(
                self._status_call(answer),
                request_deserializer=request_type.FromString,
                response_serializer=lambda m: m.SerializeToString(),
            )
            for name, request_type, answer in methods
        }

    def handler(self) -> grpc.GenericRpcHandler:
        return grpc.method_handlers_generic_handler(
            SERVICE,
            {
                **self._status_handlers(),
                "SendRequest": grpc.unary_unary_rpc_method_handler(
                    self.send_request,
                    request_deserializer=None,
                    response_serializer=pb.TxResponse.SerializeToString,
                ),
                "Subscribe": grpc.unary_stream_rpc_method_handler(
                    self.subscribe,
                    request_deserializer=None,
                    response_serializer=pb.SubscribeResult.SerializeToString,
                ),
                "GetChainMakerVersion": grpc.unary_unary_rpc_method_handler(
                    self.get_version,
                    request_deserializer=None,
                    response_serializer=pb.ChainMakerVersionResponse.SerializeToString,
                ),
            },
        )


def trust_roots_pem(config: ChainMakerConfig) -> bytes:
    return "".join(p for t in config.trust_roots for p in t.root).encode()


class TlsRoots:
    """Mutual TLS with the node's consensus TLS pair; clients need a cert from a trusted CA.

    The trusted CAs are those of the configuration at the head: ``update`` (called when a block
    commits) hands the next handshake the new set, so a TRUST_ROOT_ADD lets the new org's
    clients connect, and a TRUST_ROOT_DELETE shuts them out, without restarting the node.
    """

    def __init__(self, node_dir: Path, roots: bytes) -> None:
        name = node_dir.name
        self._pair = (
            (node_dir / f"{name}.tls.key").read_bytes(),
            (node_dir / f"{name}.tls.crt").read_bytes(),
        )
        self._roots = roots
        self._served = roots

    def update(self, roots: bytes) -> None:
        self._roots = roots

    def _configuration(self, roots: bytes) -> Any:
        return grpc.ssl_server_certificate_configuration([self._pair], root_certificates=roots)

    def _fetch(self) -> Any:
        """Asked by gRPC before each handshake: a new configuration, or None for the same."""
        roots = self._roots
        if roots == self._served:
            return None
        self._served = roots
        return self._configuration(roots)

    def credentials(self) -> grpc.ServerCredentials:
        return grpc.dynamic_ssl_server_credentials(
            self._configuration(self._served), self._fetch, require_client_authentication=True
        )


async def start_server(
    rpc: RpcNode, host: str, port: int, credentials: grpc.ServerCredentials | None
) -> grpc.aio.Server:
    """Serve ``rpc``; without credentials in plain text (a chain whose ``rpc_tls`` is off)."""
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE),
            ("grpc.max_send_message_length", MAX_MESSAGE),
        ]
    )
    server.add_generic_rpc_handlers((rpc.handler(),))
    if credentials is None:
        bound = server.add_insecure_port(f"{host}:{port}")
    else:
        bound = server.add_secure_port(f"{host}:{port}", credentials)
    if bound == 0:
        raise OSError(f"gRPC could not listen on {host}:{port}")
    await server.start()
    return server
