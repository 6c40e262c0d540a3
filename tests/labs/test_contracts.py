"""Compiling Solidity (solc-js) and Vyper, the compile cache, the kept-alive compiler process, and
running what was compiled on a real EVM (py-evm's Cancun VM), directly and through web3.py."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from eth import constants
from eth.chains.base import MiningChain
from eth.db.atomic import AtomicDB
from eth.exceptions import Revert
from eth.vm.forks import CancunVM
from eth_abi import decode, encode
from eth_keys import keys
from eth_utils import function_signature_to_4byte_selector, keccak, to_wei

from labs.minichain.contracts import (
    CompiledContract,
    CompileError,
    CompilerNotFound,
    DeployError,
    compile_file,
    compile_solidity,
    compile_vyper,
    contract_at,
    deploy,
    solc_server_pid,
    stop_solc_server,
)
from labs.minichain.waiting import wait_until

CONTRACTS = Path(__file__).parent / "contracts"
REPO = Path(__file__).resolve().parents[2]
CHAIN_ID = 1337
ERROR_STRING = function_signature_to_4byte_selector("Error(string)")


@pytest.fixture(autouse=True)
def cache_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test compiles into its own cache folder, never the user's."""
    monkeypatch.setenv("ACADEMY_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def unique(source: str, comment: str = "//") -> str:
    """The same contract with a comment no cache has seen, to force a real compile."""
    return f"{source}\n{comment} {uuid.uuid4().hex}\n"


def token_sources(nonce: str = "") -> dict[str, str]:
    return {
        "Token.sol": (CONTRACTS / "Token.sol").read_text() + nonce,
        "IERC20.sol": (CONTRACTS / "IERC20.sol").read_text(),
    }


# ---------------------------------------------------------------------------------------------------
# A real EVM: py-evm's Cancun VM on an in-memory database, one block mined per transaction
# ---------------------------------------------------------------------------------------------------


class Evm:
    def __init__(self, accounts: int = 3) -> None:
        self.keys = [keys.PrivateKey(bytes([i + 1]) * 32) for i in range(accounts)]
        chain_class = MiningChain.configure(
            __name__="ContractsTestChain", vm_configuration=((0, CancunVM),), chain_id=CHAIN_ID
        )
        funded = {"balance": to_wei(100, "ether"), "nonce": 0, "code": b"", "storage": {}}
        self.chain = chain_class.from_genesis(
            AtomicDB(),
            {
                "difficulty": 0,
                "gas_limit": 30_000_000,
                "timestamp": 1_700_000_000,
                "coinbase": constants.ZERO_ADDRESS,
            },
            {self.address(i): dict(funded) for i in range(accounts)},
        )

    def address(self, account: int) -> bytes:
        return self.keys[account].public_key.to_canonical_address()

    def transact(self, account: int, to: bytes, data: bytes) -> tuple[Any, Any]:
        """Sign, apply and mine one transaction; the receipt and the computation."""
        vm = self.chain.get_vm()
        tx = vm.get_transaction_builder().new_unsigned_dynamic_fee_transaction(
            chain_id=CHAIN_ID,
            nonce=vm.state.get_nonce(self.address(account)),
            max_priority_fee_per_gas=1,
            max_fee_per_gas=10**11,
            gas=5_000_000,
            to=to,
            value=0,
            data=data,
            access_list=[],
        )
        _, receipt, computation = self.chain.apply_transaction(
            tx.as_signed_transaction(self.keys[account])
        )
        self.chain.mine_block()
        return receipt, computation

    def deploy(self, compiled: CompiledContract, *args: Any, account: int = 0) -> bytes:
        types = arg_types(abi_entry(compiled, None, "constructor")) if args else []
        code = bytes.fromhex(compiled.bytecode[2:]) + encode(types, list(args))
        _, computation = self.transact(account, b"", code)
        assert computation.is_success, revert_reason(computation.output)
        address = computation.msg.storage_address
        assert self.chain.get_vm().state.get_code(address) == bytes.fromhex(
            compiled.deployed_bytecode[2:]
        )
        return address

    def call(self, compiled: CompiledContract, to: bytes, fn: str, *args: Any) -> Any:
        """Read-only call at the head; the single return value."""
        vm = self.chain.get_vm()
        tx = vm.create_unsigned_transaction(
            nonce=vm.state.get_nonce(self.address(0)),
            gas_price=0,
            gas=1_000_000,
            to=to,
            value=0,
            data=calldata(compiled, fn, *args),
        ).as_signed_transaction(self.keys[0], chain_id=CHAIN_ID)
        output = self.chain.get_transaction_result(tx, self.chain.get_canonical_head())
        (value,) = decode(arg_types(abi_entry(compiled, fn), "outputs"), output)
        return value


def abi_entry(compiled: CompiledContract, name: str | None, kind: str = "function") -> dict:
    return next(e for e in compiled.abi if e["type"] == kind and e.get("name") == name)


def arg_types(entry: dict, field: str = "inputs") -> list[str]:
    return [arg["type"] for arg in entry[field]]


def calldata(compiled: CompiledContract, fn: str, *args: Any) -> bytes:
    """ABI-encode a call from the compiler's ABI (so a wrong ABI fails the test)."""
    types = arg_types(abi_entry(compiled, fn))
    return function_signature_to_4byte_selector(f"{fn}({','.join(types)})") + encode(types, args)


def event_topic(compiled: CompiledContract, name: str) -> bytes:
    types = arg_types(abi_entry(compiled, name, "event"))
    return keccak(text=f"{name}({','.join(types)})")


def revert_reason(output: bytes) -> str:
    assert output[:4] == ERROR_STRING, f"no reason string in {output.hex()}"
    return decode(["string"], output[4:])[0]


def word(value: bytes | int) -> int:
    return int.from_bytes(value, "big") if isinstance(value, bytes) else value


# ---------------------------------------------------------------------------------------------------
# Compiling
# ---------------------------------------------------------------------------------------------------


def test_erc20_compiles_with_its_import() -> None:
    token = compile_file(CONTRACTS / "Token.sol")
    assert token.name == "Token"
    assert token.language == "solidity"
    assert token.compiler_version.startswith("0.8.30+")
    assert token.bytecode.startswith("0x6080") and token.deployed_bytecode.startswith("0x6080")
    functions = {e["name"] for e in token.abi if e["type"] == "function"}
    assert {"transfer", "transferFrom", "approve", "balanceOf", "allowance"} <= functions
    assert {e["name"] for e in token.abi if e["type"] == "event"} == {"Transfer", "Approval"}
    assert token.warnings == ()


def test_vyper_contract_compiles() -> None:
    counter = compile_file(CONTRACTS / "Counter.vy")
    assert (counter.name, counter.language, counter.compiler_version) == (
        "Counter",
        "vyper",
        "0.4.3",
    )
    assert abi_entry(counter, "Bumped", "event")["inputs"][0]["indexed"] is True
    assert len(counter.deployed_bytecode) > 4
    assert counter.bytecode != counter.deployed_bytecode


def test_warnings_are_reported_one_line_each() -> None:
    compiled = compile_solidity(
        unique("pragma solidity ^0.8.0;\ncontract NoLicense { function f() public pure {} }")
    )
    assert any(w.startswith("Contract.sol:") and "SPDX" in w for w in compiled.warnings)
    assert all("\n" not in w for w in compiled.warnings)


def test_contract_is_picked_by_name_when_several_are_deployable() -> None:
    source = unique("pragma solidity ^0.8.0;\ncontract A { }\ncontract B { uint public b = 2; }")
    with pytest.raises(CompileError, match=r"several contracts \(A, B\): pass contract='Name'"):
        compile_solidity(source)
    assert compile_solidity(source, contract="B").name == "B"
    assert compile_solidity(source, contract="Contract.sol:A").name == "A"
    with pytest.raises(CompileError, match="no contract named 'C'"):
        compile_solidity(source, contract="C")


def timed(compile: Any, *args: Any, **kwargs: Any) -> tuple[float, CompiledContract]:
    started = time.perf_counter()
    compiled = compile(*args, **kwargs)
    return time.perf_counter() - started, compiled


def test_cache_hit_is_much_faster_and_equal(cache_root: Path) -> None:
    compile_solidity(unique("pragma solidity ^0.8.0; contract Warm {}"))  # compiler started
    nonce = f"// {uuid.uuid4().hex}\n"

    miss_seconds, miss = timed(compile_solidity, token_sources(nonce), contract="Token")
    hit_seconds, hit = min(
        timed(compile_solidity, token_sources(nonce), contract="Token") for _ in range(3)
    )

    assert hit == miss
    assert hit_seconds * 20 < miss_seconds, (hit_seconds, miss_seconds)
    assert len(list((cache_root / "solc").glob("*.json"))) >= 2

    source = unique((CONTRACTS / "Counter.vy").read_text(), "#")
    vy_miss_seconds, vy_miss = timed(compile_vyper, source, name="Counter")
    vy_hit_seconds, vy_hit = min(timed(compile_vyper, source, name="Counter") for _ in range(3))
    assert vy_hit == vy_miss
    assert vy_hit_seconds * 20 < vy_miss_seconds, (vy_hit_seconds, vy_miss_seconds)


def test_disk_cache_answers_a_new_process_without_starting_the_compiler(cache_root: Path) -> None:
    token = compile_file(CONTRACTS / "Token.sol")
    counter = compile_file(CONTRACTS / "Counter.vy")
    script = (
        "import json\n"
        "from labs.minichain.contracts import compile_file, solc_server_pid\n"
        f"token = compile_file({str(CONTRACTS / 'Token.sol')!r})\n"
        f"counter = compile_file({str(CONTRACTS / 'Counter.vy')!r})\n"
        "print(json.dumps([token.to_json(), counter.to_json(), solc_server_pid()]))\n"
    )
    env = dict(os.environ, ACADEMY_CACHE_DIR=str(cache_root))
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    token_json, counter_json, pid = json.loads(result.stdout)
    assert pid is None  # answered from disk: no node process was needed
    assert CompiledContract.from_json(token_json) == token
    assert CompiledContract.from_json(counter_json) == counter


def test_an_edited_import_is_compiled_again(tmp_path: Path) -> None:
    for name in ("Token.sol", "IERC20.sol"):
        (tmp_path / name).write_text((CONTRACTS / name).read_text())
    before = compile_file(tmp_path / "Token.sol")
    interface = tmp_path / "IERC20.sol"
    interface.write_text(
        interface.read_text().replace("}\n", "    function extra() external;\n}\n")
    )
    with pytest.raises(CompileError, match=r"Token\.sol:8:1: TypeError: .*abstract"):
        compile_file(tmp_path / "Token.sol")
    interface.write_text((CONTRACTS / "IERC20.sol").read_text())
    assert compile_file(tmp_path / "Token.sol") == before


def test_solidity_compile_error_names_file_line_and_column() -> None:
    broken = "pragma solidity ^0.8.0;\n\ncontract Broken {\n    uint x;\n    function f() public { x = 1 }\n}\n"
    with pytest.raises(CompileError) as caught:
        compile_solidity({"Broken.sol": broken})
    message = str(caught.value)
    assert message == "Broken.sol:5:33: ParserError: Expected ';' but got '}'"
    assert "^" in caught.value.details  # the full compiler text keeps the caret excerpt
    with pytest.raises(CompileError):  # failures are never cached
        compile_solidity({"Broken.sol": broken})


def test_solidity_missing_import_says_what_to_do() -> None:
    source = unique('pragma solidity ^0.8.0;\nimport "./Missing.sol";\ncontract A {}')
    with pytest.raises(CompileError, match=r"Contract\.sol:2:1: .*give it in the sources"):
        compile_solidity(source)


def test_vyper_compile_error_names_file_and_line() -> None:
    broken = "count: public(uint256)\n\n@external\ndef bump():\n    self.count += step\n"
    with pytest.raises(CompileError) as caught:
        compile_vyper(broken, name="Broken")
    assert str(caught.value).startswith("Broken.vy:5:")
    assert "'step' has not been declared" in str(caught.value)
    assert "\n" not in str(caught.value)


def test_unknown_suffix_and_missing_file_are_one_line_errors(tmp_path: Path) -> None:
    (tmp_path / "token.txt").write_text("contract A {}")
    with pytest.raises(CompileError, match=r"name the file \*\.sol or \*\.vy"):
        compile_file(tmp_path / "token.txt")
    with pytest.raises(CompileError, match="no such file"):
        compile_file(tmp_path / "absent.sol")


def test_missing_solc_says_to_run_make_setup(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ACADEMY_NODE_MODULES", str(tmp_path))
    with pytest.raises(CompilerNotFound, match="run `make setup`"):
        compile_solidity(unique("pragma solidity ^0.8.0; contract A {}"))


# ---------------------------------------------------------------------------------------------------
# The kept-alive compiler process
# ---------------------------------------------------------------------------------------------------


def test_compiles_share_one_node_process_which_is_restarted_if_it_dies() -> None:
    compile_solidity(unique("pragma solidity ^0.8.0; contract One {}"))
    first = solc_server_pid()
    compile_solidity(unique("pragma solidity ^0.8.0; contract Two {}"))
    assert first is not None and solc_server_pid() == first

    os.kill(first, signal.SIGKILL)
    time.sleep(0.2)
    assert compile_solidity(unique("pragma solidity ^0.8.0; contract Three {}")).name == "Three"
    assert solc_server_pid() not in (None, first)


def _compile_in_child(results: Any) -> None:
    compiled = compile_solidity(unique("pragma solidity ^0.8.0; contract Child {}"))
    results.put((compiled.name, solc_server_pid()))
    stop_solc_server()


def test_a_forked_child_starts_its_own_node_process() -> None:
    compile_solidity(unique("pragma solidity ^0.8.0; contract Parent {}"))
    parent_node = solc_server_pid()
    context = multiprocessing.get_context("fork")
    results = context.SimpleQueue()
    child = context.Process(target=_compile_in_child, args=(results,))
    child.start()
    child.join(60)
    assert child.exitcode == 0
    name, child_node = results.get()
    assert name == "Child" and child_node not in (None, parent_node)
    assert solc_server_pid() == parent_node  # the parent's process was left alone
    assert compile_solidity(unique("pragma solidity ^0.8.0; contract After {}")).name == "After"
    assert solc_server_pid() == parent_node


def test_node_process_ends_with_the_python_process() -> None:
    script = (
        "from labs.minichain.contracts import compile_solidity, solc_server_pid\n"
        f"compile_solidity({unique('pragma solidity ^0.8.0; contract A {}')!r})\n"
        "print(solc_server_pid())\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, check=True
    )
    pid = int(result.stdout)
    wait_until(
        lambda: not Path(f"/proc/{pid}").exists(),
        5,
        interval=0.05,
        message=f"node process {pid} outlived its Python process",
    )


# ---------------------------------------------------------------------------------------------------
# Running the compiled code on a real EVM (py-evm, Cancun)
# ---------------------------------------------------------------------------------------------------


def test_erc20_transfer_moves_balances_and_logs_transfer() -> None:
    token = compile_file(CONTRACTS / "Token.sol")
    evm = Evm()
    owner, alice = evm.address(0), evm.address(1)
    address = evm.deploy(token, "Academy Token", "ACA", 1_000)
    assert evm.call(token, address, "totalSupply") == 1_000
    assert evm.call(token, address, "symbol") == "ACA"

    receipt, computation = evm.transact(0, address, calldata(token, "transfer", alice, 250))
    assert computation.is_success
    assert evm.call(token, address, "balanceOf", owner) == 750
    assert evm.call(token, address, "balanceOf", alice) == 250
    (log,) = receipt.logs
    assert log.address == address
    assert log.topics == (
        word(event_topic(token, "Transfer")),
        word(owner.rjust(32, b"\0")),
        word(alice.rjust(32, b"\0")),
    )
    assert decode(["uint256"], log.data) == (250,)


def test_erc20_overdraft_reverts_with_its_reason_and_changes_nothing() -> None:
    token = compile_file(CONTRACTS / "Token.sol")
    evm = Evm()
    address = evm.deploy(token, "Academy Token", "ACA", 1_000)
    receipt, computation = evm.transact(1, address, calldata(token, "transfer", evm.address(2), 1))
    assert isinstance(computation.error, Revert)
    assert revert_reason(computation.output) == "Token: transfer amount exceeds balance"
    assert receipt.logs == ()
    assert evm.call(token, address, "balanceOf", evm.address(2)) == 0


def test_guarded_contract_reverts_with_reason_for_a_stranger() -> None:
    guarded = compile_file(CONTRACTS / "Guarded.sol")
    evm = Evm()
    address = evm.deploy(guarded, False)
    _, computation = evm.transact(1, address, calldata(guarded, "set", 7))
    assert revert_reason(computation.output) == "Guarded: caller is not the owner"
    _, computation = evm.transact(0, address, calldata(guarded, "set", 7))
    assert computation.is_success and evm.call(guarded, address, "value") == 7


def test_vyper_contract_runs_and_emits_its_event() -> None:
    counter = compile_file(CONTRACTS / "Counter.vy")
    evm = Evm()
    address = evm.deploy(counter, 40)
    receipt, computation = evm.transact(1, address, calldata(counter, "bump", 2))
    assert decode(["uint256"], computation.output) == (42,)
    assert evm.call(counter, address, "count") == 42
    (log,) = receipt.logs
    assert log.topics == (
        word(event_topic(counter, "Bumped")),
        word(evm.address(1).rjust(32, b"\0")),
    )
    assert decode(["uint256"], log.data) == (42,)
    _, computation = evm.transact(1, address, calldata(counter, "bump", 0))
    assert revert_reason(computation.output) == "Counter: step must be positive"


# ---------------------------------------------------------------------------------------------------
# deploy() through web3.py, onto py-evm behind eth-tester
# ---------------------------------------------------------------------------------------------------


@pytest.fixture
def w3_and_account() -> tuple[Any, Any]:
    pytest.importorskip("eth_tester")
    from eth_account import Account
    from eth_tester import EthereumTester, PyEVMBackend
    from web3 import EthereumTesterProvider, Web3

    backend = PyEVMBackend(vm_configuration=((0, CancunVM),))
    w3 = Web3(EthereumTesterProvider(EthereumTester(backend)))
    return w3, Account.from_key(backend.account_keys[0].to_bytes())


def test_deploy_solidity_and_vyper_through_web3(w3_and_account: tuple[Any, Any]) -> None:
    w3, account = w3_and_account
    token = deploy(
        w3, compile_file(CONTRACTS / "Token.sol"), "Academy Token", "ACA", 1_000, account=account
    )
    assert token.functions.balanceOf(account.address).call() == 1_000
    receiver = "0x" + "ab" * 20
    tx = token.functions.transfer(w3.to_checksum_address(receiver), 5).build_transaction(
        {"from": account.address, "nonce": w3.eth.get_transaction_count(account.address)}
    )
    tx_hash = w3.eth.send_raw_transaction(account.sign_transaction(tx).raw_transaction)
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash)
    (event,) = token.events.Transfer().process_receipt(receipt)
    assert event["args"]["value"] == 5

    counter_code = compile_file(CONTRACTS / "Counter.vy")
    counter = deploy(w3, counter_code, 9, account=account.key.hex())  # a private key works too
    again = contract_at(w3, counter_code, counter.address.lower())
    assert again.functions.count().call() == 9
    assert w3.eth.get_code(counter.address).to_0x_hex() == counter_code.deployed_bytecode


def test_deploy_reports_a_reverting_constructor(w3_and_account: tuple[Any, Any]) -> None:
    w3, account = w3_and_account
    guarded = compile_file(CONTRACTS / "Guarded.sol")
    with pytest.raises(DeployError, match="constructor of Guarded reverts: .*refused to deploy"):
        deploy(w3, guarded, True, account=account)
    with pytest.raises(DeployError, match=r"deployment of Guarded reverted in transaction 0x"):
        deploy(w3, guarded, True, account=account, gas=300_000)
    with pytest.raises(DeployError, match="a LocalAccount or a 32-byte private key"):
        deploy(w3, guarded, False, account="0x1234")
