"""permissionedWithKey members: public keys that their org's admins register on chain.

An org's admins are its trust roots (their public keys in ``bc1.yml``), fixed by the chain
configuration. Any other key counts only once an admin of its org has added it with
``PUBKEY_MANAGE``/``PUBKEY_ADD`` (as client, light, common or consensus), and until one deletes
it with ``PUBKEY_DELETE``; both need the endorsements the resource's policy asks for, where SELF
names the org the key belongs to. The registry sits in the storage of the chain's registry
account, so every validator reads the same answer at the same height and the state root covers it.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from eth.abc import StateAPI
from eth_typing import Address
from eth_utils import keccak

from . import keys
from .auth import VERIFY_FAILED, AuthError, Signer, Verifier
from .chainconfig import KEY_MODE

PUBKEY_MANAGE = "PUBKEY_MANAGE"
METHODS = ("PUBKEY_ADD", "PUBKEY_DELETE")
ROLES = ("client", "light", "common", "consensus")


class Refused(ValueError):
    """A PUBKEY_MANAGE request that cannot run: a ChainMaker status name and why."""

    def __init__(self, status: str, message: str) -> None:
        super().__init__(message)
        self.status = status


def _slot(org_id: str, key: keys.MemberKey) -> int:
    return int.from_bytes(keccak(b"pubkey\0" + org_id.encode() + b"\0" + key.id), "big")


def _owner_slot(key: keys.MemberKey) -> int:
    """Which org holds a key (keccak of its id): a key belongs to one org at a time."""
    return int.from_bytes(keccak(b"pubkey-org\0" + key.id), "big")


def _org_word(org_id: str) -> int:
    return int.from_bytes(keccak(org_id.encode()), "big")


def registered_role(state: StateAPI, registry: Address, org_id: str, key: keys.MemberKey) -> str:
    """The role ``key`` was registered with in ``org_id``, or "" when it is not registered."""
    value = state.get_storage(registry, _slot(org_id, key))
    return ROLES[value - 1] if 1 <= value <= len(ROLES) else ""


def standing(state: StateAPI, registry: Address, signer: Signer) -> Signer:
    """``signer`` with its role: an admin as the trust roots say, any other key as registered."""
    if signer.role == "admin":
        return signer
    role = registered_role(state, registry, signer.org_id, signer.key)
    if not role:
        raise AuthError(
            f"{VERIFY_FAILED}, the signer's public key is not registered in {signer.org_id}: "
            "an admin of the org adds it with PUBKEY_MANAGE PUBKEY_ADD"
        )
    return replace(signer, role=role)


def _params(payload: Any) -> dict[str, bytes]:
    return {kv.key: bytes(kv.value) for kv in payload.parameters}


def _target(verifier: Verifier, payload: Any) -> tuple[str, keys.MemberKey]:
    if verifier.config.auth_type != KEY_MODE:
        raise Refused(
            "INVALID_CONTRACT_PARAMETER_METHOD",
            f"PUBKEY_MANAGE serves permissionedWithKey chains; this one is "
            f"{verifier.config.auth_type}",
        )
    if payload.method not in METHODS:
        raise Refused(
            "INVALID_CONTRACT_PARAMETER_METHOD",
            f"PUBKEY_MANAGE method {payload.method!r} is not supported: use {' or '.join(METHODS)}",
        )
    params = _params(payload)
    org_id = params.get("org_id", b"").decode(errors="replace")
    if org_id not in verifier.admin_keys:
        raise Refused("INVALID_PARAMETER", f"org_id {org_id!r} is not an org of this chain")
    try:
        key = keys.from_pem(params.get("pubkey", b""))
    except ValueError as exc:
        raise Refused("INVALID_PARAMETER", f"pubkey is not a PEM ECDSA or SM2 key: {exc}") from None
    return org_id, key


def check_endorsed(verifier: Verifier, request: Any, payload_bytes: bytes, sender: Signer) -> None:
    """Raise AuthError unless the endorsements satisfy the method's policy for the key's org."""
    try:
        org_id, _ = _target(verifier, request.payload)
    except Refused as exc:
        raise AuthError(f"{VERIFY_FAILED}, {exc}") from None
    resource = f"{PUBKEY_MANAGE}-{request.payload.method}"
    verifier.endorsed(resource, request, payload_bytes, replace(sender, org_id=org_id))


def manage(
    state: StateAPI,
    registry: Address,
    verifier: Verifier,
    request: Any,
    payload_bytes: bytes,
    sender: Signer,
) -> bytes:
    """Run PUBKEY_ADD or PUBKEY_DELETE on ``state``; returns the result bytes. Raises Refused,
    or AuthError when the endorsements fall short."""
    payload = request.payload
    org_id, key = _target(verifier, payload)
    check_endorsed(verifier, request, payload_bytes, sender)
    admin_of = [org for org, ids in verifier.admin_keys.items() if key.id in ids]
    if admin_of:
        raise Refused(
            "INVALID_PARAMETER",
            f"the key is an admin of {admin_of[0]} (admins are the orgs' trust roots)",
        )
    owner = state.get_storage(registry, _owner_slot(key))
    if payload.method == "PUBKEY_ADD" and owner not in (0, _org_word(org_id)):
        raise Refused(
            "INVALID_PARAMETER",
            "the key is registered in another org: an admin there deletes it first",
        )
    slot = _slot(org_id, key)
    if payload.method == "PUBKEY_ADD":
        role = _params(payload).get("role", b"").decode(errors="replace").lower()
        role = role.removeprefix("role.")
        if role not in ROLES:
            raise Refused(
                "INVALID_PARAMETER",
                f"role {role!r} cannot be registered: use one of {', '.join(ROLES)} "
                "(admins are added as trust roots)",
            )
        value = ROLES.index(role) + 1
    else:
        if not registered_role(state, registry, org_id, key):
            raise Refused("INVALID_PARAMETER", f"the key is not registered in {org_id}")
        value = 0
    if state.get_nonce(registry) == 0:
        state.set_nonce(registry, 1)  # never an "empty" account that EIP-161 could drop
    state.set_storage(registry, slot, value)
    state.set_storage(registry, _owner_slot(key), _org_word(org_id) if value else 0)
    return key.address.hex().encode()
