"""Compile a learner's Solidity or Vyper, deploy it on a fresh in-process EVM, test it, attack it.

:class:`Chain` is a brand-new EVM (py-evm through eth-tester, Cancun rules, ten funded accounts
with names) for each check: no node, no network, nothing shared with another submission. Its
helpers return plain data the checker reads back from the EVM state itself (balances, storage
values, receipts), so what decides a grade is the chain's state, not anything learner Python
code says about it. Every failure is an ``AssertionError`` with one line: a compile error with
its file:line:column, a revert with its reason, a balance that is not what the test wanted.

Behaviour test (hidden cell; ``token_source`` is the learner's Solidity text)::

    from grader.checks.contracts import Chain
    chain = Chain()
    token = chain.deploy(token_source, "Token", 1000, sender="alice")
    chain.transact(token, "transfer", chain.address("bob"), 10, sender="alice")
    chain.assert_call(token, "balanceOf", chain.address("bob"), expect=10)
    chain.assert_reverts(token, "transfer", chain.address("bob"), 10**6, sender="carol")
    chain.assert_gas_at_most("Token.transfer", 60_000)

Exploit test (the learner wrote an attacker contract against the instructor's vulnerable Vault)::

    chain = Chain()
    vault = chain.deploy(VAULT_SOURCE, "Vault", sender="deployer", value=10**18)
    attacker = chain.deploy(attack_source, "Attacker", vault.address, sender="attacker")
    chain.transact(attacker, "attack", sender="attacker", value=10**17)
    chain.assert_balance(vault.address, 0, "the vault still holds ether")
    chain.assert_call(vault, "owner", expect=chain.address("attacker"))

``chain.gas_report()`` is ``{"Contract.function": {"calls", "min", "max", "mean"}}`` for every
transaction sent through :meth:`Chain.transact` and :meth:`Chain.deploy` (as ``Contract.<deploy>``).

Compiling inside the grading sandbox: Vyper compiles in-process. Solidity runs solc-js in a
Node.js child process; under the sandbox's address-space limit labs.minichain.contracts starts it
with ``--disable-wasm-trap-handler`` and the sandbox's read-only view includes ``node_modules``.
A cold compile costs about 3-4 s per submission (loading solc-js); contracts that are the same for
every learner (a victim, a token to attack) can be compiled once outside and shipped as a JSON
artifact beside the notebook: ``compile_contract(...).to_json()`` when preparing the assignment,
``Chain.deploy(CompiledContract.from_json(json.load(fh)), ...)`` in the hidden cell. Add
``grader.checks.contracts`` to ``CHAINACADEMY_SANDBOX_PRELOAD`` so web3 is imported once in the
warm parent instead of once per submission.
"""

from __future__ import annotations

import contextlib
import statistics
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from grader.checks.messages import say
from labs.minichain.contracts import (
    CompiledContract,
    ContractError,
    compile_solidity,
    compile_vyper,
)

if TYPE_CHECKING:  # eth_typing comes with web3, which only a Chain loads
    from eth_typing import ChecksumAddress

__all__ = ["ACCOUNT_NAMES", "Chain", "CompiledContract", "compile_contract"]

ACCOUNT_NAMES = (
    "deployer",
    "alice",
    "bob",
    "carol",
    "attacker",
    "victim",
    "dave",
    "erin",
    "frank",
    "grace",
)
"""The funded accounts of a fresh :class:`Chain`, by name (1,000,000 ether each)."""


def _language(source: str) -> str:
    text = source.lstrip()
    if "pragma solidity" in source or "contract " in text and "{" in text:
        return "solidity"
    return "vyper"


def compile_contract(
    source: str | Mapping[str, str], name: str | None = None, *, language: str | None = None
) -> CompiledContract:
    """Compile Solidity (text or ``{file: text}``) or Vyper text; AssertionError on errors.

    ``language`` is guessed when omitted (``pragma solidity`` or ``contract X {`` means Solidity).
    """
    files: str | dict[str, str]
    if isinstance(source, Mapping):
        files = {str(k): _text(v, f"source file {k!r}") for k, v in source.items()}
        lang = language or "solidity"
    else:
        files = _text(source, say("the_contract_source"))
        lang = language or _language(files)
    try:
        if lang == "solidity":
            return compile_solidity(files, contract=name)
        if lang == "vyper":
            if not isinstance(files, str):
                raise AssertionError(say("vyper_one_text"))
            return compile_vyper(files, name=name or "Contract")
    except ContractError as exc:
        raise AssertionError(say("does_not_compile", error=str(exc).splitlines()[0])) from None
    raise ValueError(f"unknown language {lang!r}: use 'solidity' or 'vyper'")


