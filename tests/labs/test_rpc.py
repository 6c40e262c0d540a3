"""JSON-RPC: error codes and batches on the dispatcher, then unmodified web3.py over HTTP against a
real ExecutionApp that commits a block after every accepted transaction."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
import vyper
from eth_utils import keccak, to_checksum_address
from vyper.compiler.settings import Settings
from web3 import HTTPProvider, Web3
from web3.exceptions import ContractLogicError, Web3RPCError

from labs.minichain.execution import ExecutionApp
from labs.minichain.rpc import RpcDispatcher

try:
    from ._devchain import CHAIN_ID, FUNDED, KEYS, InstantNode, RpcServer, open_app, transfer
except ImportError:  # collected without a package (rootdir-relative imports)
    from _devchain import CHAIN_ID, FUNDED, KEYS, InstantNode, RpcServer, open_app, transfer

CAROL = to_checksum_address("0x" + "ca" * 20)

COUNTER_VY = """
# pragma version ^0.4.0
event Bumped:
    who: indexed(address)
    by: uint256

count: public(uint256)

@deploy
def __init__(start: uint256):
    self.count = start

@external
def bump(by: uint256):
    assert by < 100, "bump too large"
    self.count += by
    log Bumped(who=msg.sender, by=by)
"""


def ask(d: RpcDispatcher, payload: object) -> object:
    reply = d.handle(payload if isinstance(payload, bytes) else json.dumps(payload).encode())
    return None if reply is None else json.loads(reply)


def req(method: str, params: list | None = None, rid: int = 1) -> dict:
    return {"jsonrpc": "2.0", "id": rid, "method": method, "params": params or []}


@pytest.fixture()
def app(tmp_path: Path) -> ExecutionApp:
    return open_app(tmp_path / "rpc")


# --- the dispatcher: JSON-RPC 2.0 framing and error codes ------------------------------------


def test_malformed_json_is_a_parse_error(app: ExecutionApp) -> None:
    reply = ask(RpcDispatcher(app), b'{"jsonrpc": "2.0", "method": ')
    assert reply["error"]["code"] == -32700 and reply["id"] is None


@pytest.mark.parametrize(
    "payload",
    [
        [],
        42,
        {"jsonrpc": "1.0", "id": 1, "method": "eth_chainId"},
        {"jsonrpc": "2.0", "id": 1, "method": 7},
        {"jsonrpc": "2.0", "id": 1},
    ],
)
def test_invalid_requests(app: ExecutionApp, payload: object) -> None:
    reply = ask(RpcDispatcher(app), payload)
    assert reply["error"]["code"] == -32600


def test_unknown_method_and_unrouted_minichain_method(app: ExecutionApp) -> None:
    d = RpcDispatcher(app)
    assert ask(d, req("eth_noSuchThing"))["error"]["code"] == -32601
    assert ask(d, req("minichain_status"))["error"]["code"] == -32601  # no node given
    routed = RpcDispatcher(app, InstantNode(app))
    assert ask(routed, req("minichain_status"))["result"] == {"height": 0}
    assert ask(routed, req("minichain_nope"))["error"]["code"] == -32601


@pytest.mark.parametrize(
    ("method", "params", "says"),
    [
        ("eth_getBalance", ["0x1234"], "argument 0 (address)"),
        ("eth_getBalance", [], "missing value for required argument 0"),
        ("eth_getBalance", ["0x" + "11" * 20, "yesterday"], "argument 1 (block)"),
        ("eth_getBlockByNumber", ["0x0", "yes"], "argument 1 (fullTransactions)"),
        ("eth_getTransactionByHash", ["0xabc"], "32-byte hex"),
        ("eth_call", [{"to": "0x12"}], "'to'"),
        ("eth_getLogs", [{"address": ["0x" + "11" * 20, "nope"]}], "filter.address[1]"),
        ("eth_sendRawTransaction", ["xyz"], "signedTransaction"),
    ],
)
def test_bad_params_say_which_and_why(
    app: ExecutionApp, method: str, params: list, says: str
) -> None:
    reply = ask(RpcDispatcher(app), req(method, params))
    assert reply["error"]["code"] == -32602
    assert says in reply["error"]["message"]


def test_batch_mixes_results_and_errors_and_skips_notifications(app: ExecutionApp) -> None:
    d = RpcDispatcher(app)
    batch = [
        req("eth_chainId", rid=1),
        req("eth_nope", rid=2),
        {"jsonrpc": "2.0", "method": "eth_blockNumber"},  # a notification: no reply
        "junk",
        req("eth_getBalance", [KEYS[0].address.lower(), "latest"], rid=3),
    ]
    replies = ask(d, batch)
    assert len(replies) == 4
    by_id = {r["id"]: r for r in replies if r["id"] is not None}
    assert by_id[1]["result"] == hex(CHAIN_ID)
    assert by_id[2]["error"]["code"] == -32601
    assert by_id[3]["result"] == hex(FUNDED)
    assert [r["error"]["code"] for r in replies if r["id"] is None] == [-32600]
    assert ask(d, [{"jsonrpc": "2.0", "method": "eth_chainId"}]) is None
    assert ask(d, {"jsonrpc": "2.0", "method": "eth_chainId"}) is None


def test_a_refused_transaction_is_32000_with_the_reason(app: ExecutionApp) -> None:
    raw = transfer(KEYS[0], 3)
    reply = ask(RpcDispatcher(app), req("eth_sendRawTransaction", ["0x" + raw.hex()]))
    assert reply["error"]["code"] == -32000
    assert reply["error"]["message"].startswith("nonce too high: expected 0")


# --- over HTTP with unmodified web3.py -------------------------------------------------------


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory):
    app = open_app(tmp_path_factory.mktemp("web3") / "node")
    with RpcServer(RpcDispatcher(app, InstantNode(app))) as server:
        yield server.url, Web3(HTTPProvider(server.url))


def _send(w3: Web3, key, tx: dict) -> dict:
    tx.setdefault("nonce", w3.eth.get_transaction_count(key.address, "pending"))
    tx.setdefault("chainId", w3.eth.chain_id)
    signed = key.sign_transaction(tx)
    return w3.eth.wait_for_transaction_receipt(
        w3.eth.send_raw_transaction(signed.raw_transaction), 10
    )


def test_http_hello_notification_and_body_limit(chain) -> None:
    url, _ = chain
    hello = httpx.get(url + "/").json()
    assert hello["chainId"] == CHAIN_ID and "POST" in hello["usage"]
    assert httpx.post(url, json={"jsonrpc": "2.0", "method": "eth_chainId"}).status_code == 204
    big = httpx.post(
        url, content=b"[" + b" " * (300 * 1024) + b"]", headers={"content-type": "application/json"}
    )
    assert big.status_code == 200
    assert big.json()["error"]["code"] == -32600 and "larger than" in big.json()["error"]["message"]
    junk = httpx.post(url, content=b"{nope")
    assert junk.status_code == 200 and junk.json()["error"]["code"] == -32700


def test_web3_transfers_legacy_and_dynamic_fee(chain) -> None:
    _, w3 = chain
    alice = KEYS[0]
    assert w3.is_connected() and w3.eth.chain_id == CHAIN_ID
    assert w3.eth.get_balance(alice.address) <= FUNDED
    legacy = _send(w3, alice, {"to": CAROL, "value": 5, "gas": 21000, "gasPrice": w3.eth.gas_price})
    dynamic = _send(
        w3,
        alice,
        {
            "to": CAROL,
            "value": 7,
            "gas": 21000,
            "maxFeePerGas": 3 * 10**9,
            "maxPriorityFeePerGas": 10**9,
        },
    )
    assert legacy.status == 1 and legacy.type == 0
    assert dynamic.status == 1 and dynamic.type == 2
    assert w3.eth.get_balance(CAROL) == 12
    tx = w3.eth.get_transaction(dynamic.transactionHash)
    assert tx["from"] == alice.address and tx["to"] == CAROL and tx["value"] == 7
    block = w3.eth.get_block(dynamic.blockNumber, full_transactions=True)
    assert block["transactions"][0]["hash"] == dynamic.transactionHash
    assert w3.eth.get_block(block["hash"])["number"] == dynamic.blockNumber
    assert w3.eth.get_transaction_count(alice.address) == w3.eth.get_transaction_count(
        alice.address, "pending"
    )
    assert w3.eth.estimate_gas({"from": alice.address, "to": CAROL, "value": 1}) == 21000
    history = w3.eth.fee_history(2, "latest", [50])
    assert len(history["baseFeePerGas"]) == 3 and len(history["reward"]) == 2
    with pytest.raises(Web3RPCError, match="nonce too low"):
        w3.eth.send_raw_transaction(
            alice.sign_transaction(
                {
                    "to": CAROL,
                    "value": 1,
                    "gas": 21000,
                    "gasPrice": w3.eth.gas_price,
                    "nonce": 0,
                    "chainId": CHAIN_ID,
                }
            ).raw_transaction
        )


def test_web3_deploys_a_vyper_contract_reads_events_and_sees_revert_reasons(chain) -> None:
    _, w3 = chain
    bob = KEYS[1]
    out = vyper.compile_code(
        COUNTER_VY, output_formats=["abi", "bytecode"], settings=Settings(evm_version="cancun")
    )
    factory = w3.eth.contract(abi=out["abi"], bytecode=out["bytecode"])
    deploy_tx = factory.constructor(5).build_transaction({"from": bob.address})
    created = _send(w3, bob, deploy_tx)
    assert created.status == 1 and created.contractAddress is not None
    counter = w3.eth.contract(address=created.contractAddress, abi=out["abi"])
    assert w3.eth.get_code(counter.address) != b""
    assert counter.functions.count().call() == 5
    assert int.from_bytes(w3.eth.get_storage_at(counter.address, 0), "big") == 5

    start = w3.eth.block_number
    for by in (2, 3):
        receipt = _send(
            w3, bob, counter.functions.bump(by).build_transaction({"from": bob.address})
        )
        assert receipt.status == 1 and len(receipt.logs) == 1
    assert counter.functions.count().call() == 10
    assert counter.functions.count().call(block_identifier=start) == 5

    events = counter.events.Bumped().get_logs(from_block=start)
    assert [(e.args.who, e.args.by) for e in events] == [(bob.address, 2), (bob.address, 3)]
    topic = w3.keccak(text="Bumped(address,uint256)")
    raw = w3.eth.get_logs(
        {
            "fromBlock": start,
            "toBlock": "latest",
            "address": [counter.address, CAROL],
            "topics": [[topic], None],
        }
    )
    assert len(raw) == 2 and raw[0]["logIndex"] == 0 and raw[1]["blockNumber"] == start + 2
    by_sender = w3.eth.get_logs(
        {"fromBlock": 0, "topics": [None, "0x" + "00" * 12 + bob.address[2:].lower()]}
    )
    assert len(by_sender) == 2
    assert w3.eth.get_logs({"fromBlock": 0, "topics": [None, "0x" + "00" * 32]}) == []
    only_block = w3.eth.get_logs({"blockHash": raw[1]["blockHash"]})
    assert [e["transactionHash"] for e in only_block] == [raw[1]["transactionHash"]]

    event_filter = counter.events.Bumped.create_filter(from_block="latest")
    _send(w3, bob, counter.functions.bump(1).build_transaction({"from": bob.address}))
    assert [e.args.by for e in event_filter.get_new_entries()] == [1]

    with pytest.raises(ContractLogicError, match="bump too large"):
        counter.functions.bump(100).call()
    with pytest.raises(ContractLogicError, match="bump too large"):  # via eth_estimateGas
        counter.functions.bump(100).build_transaction({"from": bob.address})
    estimate = counter.functions.bump(1).estimate_gas({"from": bob.address})
    assert 21000 < estimate < 60000


def test_every_cheap_method_answers_without_error(app: ExecutionApp) -> None:
    d = RpcDispatcher(app, InstantNode(app))
    ask(d, req("eth_sendRawTransaction", ["0x" + transfer(KEYS[0], 0, CAROL, 3).hex()]))
    block1 = ask(d, req("eth_getBlockByNumber", ["0x1", False]))["result"]
    tx_hash = block1["transactions"][0]
    alice = KEYS[0].address.lower()
    calls = [
        ("web3_clientVersion", []),
        ("web3_sha3", ["0x68656c6c6f"]),
        ("net_version", []),
        ("net_listening", []),
        ("net_peerCount", []),
        ("eth_syncing", []),
        ("eth_accounts", []),
        ("eth_coinbase", []),
        ("eth_blockNumber", []),
        ("eth_gasPrice", []),
        ("eth_maxPriorityFeePerGas", []),
        ("eth_feeHistory", ["0x5", "latest", [25, 75]]),
        ("eth_getBalance", [alice, {"blockHash": block1["hash"]}]),
        ("eth_getTransactionCount", [alice, "pending"]),
        ("eth_getCode", [alice, "earliest"]),
        ("eth_getStorageAt", [alice, "0x0", "0x0"]),
        ("eth_call", [{"to": CAROL, "data": "0x"}]),
        ("eth_estimateGas", [{"from": alice, "data": "0x600160005500"}]),
        ("eth_getBlockByHash", [block1["hash"], True]),
        ("eth_getBlockTransactionCountByNumber", ["latest"]),
        ("eth_getBlockTransactionCountByHash", [block1["hash"]]),
        ("eth_getTransactionByBlockNumberAndIndex", ["0x1", "0x0"]),
        ("eth_getTransactionByBlockHashAndIndex", [block1["hash"], "0x0"]),
        ("eth_getUncleCountByBlockNumber", ["0x1"]),
        ("eth_getTransactionByHash", [tx_hash]),
        ("eth_getTransactionReceipt", [tx_hash]),
        ("eth_getLogs", [{"fromBlock": "earliest", "toBlock": "latest"}]),
        ("eth_newBlockFilter", []),
    ]
    for method, params in calls:
        reply = ask(d, req(method, params))
        assert "result" in reply, (method, reply)
    assert ask(d, req("web3_sha3", ["0x68656c6c6f"]))["result"] == (
        "0x1c8aff950685c2ed4bc3174f3472287b56d9517b9c948127319a09a7a36deac8"
    )
    assert ask(d, req("eth_getBlockByNumber", ["0x99", False]))["result"] is None
    assert ask(d, req("eth_getBalance", [alice, "0x99"]))["error"]["message"] == "header not found"
    assert ask(d, req("eth_getTransactionReceipt", ["0x" + "00" * 32]))["result"] is None


def test_a_reverting_call_is_code_3_with_the_revert_bytes(app: ExecutionApp) -> None:
    # init code that deploys runtime code which always reverts with Error("no")
    reason = bytes.fromhex("08c379a0") + (32).to_bytes(32, "big") + (2).to_bytes(32, "big")
    reason += b"no".ljust(32, b"\0")
    memory = bytes(28) + reason  # 128 bytes: the reason starts at offset 28
    runtime = b"".join(
        bytes([0x7F]) + memory[i : i + 32] + bytes([0x60, i, 0x52]) for i in range(0, 128, 32)
    )
    runtime += bytes([0x60, len(reason), 0x60, 28, 0xFD])  # revert(28, 100)
    init = bytes([0x60, len(runtime), 0x60, 0x0C, 0x60, 0x00, 0x39, 0x60, len(runtime)])
    init += bytes([0x60, 0x00, 0xF3])
    d = RpcDispatcher(app, InstantNode(app))
    deploy = transfer(KEYS[2], 0, None, 0, gas=200_000, data=init + runtime)
    ask(d, req("eth_sendRawTransaction", ["0x" + deploy.hex()]))
    receipt = ask(d, req("eth_getTransactionReceipt", ["0x" + keccak(deploy).hex()]))["result"]
    assert receipt["status"] == "0x1"
    reply = ask(d, req("eth_call", [{"to": receipt["contractAddress"]}]))
    assert reply["error"]["code"] == 3
    assert reply["error"]["message"] == "execution reverted: no"
    assert reply["error"]["data"] == "0x" + reason.hex()


def test_an_internal_error_is_32603_in_one_line(app: ExecutionApp) -> None:
    class BrokenNode:
        def rpc_methods(self) -> dict:
            def boom(params: list) -> None:
                raise RuntimeError("disk on fire")

            return {"minichain_boom": boom}

    reply = ask(RpcDispatcher(app, BrokenNode()), req("minichain_boom"))
    assert reply["error"] == {
        "code": -32603,
        "message": "internal error: RuntimeError: disk on fire",
    }


@pytest.mark.parametrize(
    ("method", "params"),
    [
        ("eth_getStorageAt", ["0x" + "11" * 20, "0x1" + "0" * 70]),
        ("eth_call", [{"to": "0x" + "11" * 20, "value": hex(2**300)}]),
        ("eth_estimateGas", [{"to": "0x" + "11" * 20, "gas": hex(2**70)}]),
        ("eth_getBlockByNumber", [{"blockNumber": []}, False]),
    ],
)
def test_oversized_numbers_are_invalid_params(app: ExecutionApp, method: str, params: list) -> None:
    assert ask(RpcDispatcher(app), req(method, params))["error"]["code"] == -32602
