"""Run ChainMaker requests on the chain's EVM state: user contract lifecycle, invoke and query,
and the system contracts that govern the chain (``CHAIN_CONFIG``, ``CERT_MANAGE``).

A request that entered a block is executed by every validator, and its verdict (signature,
endorsements, the contract's status) is part of what they agree on: a request that fails a check
is still recorded, with a failed result, exactly as ChainMaker records it. It is judged by the
chain configuration in force at that point of the chain (:mod:`.configstate`), which earlier
requests of the same block may have changed. Contracts live at ChainMaker's address for their
name (keccak of the name, last 20 bytes), so web3.py reaches a contract the SDK created, and the
other way round; their name, version and status sit in the storage of one registry account, so
the state root covers them too.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from eth.abc import ComputationAPI, StateAPI
from eth.constants import CREATE_CONTRACT_ADDRESS
from eth.exceptions import Revert
from eth.vm.message import Message
from eth_abi import decode as decode_abi
from eth_typing import Address
from eth_utils import keccak

from . import certmanage, pb, pubkeys
from .auth import AuthError, Signer, Verifier, contract_address, field_bytes
from .chainconfig import MAX_PAYLOAD_BYTES, ChainMakerConfig
from .chainconfig_update import CHAIN_CONFIG, UPDATES, check_sequence, target_org, updated
from .configstate import ChainConfigs
from .errors import RequestRefused, code

__all__ = ["Admitted", "Executor", "RequestRefused", "code", "governed", "params_of"]

REGISTRY = Address(keccak(b"minichain.chainmaker.contract-registry")[12:])
DEFAULT_GAS = 10_000_000
SENDER_CACHE = 100_000
CONTRACT_MANAGE = "CONTRACT_MANAGE"
LIFECYCLE = {
    "INIT_CONTRACT",
    "UPGRADE_CONTRACT",
    "FREEZE_CONTRACT",
    "UNFREEZE_CONTRACT",
    "REVOKE_CONTRACT",
}
CERT_MANAGE = certmanage.CERT_MANAGE
NORMAL, FROZEN, REVOKED = 0, 1, 2
ERROR_SELECTOR = bytes.fromhex("08c379a0")
INVOKE = pb.TxType.Value("INVOKE_CONTRACT")
QUERY = pb.TxType.Value("QUERY_CONTRACT")


@dataclass
class Admitted:
    tx_id: str
    request: Any
    payload_bytes: bytes
    sender: Signer


def params_of(payload: Any) -> dict[str, bytes]:
    return {kv.key: bytes(kv.value) for kv in payload.parameters}


class Executor:
    def __init__(self, config: ChainMakerConfig) -> None:
        self.config = config
        """The genesis configuration: what never changes (the chain id) is read here."""
        self.configs = ChainConfigs(config)
        self._senders: dict[bytes, tuple[ChainMakerConfig, Signer]] = {}
        """Senders of plain requests this node admitted, by keccak of the request, with the
        configuration they were checked under: the check is a pure function of the two, so a
        block need not repeat it while that configuration stands (only the sender's standing,
        which certificate requests change). Governed requests are checked in full again: each
        endorser's standing counts too, and they are few."""

    def at(self, state: StateAPI | None) -> tuple[ChainMakerConfig, Verifier]:
        """The configuration in force on ``state`` (the genesis one without a state)."""
        return self.configs.at(state) if state is not None else self.configs.at_genesis()

    def block_capacity(self, state: StateAPI) -> int:
        """How many ChainMaker requests the next block may carry (``block_tx_capacity``)."""
        return self.configs.config(state).block.block_tx_capacity

    # --- at the door ----------------------------------------------------------------------------

    def parse(self, raw: bytes) -> tuple[Any, bytes]:
        """The TxRequest and its payload's signed bytes, or RequestRefused(INVALID_PARAMETER)."""
        if len(raw) > MAX_PAYLOAD_BYTES:
            raise RequestRefused(
                "INVALID_PARAMETER",
                f"tx is {len(raw)} bytes, more than the {MAX_PAYLOAD_BYTES} a request may carry",
            )
        request = pb.TxRequest()
        try:
            request.ParseFromString(raw)
            payload_bytes = field_bytes(raw, 1)
        except Exception as exc:  # protobuf raises DecodeError and friends on junk
            raise RequestRefused(
                "INVALID_PARAMETER", f"the request is not a ChainMaker TxRequest: {exc}"
            ) from None
        if payload_bytes is None:
            raise RequestRefused("INVALID_PARAMETER", "the request carries no payload")
        return request, payload_bytes

    def admit(
        self, raw: bytes, now: float | None = None, state: StateAPI | None = None
    ) -> Admitted:
        """Check what every validator will check again, plus the clock: refuse early."""
        request, payload_bytes = self.parse(raw)
        payload = request.payload
        if payload.chain_id != self.config.chain_id:
            raise RequestRefused(
                "INVALID_PARAMETER",
                f"chain id {payload.chain_id!r} does not match this chain's "
                f"{self.config.chain_id!r}: set chain_id in sdk_config.yml",
            )
        if not payload.tx_id or len(payload.tx_id) > 64 or not payload.tx_id.isalnum():
            raise RequestRefused("INVALID_PARAMETER", "tx_id must be 1 to 64 letters or digits")
        config, verifier = self.at(state)
        block = config.block
        if block.tx_timestamp_verify and payload.tx_type != QUERY:
            skew = abs((now if now is not None else time.time()) - payload.timestamp)
            if skew > block.tx_timeout:
                raise RequestRefused(
                    "INVALID_PARAMETER",
                    f"tx timestamp is {int(skew)} s away from the node's clock "
                    f"(at most {block.tx_timeout} s)",
                )
        if governed(payload) == f"{CHAIN_CONFIG}-{payload.method}":
            check_sequence(config, payload)  # a stale or replayed update fails before it spreads
        try:
            sender = self._authorised(state, verifier, request, payload_bytes)
        except AuthError as exc:
            raise RequestRefused("INTERNAL_ERROR", str(exc)) from None
        if payload.tx_type != QUERY:
            if len(self._senders) >= SENDER_CACHE:
                self._senders.clear()
            if not _names_hashes(request) and governed(payload) is None:
                self._senders[keccak(raw)] = (config, sender)
        return Admitted(payload.tx_id, request, payload_bytes, sender)

    def _authorised(
        self, state: StateAPI | None, verifier: Verifier, request: Any, payload_bytes: bytes
    ) -> Signer:
        """The sender, in good standing, with the endorsements its resource asks for; an
        endorser whose certificate was frozen or revoked endorses nothing."""
        if state is not None:
            request = certmanage.resolve_hashes(state, request)
        sender = verifier.sender(request, payload_bytes)
        if state is not None:
            sender = self.check_standing(state, sender)
        payload = request.payload
        resource = governed(payload)
        if resource is not None:
            self_org = target_org(payload.method, params_of(payload))
            verifier.endorsed(resource, request, payload_bytes, sender, self_org=self_org)
            if state is not None:
                for entry in request.endorsers:
                    endorser = verifier.signer(entry, payload_bytes)
                    if endorser.cert is not None:  # a key endorses as the trust roots say
                        self.check_standing(state, endorser, "an endorser")
        if payload.contract_name == pubkeys.PUBKEY_MANAGE:
            pubkeys.check_endorsed(verifier, request, payload_bytes, sender)
        return sender

    # --- in a block -----------------------------------------------------------------------------

    def apply(self, state: StateAPI, header: Any, raw: bytes) -> tuple[str, bytes]:
        """Execute one request of a block: (tx id, serialised Result). Never raises."""
        try:
            request, payload_bytes = self.parse(raw)
        except RequestRefused as exc:
            return "", _result(exc.code, str(exc)).SerializeToString()
        payload = request.payload
        if payload.tx_type != INVOKE:
            refused = _result(
                code("INVALID_CONTRACT_TRANSACTION_TYPE"), "a block runs invokes only"
            )
            return payload.tx_id, refused.SerializeToString()
        snapshot = state.snapshot()
        try:
            result = self._run(state, header, request, payload_bytes, raw)
        except AuthError as exc:
            result = _result(code("INTERNAL_ERROR"), str(exc))
        except RequestRefused as exc:
            result = _result(exc.code, str(exc))
        except Exception as exc:  # a bug must fail this request alike on every node, not the block
            state.revert(snapshot)
            return payload.tx_id, _result(code("INTERNAL_ERROR"), repr(exc)).SerializeToString()
        if result.code != 0:
            state.revert(snapshot)
        else:
            state.commit(snapshot)
        return payload.tx_id, result.SerializeToString()

    def _run(
        self, state: StateAPI, header: Any, request: Any, payload_bytes: bytes, raw: bytes
    ) -> Any:
        payload = request.payload
        if payload.chain_id != self.config.chain_id:
            raise RequestRefused("INVALID_PARAMETER", "chain id does not match")
        config, verifier = self.configs.at(state)
        cached = self._senders.get(keccak(raw))
        if cached is not None and cached[0] is config:
            sender = self.check_standing(state, cached[1])
        else:
            sender = self._authorised(state, verifier, request, payload_bytes)
        name, method = payload.contract_name, payload.method
        params = params_of(payload)
        if name == CONTRACT_MANAGE:
            return self._manage(state, header, request, sender)
        if name == CERT_MANAGE:
            if method not in certmanage.METHODS:
                raise RequestRefused(
                    "INVALID_CONTRACT_PARAMETER_METHOD",
                    f"CERT_MANAGE method {method!r} is not supported: use one of "
                    + ", ".join(sorted(certmanage.METHODS)),
                )
            return _result(0, "OK", certmanage.manage(state, method, params, sender, verifier))
        if name == pubkeys.PUBKEY_MANAGE:
            return self._pubkeys(state, request, payload_bytes, sender, verifier)
        if name == CHAIN_CONFIG:
            self.configs.store(state, updated(config, payload, params), header.block_number)
            return _result(0, "OK")
        return self._invoke(state, header, payload, sender, persist=True)

    def query(self, state: StateAPI, header: Any, payload: Any, sender: Signer) -> Any:
        """A QUERY_CONTRACT on a user contract, on a state that is thrown away afterwards."""
        try:
            return self._invoke(state, header, payload, sender, persist=False)
        except RequestRefused as exc:
            return _result(exc.code, str(exc))

    # --- standing -----------------------------------------------------------------------------

    def check_standing(self, state: StateAPI, signer: Signer, who: str = "the signer") -> Signer:
        """Refuse a signer whose certificate was frozen or revoked on chain, or whose key no
        admin registered; returns the signer with its role on chain."""
        if signer.cert is None or signer.issuer is None:
            return pubkeys.standing(state, REGISTRY, signer)
        certmanage.check_standing(state, signer, who)
        return signer

    def _pubkeys(
        self,
        state: StateAPI,
        request: Any,
        payload_bytes: bytes,
        sender: Signer,
        verifier: Verifier,
    ) -> Any:
        try:
            done = pubkeys.manage(state, REGISTRY, verifier, request, payload_bytes, sender)
        except pubkeys.Refused as exc:
            raise RequestRefused(exc.status, str(exc)) from None
        return _result(0, "OK", done)

    # --- contracts ------------------------------------------------------------------------------

    def status(self, state: StateAPI, name: str) -> tuple[int, str] | None:
        """(status, version) of user contract ``name``, None when it was never created."""
        slot = int.from_bytes(keccak(name.encode()), "big")
        stored = state.get_storage(REGISTRY, slot)
        if stored == 0:
            return None
        version = state.get_storage(REGISTRY, (slot + 1) % 2**256).to_bytes(32, "big")
        return stored - 1, version.rstrip(b"\0").decode(errors="replace")

    def _set_status(self, state: StateAPI, name: str, status: int, version: str | None) -> None:
        if state.get_nonce(REGISTRY) == 0:
            state.set_nonce(REGISTRY, 1)  # never an "empty" account that EIP-161 could drop
        slot = int.from_bytes(keccak(name.encode()), "big")
        state.set_storage(REGISTRY, slot, status + 1)
        if version is not None:
            state.set_storage(
                REGISTRY,
                (slot + 1) % 2**256,
                int.from_bytes(version.encode()[:32].ljust(32, b"\0")),
            )

    def _manage(self, state: StateAPI, header: Any, request: Any, sender: Signer) -> Any:
        payload = request.payload
        method = payload.method
        if method not in LIFECYCLE:
            raise RequestRefused(
                "INVALID_CONTRACT_PARAMETER_METHOD",
                f"CONTRACT_MANAGE method {method!r} is not supported: use one of "
                + ", ".join(sorted(LIFECYCLE)),
            )
        params = params_of(payload)
        name = params.get("CONTRACT_NAME", b"").decode(errors="replace")
        if not name:
            raise RequestRefused("INVALID_CONTRACT_PARAMETER_CONTRACT_NAME", "no CONTRACT_NAME")
        current = self.status(state, name)
        if method in ("INIT_CONTRACT", "UPGRADE_CONTRACT"):
            runtime = params.get("CONTRACT_RUNTIME_TYPE", b"").decode(errors="replace")
            if runtime != "EVM":
                raise RequestRefused(
                    "INVALID_CONTRACT_PARAMETER_RUNTIME_TYPE",
                    f"runtime type {runtime!r} is not supported: this chain runs EVM contracts",
                )
            version = params.get("CONTRACT_VERSION", b"").decode(errors="replace")
            if not version:
                raise RequestRefused("INVALID_CONTRACT_PARAMETER_VERSION", "no CONTRACT_VERSION")
            if method == "INIT_CONTRACT" and current is not None:
                raise RequestRefused(
                    "CONTRACT_VERSION_EXIST_FAILED", f"contract {name} already exists"
                )
            if method == "UPGRADE_CONTRACT":
                if current is None:
                    raise RequestRefused("CONTRACT_FAIL", f"contract {name} does not exist")
                if current[1] == version:
                    raise RequestRefused(
                        "CONTRACT_VERSION_EXIST_FAILED", f"contract {name} is at {version} already"
                    )
            bytecode = params.get("CONTRACT_BYTECODE", b"")
            if not bytecode:
                raise RequestRefused("INVALID_CONTRACT_PARAMETER_BYTE_CODE", "no CONTRACT_BYTECODE")
            args = _hex_param(params.get("data", b""))
            address = Address(contract_address(name))
            if method == "UPGRADE_CONTRACT":
                state.set_code(address, b"")
            computation = run_message(
                state, sender.address, None, bytecode + args, _gas(payload, header), address
            )
            if computation.is_error:
                return _failed(computation, "contract initial fail")
            self._set_status(state, name, NORMAL, version)
            contract = pb.Contract(
                name=name,
                version=version,
                runtime_type=pb.RuntimeType.Value("EVM"),
                status=NORMAL,
                address=address.hex(),
                creator=pb.MemberFull(
                    org_id=sender.org_id,
                    member_type=request.sender.signer.member_type,
                    member_info=request.sender.signer.member_info,
                    role=sender.role,
                ),
            )
            return _result(0, "OK", contract.SerializeToString(), computation.get_gas_used())
        if current is None:
            raise RequestRefused("CONTRACT_FAIL", f"contract {name} does not exist")
        status, version = current
        if status == REVOKED:
            raise RequestRefused("CONTRACT_REVOKE_FAILED", f"contract {name} is revoked")
        target = {"FREEZE_CONTRACT": FROZEN, "UNFREEZE_CONTRACT": NORMAL}.get(method, REVOKED)
        if method == "FREEZE_CONTRACT" and status == FROZEN:
            raise RequestRefused("CONTRACT_FREEZE_FAILED", f"contract {name} is frozen already")
        if method == "UNFREEZE_CONTRACT" and status != FROZEN:
            raise RequestRefused("CONTRACT_FAIL", f"contract {name} is not frozen")
        self._set_status(state, name, target, None)
        contract = pb.Contract(
            name=name,
            version=version,
            runtime_type=pb.RuntimeType.Value("EVM"),
            status=target,
            address=contract_address(name).hex(),
        )
        return _result(0, "OK", contract.SerializeToString())

    def _invoke(
        self, state: StateAPI, header: Any, payload: Any, sender: Signer, persist: bool
    ) -> Any:
        name = payload.contract_name
        current = self.status(state, name)
        if current is None:
            raise RequestRefused("CONTRACT_FAIL", f"contract {name!r} does not exist")
        if current[0] == FROZEN:
            raise RequestRefused("CONTRACT_FREEZE_FAILED", f"contract {name} is frozen")
        if current[0] == REVOKED:
            raise RequestRefused("CONTRACT_REVOKE_FAILED", f"contract {name} is revoked")
        params = params_of(payload)
        data = _hex_param(params.get("data", b""))
        if not data:
            data = bytes.fromhex(payload.method) if _is_hex(payload.method, 8) else b""
        address = Address(contract_address(name))
        snapshot = None if persist else state.snapshot()
        computation = run_message(state, sender.address, address, data, _gas(payload, header), None)
        if snapshot is not None:
            state.revert(snapshot)
        if computation.is_error:
            return _failed(computation, "contract invoke failed")
        result = _result(0, "OK", computation.output, computation.get_gas_used())
        for log_address, topics, log_data in computation.get_log_entries():
            if Address(log_address) != address or not topics:
                continue
            result.contract_result.contract_event.append(
                pb.ContractEvent(
                    topic=topics[0].to_bytes(32, "big").hex(),
                    tx_id=payload.tx_id,
                    contract_name=name,
                    contract_version=current[1],
                    event_data=[t.to_bytes(32, "big").hex() for t in topics[1:]]
                    + ([bytes(log_data).hex()] if log_data else []),
                )
            )
        return result


