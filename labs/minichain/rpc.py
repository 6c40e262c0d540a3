"""Ethereum JSON-RPC for minichain, so web3.py, eth-account and titanoboa work against it unchanged.

:class:`RpcDispatcher` turns request bytes into response bytes (JSON-RPC 2.0: batches,
notifications, standard error codes) and knows nothing about HTTP; :func:`make_rpc_app` serves it
with aiohttp. Results are encoded the way Ethereum clients expect (hex quantities, 0x-prefixed data,
lowercase addresses); input addresses may use any letter case.

Error codes: -32700 parse error, -32600 invalid request, -32601 method not found, -32602 invalid
params (naming the parameter and what is wrong), -32603 internal error, -32000 a refused
transaction or an unanswerable query, and 3 for a reverted call with the revert bytes as ``data``
(so web3.py raises ContractLogicError carrying the reason). Bad input never yields a traceback.
"""

from __future__ import annotations

import itertools
import json
import logging
import time
from collections.abc import Callable
from typing import Any

import orjson
from aiohttp import web
from eth_utils import keccak

from .execution import ExecutionApp
from .mempool import TxError
from .reads import BlockRef, ExecutionReverted, QueryError

log = logging.getLogger("minichain.rpc")

CLIENT_VERSION = "minichain/0.1.0"
MAX_BODY = 8 * 1024 * 1024
MAX_BATCH = 1000
FILTER_TIMEOUT = 300.0
MAX_FILTERS = 1000
TAGS = ("latest", "earliest", "pending", "safe", "finalized")

PARSE_ERROR, INVALID_REQUEST, METHOD_NOT_FOUND, INVALID_PARAMS, INTERNAL = (
    -32700,
    -32600,
    -32601,
    -32602,
    -32603,
)


