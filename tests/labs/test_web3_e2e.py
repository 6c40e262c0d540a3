"""Unmodified web3.py and titanoboa against a real minichain node: contracts, events, reverts."""

from __future__ import annotations

from pathlib import Path

import pytest
from eth_account import Account
from web3.exceptions import ContractLogicError

from labs.minichain.contracts import compile_file, compile_vyper, deploy

from .netharness import Net

CONTRACTS = Path(__file__).parent / "contracts"


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    n = Net(tmp_path_factory.mktemp("e2e") / "chain", nodes=1, consensus="solo")
    yield n
    n.stop()


def test_erc20_from_solc_js_transfer_and_events(net: Net) -> None:
    w3 = net.w3()
    owner = Account.from_key(net.accounts[0]["private_key"])
    other = net.accounts[1]["address"]
    token_artifact = compile_file(CONTRACTS / "Token.sol", contract="Token")
    token = deploy(w3, token_artifact, "Lab Token", "LAB", 10**24, account=owner)
    assert w3.eth.get_code(token.address) == bytes.fromhex(token_artifact.deployed_bytecode[2:])
    start_block = w3.eth.block_number + 1  # after the deployment (its mint is a Transfer too)

    tx = token.functions.transfer(other, 12345).build_transaction(
        {"from": owner.address, "nonce": w3.eth.get_transaction_count(owner.address)}
    )
    signed = owner.sign_transaction(tx)
    receipt = w3.eth.wait_for_transaction_receipt(
        w3.eth.send_raw_transaction(signed.raw_transaction), 30
    )
    assert receipt.status == 1
    assert token.functions.balanceOf(other).call() == 12345

    logs = token.events.Transfer().get_logs(from_block=start_block)
    assert [(e.args["from"], e.args["to"], e.args["value"]) for e in logs] == [
        (owner.address, other, 12345)
    ]
    # The raw eth_getLogs filter by topic finds the same log.
    raw = w3.eth.get_logs(
        {
            "fromBlock": start_block,
            "address": token.address,
            "topics": [w3.keccak(text="Transfer(address,address,uint256)")],
        }
    )
    assert len(raw) == 1 and raw[0]["transactionHash"] == receipt.transactionHash

    with pytest.raises(ContractLogicError, match="transfer amount exceeds balance"):
        token.functions.transfer(owner.address, 12346).call({"from": other})


def test_vyper_contract_and_revert_reason(net: Net) -> None:
    w3 = net.w3()
    owner = Account.from_key(net.accounts[2]["private_key"])
    counter = deploy(w3, compile_file(CONTRACTS / "Counter.vy"), 5, account=owner)
    before = w3.eth.block_number
    tx = counter.functions.bump(2).build_transaction(
        {"from": owner.address, "nonce": w3.eth.get_transaction_count(owner.address)}
    )
    w3.eth.wait_for_transaction_receipt(
        w3.eth.send_raw_transaction(owner.sign_transaction(tx).raw_transaction), 30
    )
    events = counter.events.Bumped().get_logs(from_block=before)
    assert len(events) == 1
    assert counter.functions.count().call() == 7

    guarded = compile_file(CONTRACTS / "Guarded.sol")
    g = deploy(w3, guarded, False, account=owner)
    stranger = net.accounts[3]["address"]
    with pytest.raises(ContractLogicError) as info:
        g.functions.set(7).call({"from": stranger})
    assert "Guarded: caller is not the owner" in str(info.value)


def test_titanoboa_network_mode(net: Net) -> None:
    import boa

    source = """
value: public(uint256)
event Stored:
    v: uint256

@external
def store(v: uint256):
    assert v != 13, "unlucky number"
    self.value = v
    log Stored(v=v)
"""
    compile_vyper(source)  # the same compiler the chain's Vyper labs use
    with _network(net) as env:
        c = boa.loads(source)
        c.store(42)
        assert c.value() == 42
        assert env is not None
        with boa.reverts("unlucky number"):
            c.store(13)


class _network:
    """Point titanoboa at the node for the duration of a block, then restore its default env."""

    def __init__(self, net: Net) -> None:
        self.net = net

    def __enter__(self):
        import boa
        from boa.network import NetworkEnv
        from boa.rpc import EthereumRPC

        self.saved = boa.env
        env = NetworkEnv(EthereumRPC(self.net.url(0)))
        env.add_account(Account.from_key(self.net.accounts[4]["private_key"]), force_eoa=True)
        boa.set_env(env)
        return env

    def __exit__(self, *exc):
        import boa

        boa.set_env(self.saved)