def governed(payload: Any) -> str | None:
    """The resource whose policy a request needs endorsements for, if any."""
    name, method = payload.contract_name, payload.method
    if payload.tx_type != INVOKE:
        return None
    if (
        (name == CONTRACT_MANAGE and method in LIFECYCLE)
        or (name == CERT_MANAGE and method in certmanage.GOVERNED)
        or (name == CHAIN_CONFIG and method in UPDATES)
    ):
        return f"{name}-{method}"
    return None


def _names_hashes(request: Any) -> bool:
    """True when a signer is named by certificate hash: its certificate is looked up on chain
    again at execution (CERTS_DELETE may have removed it), so its check is not cached."""
    entries = [request.sender, *request.endorsers]
    return any(e.signer.member_type == certmanage.CERT_HASH for e in entries)


def _is_hex(text: str, length: int) -> bool:
    return len(text) == length and all(c in "0123456789abcdefABCDEF" for c in text)


def _hex_param(value: bytes) -> bytes:
    text = value.decode(errors="replace").strip()
    text = text[2:] if text[:2] in ("0x", "0X") else text
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise RequestRefused(
            "INVALID_PARAMETER", "parameter 'data' must be hex (calc_evm_method_params makes it)"
        ) from None


def _gas(payload: Any, header: Any) -> int:
    limit = payload.limit.gas_limit if payload.HasField("limit") else 0
    return min(limit or DEFAULT_GAS, header.gas_limit)