class RpcError(Exception):
    """An error to report to the client as a JSON-RPC error object."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data

    def to_json(self) -> dict:
        out: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            out["data"] = self.data
        return out


# -------------------------------------------------------------------------------------------------
# Parameter parsing: every failure names the parameter and says what it should look like
# -------------------------------------------------------------------------------------------------

_MISSING = object()


def _hex_bytes(value: Any, what: str, size: int | None = None) -> bytes:
    if isinstance(value, str) and value[:2] in ("0x", "0X"):
        body = value[2:]
        if len(body) % 2 == 0 and (size is None or len(body) == 2 * size):
            try:
                return bytes.fromhex(body)
            except ValueError:
                pass
    shape = f"0x-prefixed {size}-byte hex" if size else "0x-prefixed hex bytes (even length)"
    raise ValueError(f"{what} must be {shape}, got {_show(value)}")


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def parse_address(value: Any, what: str = "address") -> bytes:
    return _hex_bytes(value, what, 20)


def parse_hash(value: Any, what: str = "hash") -> bytes:
    return _hex_bytes(value, what, 32)


def parse_data(value: Any, what: str = "data") -> bytes:
    return _hex_bytes(value, what)


def parse_quantity(value: Any, what: str = "quantity") -> int:
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**256:
        return value
    if isinstance(value, str) and value[:2] in ("0x", "0X") and 2 < len(value) <= 66:
        try:
            return int(value[2:], 16)
        except ValueError:
            pass
    raise ValueError(
        f'{what} must be a hex quantity like "0x1a" (at most 256 bits), got {_show(value)}'
    )


def parse_block(value: Any, what: str = "block") -> BlockRef:
    """A block number, tag or hash; also the EIP-1898 object form {"blockHash"|"blockNumber"}."""
    if isinstance(value, str) and value in TAGS:
        return value
    if isinstance(value, dict):
        if "blockHash" in value:
            return parse_hash(value["blockHash"], f"{what}.blockHash")
        if "blockNumber" in value:
            return parse_block(value["blockNumber"], f"{what}.blockNumber")
    if isinstance(value, str) and len(value) == 66:
        return parse_hash(value, what)
    try:
        return parse_quantity(value, what)
    except ValueError:
        raise ValueError(
            f"{what} must be a hex block number, a block hash or one of {', '.join(TAGS)}; "
            f"got {_show(value)}"
        ) from None


def parse_bool(value: Any, what: str = "flag") -> bool:
    if isinstance(value, bool):
        return value
    raise ValueError(f"{what} must be true or false, got {_show(value)}")


def parse_topics(value: Any) -> list[None | bytes | list[bytes]]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ValueError("filter.topics must be a list")
    out: list[None | bytes | list[bytes]] = []
    for i, t in enumerate(value):
        if t is None:
            out.append(None)
        elif isinstance(t, list):
            out.append(
                [parse_hash(x, f"filter.topics[{i}]") for x in t if x is not None]
                if None not in t
                else None
            )
        else:
            out.append(parse_hash(t, f"filter.topics[{i}]"))
    return out


class LogFilter:
    """A parsed ``eth_getLogs`` / ``eth_newFilter`` filter object."""

    def __init__(self, obj: Any) -> None:
        if not isinstance(obj, dict):
            raise ValueError('the filter must be an object like {"fromBlock": "0x0", ...}')
        self.block_hash = (
            None
            if obj.get("blockHash") is None
            else parse_hash(obj["blockHash"], "filter.blockHash")
        )
        if self.block_hash is not None and (
            obj.get("fromBlock") is not None or obj.get("toBlock") is not None
        ):
            raise ValueError("filter: give either blockHash or fromBlock/toBlock, not both")
        self.from_block: BlockRef = parse_block(
            obj.get("fromBlock") or "latest", "filter.fromBlock"
        )
        self.to_block: BlockRef = parse_block(obj.get("toBlock") or "latest", "filter.toBlock")
        address = obj.get("address")
        if address is None:
            self.addresses: list[bytes] = []
        elif isinstance(address, list):
            self.addresses = [
                parse_address(a, f"filter.address[{i}]") for i, a in enumerate(address)
            ]
        else:
            self.addresses = [parse_address(address, "filter.address")]
        self.topics = parse_topics(obj.get("topics"))


def _arg(
    params: list, index: int, parse: Callable[[Any, str], Any], name: str, default: Any = _MISSING
) -> Any:
    """Parameter ``index`` parsed; a failure becomes -32602 naming it."""
    if index >= len(params) or params[index] is None:
        if default is _MISSING:
            raise RpcError(INVALID_PARAMS, f"missing value for required argument {index} ({name})")
        return default
    try:
        return parse(params[index], name)
    except ValueError as exc:
        raise RpcError(INVALID_PARAMS, f"invalid argument {index} ({name}): {exc}") from None


def _identity(value: Any, what: str) -> Any:
    return value


# -------------------------------------------------------------------------------------------------
# The dispatcher
# -------------------------------------------------------------------------------------------------


class RpcDispatcher:
    """JSON-RPC 2.0 over one ExecutionApp; ``node`` (optional) gossips transactions and adds the
    ``minichain_*`` methods through ``node.rpc_methods()``."""

    def __init__(
        self, app: ExecutionApp, node: Any = None, client_version: str = CLIENT_VERSION
    ) -> None:
        self.app = app
        self.node = node
        self.client_version = client_version
        self._filters: dict[str, dict[str, Any]] = {}
        self._filter_ids = itertools.count(1)
        self.methods: dict[str, Callable[[list], Any]] = {
            name[4:]: getattr(self, name) for name in dir(self) if name.startswith("rpc_")
        }

    # --- transport-independent entry point -----------------------------------------------------

    def handle(self, body: bytes) -> bytes | None:
        """Response bytes for request bytes; None when every request was a notification."""
        try:
            return self._handle(body)
        except Exception as exc:  # last line of defence: never a 500 or a traceback
            log.exception("internal error handling a request")
            return _dump(_error(None, RpcError(INTERNAL, f"internal error: {exc}")))

    def _handle(self, body: bytes) -> bytes | None:
        try:
            request = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            return _dump(_error(None, RpcError(PARSE_ERROR, f"parse error: {exc}")))
        if isinstance(request, list):
            if not request:
                return _dump(_error(None, RpcError(INVALID_REQUEST, "empty batch")))
            if len(request) > MAX_BATCH:
                return _dump(
                    _error(
                        None,
                        RpcError(
                            INVALID_REQUEST,
                            f"batch of {len(request)} requests: send at most {MAX_BATCH}",
                        ),
                    )
                )
            replies = [r for r in (self._one(item) for item in request) if r is not None]
            return _dump(replies) if replies else None
        reply = self._one(request)
        return None if reply is None else _dump(reply)

    def _one(self, request: Any) -> dict | None:
        if not isinstance(request, dict):
            return _error(None, RpcError(INVALID_REQUEST, "invalid request: expected an object"))
        rid = request.get("id")
        if not (rid is None or isinstance(rid, str | int | float)) or isinstance(rid, bool):
            return _error(None, RpcError(INVALID_REQUEST, "invalid request: bad id"))
        method = request.get("method")
        params = request.get("params", [])
        if request.get("jsonrpc") != "2.0" or not isinstance(method, str):
            return _error(
                rid,
                RpcError(
                    INVALID_REQUEST, 'invalid request: needs "jsonrpc": "2.0" and a string "method"'
                ),
            )
        if params is None:
            params = []
        if not isinstance(params, list):
            return _error(rid, RpcError(INVALID_PARAMS, "params must be a list (by position)"))
        notification = "id" not in request
        try:
            result = self.call(method, params)
        except RpcError as exc:
            return None if notification else _error(rid, exc)
        return None if notification else {"jsonrpc": "2.0", "id": rid, "result": result}

    def call(self, method: str, params: list) -> Any:
        """Run one method; every failure comes out as RpcError."""
        fn = self.methods.get(method)
        if fn is None and method.startswith("minichain_"):
            node_methods = self.node.rpc_methods() if hasattr(self.node, "rpc_methods") else {}
            fn = node_methods.get(method)
        if fn is None:
            raise RpcError(METHOD_NOT_FOUND, f"the method {method} does not exist/is not available")
        try:
            return fn(params)
        except RpcError:
            raise
        except ExecutionReverted as exc:
            raise RpcError(3, str(exc), "0x" + exc.data.hex()) from None
        except TxError as exc:
            raise RpcError(-32000, str(exc)) from None
        except QueryError as exc:
            raise RpcError(exc.code, str(exc)) from None
        except ValueError as exc:
            raise RpcError(INVALID_PARAMS, f"invalid params: {exc}") from None
        except Exception as exc:  # a bug must not take the server down or leak a traceback
            log.exception("internal error in %s", method)
            raise RpcError(INTERNAL, f"internal error: {type(exc).__name__}: {exc}") from None

    # --- web3 / net ----------------------------------------------------------------------------

    def rpc_web3_clientVersion(self, params: list) -> str:
        return self.client_version

    def rpc_web3_sha3(self, params: list) -> str:
        return "0x" + keccak(_arg(params, 0, parse_data, "data")).hex()

    def rpc_net_version(self, params: list) -> str:
        return str(self.app.chain_id)

    def rpc_net_listening(self, params: list) -> bool:
        return True

    def rpc_net_peerCount(self, params: list) -> str:
        transport = getattr(self.node, "transport", None)
        peers = getattr(transport, "connected_peers", None)
        return hex(len(peers()) if callable(peers) else 0)

    # --- chain ---------------------------------------------------------------------------------

    def rpc_eth_chainId(self, params: list) -> str:
        return hex(self.app.chain_id)

    def rpc_eth_blockNumber(self, params: list) -> str:
        return hex(self.app.committed_height())

    def rpc_eth_syncing(self, params: list) -> bool:
        return False

    def rpc_eth_mining(self, params: list) -> bool:
        return False

    def rpc_eth_hashrate(self, params: list) -> str:
        return "0x0"

    def rpc_eth_accounts(self, params: list) -> list:
        return []

    def rpc_eth_coinbase(self, params: list) -> str:
        coinbase = getattr(self.node, "coinbase", None)
        return "0x" + (coinbase or bytes(20)).hex()

    def rpc_eth_gasPrice(self, params: list) -> str:
        return hex(self.app.reads.gas_price())

    def rpc_eth_maxPriorityFeePerGas(self, params: list) -> str:
        return hex(self.app.reads.max_priority_fee())

    def rpc_eth_feeHistory(self, params: list) -> dict:
        count = _arg(params, 0, parse_quantity, "blockCount")
        newest = _arg(params, 1, parse_block, "newestBlock")
        percentiles = _arg(params, 2, _identity, "rewardPercentiles", [])
        if not isinstance(percentiles, list) or not all(
            isinstance(p, int | float) and not isinstance(p, bool) for p in percentiles
        ):
            raise RpcError(
                INVALID_PARAMS, "invalid argument 2 (rewardPercentiles): a list of numbers 0..100"
            )
        return self.app.reads.fee_history(count, newest, percentiles)

    # --- state ---------------------------------------------------------------------------------

    def rpc_eth_getBalance(self, params: list) -> str:
        address = _arg(params, 0, parse_address, "address")
        return hex(
            self.app.reads.get_balance(address, _arg(params, 1, parse_block, "block", "latest"))
        )

    def rpc_eth_getTransactionCount(self, params: list) -> str:
        address = _arg(params, 0, parse_address, "address")
        return hex(
            self.app.reads.get_nonce(address, _arg(params, 1, parse_block, "block", "latest"))
        )

    def rpc_eth_getCode(self, params: list) -> str:
        address = _arg(params, 0, parse_address, "address")
        block = _arg(params, 1, parse_block, "block", "latest")
        return "0x" + self.app.reads.get_code(address, block).hex()

    def rpc_eth_getStorageAt(self, params: list) -> str:
        address = _arg(params, 0, parse_address, "address")
        slot = _arg(params, 1, parse_quantity, "position")
        block = _arg(params, 2, parse_block, "block", "latest")
        return "0x" + self.app.reads.get_storage_at(address, slot, block).hex()

    def rpc_eth_call(self, params: list) -> str:
        tx = _arg(params, 0, _identity, "transaction")
        block = _arg(params, 1, parse_block, "block", "latest")
        if len(params) > 2 and params[2]:
            raise RpcError(INVALID_PARAMS, "invalid argument 2: state overrides are not supported")
        return "0x" + self.app.reads.call(tx, block).hex()

    def rpc_eth_estimateGas(self, params: list) -> str:
        tx = _arg(params, 0, _identity, "transaction")
        block = _arg(params, 1, parse_block, "block", "latest")
        return hex(self.app.reads.estimate_gas(tx, block))

    # --- transactions --------------------------------------------------------------------------

    def rpc_eth_sendRawTransaction(self, params: list) -> str:
        raw = _arg(params, 0, parse_data, "signedTransaction")
        submit = getattr(self.node, "submit_transaction", None)
        tx_hash = submit(raw) if submit is not None else self.app.check_tx(raw)
        return "0x" + tx_hash.hex()

    def rpc_eth_getTransactionByHash(self, params: list) -> dict | None:
        return self.app.reads.transaction(_arg(params, 0, parse_hash, "transactionHash"))

    def rpc_eth_getTransactionReceipt(self, params: list) -> dict | None:
        return self.app.reads.receipt(_arg(params, 0, parse_hash, "transactionHash"))

    def rpc_eth_getTransactionByBlockNumberAndIndex(self, params: list) -> dict | None:
        block = _arg(params, 0, parse_block, "block")
        return self.app.reads.transaction_at(block, _arg(params, 1, parse_quantity, "index"))

    def rpc_eth_getTransactionByBlockHashAndIndex(self, params: list) -> dict | None:
        block = _arg(params, 0, parse_hash, "blockHash")
        return self.app.reads.transaction_at(block, _arg(params, 1, parse_quantity, "index"))

    # --- blocks --------------------------------------------------------------------------------

    def rpc_eth_getBlockByNumber(self, params: list) -> dict | None:
        block = _arg(params, 0, parse_block, "block")
        return self.app.reads.block(block, _arg(params, 1, parse_bool, "fullTransactions", False))

    def rpc_eth_getBlockByHash(self, params: list) -> dict | None:
        block = _arg(params, 0, parse_hash, "blockHash")
        return self.app.reads.block(block, _arg(params, 1, parse_bool, "fullTransactions", False))

    def rpc_eth_getBlockTransactionCountByNumber(self, params: list) -> str | None:
        count = self.app.reads.block_tx_count(_arg(params, 0, parse_block, "block"))
        return None if count is None else hex(count)

    def rpc_eth_getBlockTransactionCountByHash(self, params: list) -> str | None:
        count = self.app.reads.block_tx_count(_arg(params, 0, parse_hash, "blockHash"))
        return None if count is None else hex(count)

    def rpc_eth_getUncleCountByBlockNumber(self, params: list) -> str | None:
        block = _arg(params, 0, parse_block, "block")
        return None if self.app.reads.resolve_height(block) is None else "0x0"

    def rpc_eth_getUncleCountByBlockHash(self, params: list) -> str | None:
        block = _arg(params, 0, parse_hash, "blockHash")
        return None if self.app.reads.resolve_height(block) is None else "0x0"

    # --- logs and filters ----------------------------------------------------------------------

    def rpc_eth_getLogs(self, params: list) -> list:
        f = _arg(params, 0, lambda v, _: LogFilter(v), "filter")
        return self.app.reads.logs(f.from_block, f.to_block, f.addresses, f.topics, f.block_hash)

    def _new_filter(self, kind: str, **fields: Any) -> str:
        now = time.monotonic()
        for fid in [k for k, v in self._filters.items() if now - v["seen"] > FILTER_TIMEOUT]:
            del self._filters[fid]
        if len(self._filters) >= MAX_FILTERS:
            raise RpcError(-32000, f"too many filters ({MAX_FILTERS}): uninstall unused ones")
        fid = hex(next(self._filter_ids))
        self._filters[fid] = {
            "kind": kind,
            "seen": now,
            "last": self.app.committed_height(),
            **fields,
        }
        return fid

    def _filter(self, params: list) -> dict:
        fid = _arg(params, 0, _identity, "filterId")
        found = self._filters.get(fid) if isinstance(fid, str) else None
        if found is None:
            raise RpcError(-32000, "filter not found")
        found["seen"] = time.monotonic()
        return found

    def rpc_eth_newFilter(self, params: list) -> str:
        f = _arg(params, 0, lambda v, _: LogFilter(v), "filter")
        return self._new_filter("logs", filter=f)

    def rpc_eth_newBlockFilter(self, params: list) -> str:
        return self._new_filter("blocks")

    def rpc_eth_uninstallFilter(self, params: list) -> bool:
        fid = _arg(params, 0, _identity, "filterId")
        return self._filters.pop(fid, None) is not None if isinstance(fid, str) else False

    def rpc_eth_getFilterChanges(self, params: list) -> list:
        found = self._filter(params)
        head = self.app.committed_height()
        first, found["last"] = found["last"] + 1, head
        if first > head:
            return []
        if found["kind"] == "blocks":
            blocks = [self.app.reads.block(h) for h in range(first, head + 1)]
            return [b["hash"] for b in blocks if b is not None]  # all committed: none is None
        f: LogFilter = found["filter"]
        if f.block_hash is not None:
            return []
        to = self.app.reads.resolve_height(f.to_block)
        start = max(first, self.app.reads.resolve_height(f.from_block) or 0)
        return self.app.reads.logs(
            start, head if to is None else min(to, head), f.addresses, f.topics
        )

    def rpc_eth_getFilterLogs(self, params: list) -> list:
        found = self._filter(params)
        if found["kind"] != "logs":
            raise RpcError(-32000, "filter is not a log filter")
        f: LogFilter = found["filter"]
        return self.app.reads.logs(f.from_block, f.to_block, f.addresses, f.topics, f.block_hash)


def _error(rid: Any, exc: RpcError) -> dict:
    return {"jsonrpc": "2.0", "id": rid, "error": exc.to_json()}


def _dump(obj: Any) -> bytes:
    try:
        return orjson.dumps(obj)
    except TypeError:  # e.g. an int wider than 64 bits in a node-provided result
        return json.dumps(obj, default=str, separators=(",", ":")).encode()


# -------------------------------------------------------------------------------------------------
# HTTP
# -------------------------------------------------------------------------------------------------

_CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "POST, GET, OPTIONS",
    "Access-Control-Allow-Headers": "Content-Type",
}


def make_rpc_app(dispatcher: RpcDispatcher, max_body: int = MAX_BODY) -> web.Application:
    """The aiohttp application serving JSON-RPC on ``POST /`` (and a short hello on ``GET /``)."""

    async def post(request: web.Request) -> web.Response:
        if request.content_length is not None and request.content_length > max_body:
            return _too_large(max_body)
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return _too_large(max_body)
        reply = dispatcher.handle(body)
        if reply is None:
            return web.Response(status=204, headers=_CORS)
        return web.Response(body=reply, content_type="application/json", headers=_CORS)

    async def hello(request: web.Request) -> web.Response:
        info = {
            "name": "minichain",
            "client": dispatcher.client_version,
            "chainId": dispatcher.app.chain_id,
            "blockNumber": dispatcher.app.committed_height(),
            "usage": "POST JSON-RPC 2.0 requests here, e.g. Web3(HTTPProvider(this_url))",
        }
        return web.Response(body=orjson.dumps(info), content_type="application/json", headers=_CORS)

    async def options(request: web.Request) -> web.Response:
        return web.Response(status=204, headers=_CORS)

    app = web.Application(client_max_size=max_body)
    app.router.add_post("/", post)
    app.router.add_get("/", hello)
    app.router.add_route("OPTIONS", "/", options)
    return app


def _too_large(max_body: int) -> web.Response:
    body = _dump(
        _error(
            None,
            RpcError(
                INVALID_REQUEST, f"request body larger than {max_body} bytes: send smaller batches"
            ),
        )
    )
    return web.Response(body=body, content_type="application/json", headers=_CORS)