def _text(value: Any, what: str) -> str:
    if type(value) is not str:
        raise AssertionError(say("must_be_text", what=what, kind=type(value).__name__))
    return str.__str__(value)


class Chain:
    """A fresh in-process EVM with named funded accounts, a deploy/transact API and a gas report."""

    def __init__(self) -> None:
        from eth_tester import EthereumTester, PyEVMBackend
        from web3 import EthereumTesterProvider, Web3

        self.backend = PyEVMBackend()
        self.w3 = Web3(EthereumTesterProvider(EthereumTester(self.backend)))
        accounts = self.w3.eth.accounts
        self.accounts: dict[str, ChecksumAddress] = dict(zip(ACCOUNT_NAMES, accounts, strict=False))
        self._gas: dict[str, list[int]] = {}

    # -- accounts and state (plain data read from the EVM) ---------------------------------------
    def address(self, who: str) -> ChecksumAddress:
        """The checksummed address of a named account (or an address, checked and returned)."""
        if who in self.accounts:
            return self.accounts[who]
        if self.w3.is_address(who):
            return self.w3.to_checksum_address(who)
        raise ValueError(f"unknown account {who!r}: use one of {', '.join(ACCOUNT_NAMES)}")

    def balance(self, who: str) -> int:
        """Wei held by an account name or address, read from the EVM state."""
        return int(self.w3.eth.get_balance(self.address(who)))

    def storage(self, address: str, slot: int) -> int:
        """One raw storage slot of a contract, as an int."""
        raw = self.w3.eth.get_storage_at(self.address(address), slot)
        return int.from_bytes(bytes(raw), "big")

    # -- deploy and transact ---------------------------------------------------------------------
    def deploy(
        self,
        contract: str | Mapping[str, str] | CompiledContract,
        name: str | None = None,
        *args: Any,
        sender: str = "deployer",
        value: int = 0,
        language: str | None = None,
    ) -> Any:
        """Compile (unless given compiled) and deploy; returns the web3 contract object."""
        compiled = (
            contract
            if isinstance(contract, CompiledContract)
            else compile_contract(contract, name, language=language)
        )
        factory = self.w3.eth.contract(abi=compiled.abi, bytecode=compiled.bytecode)
        tx = {"from": self.address(sender), "value": int(value)}
        try:
            tx_hash = factory.constructor(*args).transact(tx)
        except Exception as exc:  # noqa: BLE001 - a revert or bad constructor arguments
            raise AssertionError(
                say("deploy_failed", name=compiled.name, reason=_reason(exc))
            ) from None
        receipt = self.w3.eth.get_transaction_receipt(tx_hash)
        if receipt["status"] != 1:
            raise AssertionError(say("deploy_reverted", name=compiled.name))
        self._gas.setdefault(f"{compiled.name}.<deploy>", []).append(int(receipt["gasUsed"]))
        address = receipt["contractAddress"]
        if address is None:  # a successful creation always has one; web3 types it optional
            raise AssertionError(say("deploy_no_address", name=compiled.name))
        deployed = self.w3.eth.contract(address=address, abi=compiled.abi)
        # web3's Contract declares no contract_name; the label helpers below read it if present.
        vars(deployed)["contract_name"] = compiled.name
        return deployed

    def transact(
        self, contract: Any, function: str, *args: Any, sender: str = "deployer", value: int = 0
    ) -> dict[str, Any]:
        """Send one transaction calling ``function``; AssertionError naming the revert reason.

        Returns the receipt as a plain dict (status, gasUsed, logs, ...).
        """
        fn = self._function(contract, function, args)
        try:
            tx_hash = fn.transact({"from": self.address(sender), "value": int(value)})
        except Exception as exc:  # noqa: BLE001
            label = self._label(contract, function)
            raise AssertionError(say("call_failed", label=label, reason=_reason(exc))) from None
        receipt: dict[str, Any] = dict(self.w3.eth.get_transaction_receipt(tx_hash))
        if receipt["status"] != 1:
            raise AssertionError(say("call_reverted", label=self._label(contract, function)))
        self._gas.setdefault(self._label(contract, function), []).append(int(receipt["gasUsed"]))
        return receipt

    def call(self, contract: Any, function: str, *args: Any, sender: str = "deployer") -> Any:
        """Call a view function; the result as plain data (ints, str, bytes, lists)."""
        fn = self._function(contract, function, args)
        try:
            return _plain(fn.call({"from": self.address(sender)}))
        except Exception as exc:  # noqa: BLE001
            label = self._label(contract, function)
            raise AssertionError(say("call_failed", label=label, reason=_reason(exc))) from None

    def send_ether(self, to: str, value: int, *, sender: str = "deployer") -> dict[str, Any]:
        """A plain value transfer (to an account or a contract's receive/fallback)."""
        from web3.types import Wei  # web3 is loaded: this Chain's w3 is a Web3

        try:
            tx_hash = self.w3.eth.send_transaction(
                {"from": self.address(sender), "to": self.address(to), "value": Wei(int(value))}
            )
        except Exception as exc:  # noqa: BLE001
            raise AssertionError(
                say("send_failed", value=value, to=to, reason=_reason(exc))
            ) from None
        return dict(self.w3.eth.get_transaction_receipt(tx_hash))

    # -- assertions ------------------------------------------------------------------------------
    def assert_call(
        self, contract: Any, function: str, *args: Any, expect: Any, message: str | None = None
    ) -> None:
        """``contract.function(*args)`` must return ``expect`` (addresses compare case-blind)."""
        got = self.call(contract, function, *args)
        if _norm(got) != _norm(_plain(expect)):
            shown = ", ".join(repr(a) for a in args)
            call = f"{self._label(contract, function)}({shown})"
            raise AssertionError(
                message or say("call_returned", call=call, got=repr(got), want=repr(expect))
            )

    def assert_balance(self, who: str, expect: int, message: str | None = None) -> None:
        """The account or contract must hold exactly ``expect`` wei."""
        got = self.balance(who)
        if got != expect:
            raise AssertionError(message or say("balance", who=who, got=got, want=expect))

    def assert_reverts(
        self,
        contract: Any,
        function: str,
        *args: Any,
        sender: str = "deployer",
        value: int = 0,
        reason: str | None = None,
    ) -> None:
        """The transaction must revert (with ``reason`` in its message, when given)."""
        label = self._label(contract, function)
        try:
            self.transact(contract, function, *args, sender=sender, value=value)
        except AssertionError as exc:
            if reason is not None and reason not in str(exc):
                raise AssertionError(
                    say("reverted_other_reason", label=label, reason=repr(reason), error=exc)
                ) from None
            return
        raise AssertionError(say("should_revert", label=label, sender=sender))

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[None]:
        """Run a block of calls, then put the whole chain state back (try an attack, undo it)."""
        snap = self.backend.take_snapshot()
        try:
            yield
        finally:
            self.backend.revert_to_snapshot(snap)

    # -- gas ---------------------------------------------------------------------------------------
    def gas_report(self) -> dict[str, dict[str, float]]:
        """Gas used per ``Contract.function`` over every transaction sent so far."""
        return {
            key: {
                "calls": len(used),
                "min": min(used),
                "max": max(used),
                "mean": round(statistics.fmean(used), 1),
            }
            for key, used in sorted(self._gas.items())
        }

    def assert_gas_at_most(self, key: str, limit: int) -> None:
        """Every recorded ``Contract.function`` transaction used at most ``limit`` gas."""
        used = self._gas.get(key)
        if not used:
            raise AssertionError(say("no_gas_known", key=key))
        if max(used) > limit:
            raise AssertionError(say("too_much_gas", key=key, used=max(used), limit=limit))

    # -- helpers -----------------------------------------------------------------------------------
    def _function(self, contract: Any, function: str, args: tuple[Any, ...]) -> Any:
        try:
            fn = contract.get_function_by_name(function)
        except Exception:  # noqa: BLE001 - web3 raises several kinds for a missing name
            names = sorted({f["name"] for f in contract.abi if f.get("type") == "function"})
            raise AssertionError(
                say(
                    "no_such_function",
                    contract=getattr(contract, "contract_name", None) or say("the_contract"),
                    function=repr(function),
                    names=", ".join(names) or say("none"),
                )
            ) from None
        try:
            return fn(*args)
        except Exception as exc:  # noqa: BLE001 - wrong argument count or types
            label = self._label(contract, function)
            raise AssertionError(
                say("bad_arguments", label=label, args=repr(args), reason=_reason(exc))
            ) from None

    @staticmethod
    def _label(contract: Any, function: str) -> str:
        return f"{getattr(contract, 'contract_name', 'contract')}.{function}"


def _reason(exc: BaseException) -> str:
    message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return " ".join(str(message).split())[:300]


def _plain(value: Any) -> Any:
    if isinstance(value, bool | int | str | bytes | type(None)):
        return type(value).__mro__[-2](value) if type(value) not in (bool, type(None)) else value
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def _norm(value: Any) -> Any:
    """Addresses compare case-insensitively; everything else as is."""
    if isinstance(value, str) and value.startswith("0x") and len(value) == 42:
        return value.lower()
    if isinstance(value, list):
        return [_norm(v) for v in value]
    return value