def run_message(
    state: StateAPI,
    sender: bytes,
    to: Address | None,
    data: bytes,
    gas: int,
    create_at: Address | None,
) -> ComputationAPI:
    """One EVM message as a ChainMaker request runs it: no nonce, no fee, the sender's address
    from its certificate; ``create_at`` deploys ``data`` as init code at that address."""
    context = state.get_transaction_context_class()(gas_price=0, origin=Address(sender))
    computation_class = state.computation_class
    if create_at is not None:
        message = Message(
            gas=gas,
            to=CREATE_CONTRACT_ADDRESS,
            sender=Address(sender),
            value=0,
            data=b"",
            code=data,
            create_address=create_at,
        )
        return computation_class.apply_create_message(state, message, context)
    assert to is not None
    message = Message(
        gas=gas,
        to=to,
        sender=Address(sender),
        value=0,
        data=data,
        code=state.get_code(to),
    )
    return computation_class.apply_message(state, message, context)


def _result(status: int, message: str, output: bytes = b"", gas_used: int = 0) -> Any:
    return pb.Result(
        code=status,
        message=message,
        contract_result=pb.ContractResult(
            code=0 if status == 0 else 1,
            result=output,
            message=message,
            gas_used=gas_used,
        ),
    )


def _failed(computation: ComputationAPI, what: str) -> Any:
    error = computation.error
    reason = str(error) or type(error).__name__
    output = computation.output if isinstance(error, Revert) else b""
    if isinstance(error, Revert):
        data = bytes(error.args[0]) if error.args and isinstance(error.args[0], bytes) else output
        reason = "revert"
        if data[:4] == ERROR_SELECTOR:
            try:
                reason = f"revert: {decode_abi(['string'], data[4:])[0]}"
            except Exception:  # malformed Error(string) data: report the plain word
                reason = "revert"
    return _result(code("CONTRACT_FAIL"), f"{what}: {reason}", output, computation.get_gas_used())
