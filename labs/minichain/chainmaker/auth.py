"""Who signed a ChainMaker request, and whether the chain's policies let them.

A request is signed over its payload's bytes by the sender and, for governed resources (a user
contract's lifecycle), by endorsers. A signer counts only with a certificate issued by the CA of
the org it names, in the chain's trust roots, and a signature that verifies against that
certificate's key. Policies count orgs, not signatures: three endorsements by one org's admins
are one org. The checks are pure functions of the request and the chain configuration, so every
validator reaches the same verdict when it executes a block.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from functools import cached_property
from typing import Any

from cryptography import x509
from cryptography.x509.oid import NameOID
from eth_utils import keccak

from . import keys, pb
from .chainconfig import CERT_MODE, ChainMakerConfig, Policy
from .keys import MemberKey

VERIFY_FAILED = "tx verify failed"
MEMBER_CACHE = 4096


class AuthError(ValueError):
    """A signer or an endorsement set does not pass; the message follows ChainMaker's wording
    (``tx verify failed, ...``), which the SDK turns into its own exception classes."""


@dataclass(frozen=True)
class Signer:
    org_id: str
    role: str
    key: MemberKey
    cert: x509.Certificate | None = None
    """The sign certificate (permissionedWithCert); None for a member known by its key alone."""
    issuer: x509.Certificate | None = None

    @property
    def address(self) -> bytes:
        """The EVM address of the signer: keccak of the public key point, last 20 bytes."""
        return self.key.address


def contract_address(name: str) -> bytes:
    """ChainMaker's EVM address of a user contract: keccak of its name, last 20 bytes."""
    return keccak(name.encode())[12:]


def field_bytes(message: bytes, number: int) -> bytes | None:
    """The raw bytes of length-delimited field ``number`` at the top of a protobuf message.

    Signatures cover the payload exactly as the client serialised it; re-serialising a parsed
    payload could differ (unknown fields), so the verifier reads the bytes off the wire.
    """
    i, n = 0, len(message)

    def varint() -> int:
        nonlocal i
        shift = value = 0
        while True:
            if i >= n or shift > 63:
                raise ValueError("truncated varint")
            b = message[i]
            i += 1
            value |= (b & 0x7F) << shift
            if not b & 0x80:
                return value
            shift += 7

    found = None
    while i < n:
        key = varint()
        wire = key & 7
        if wire == 0:
            varint()
        elif wire == 1:
            i += 8
        elif wire == 5:
            i += 4
        elif wire == 2:
            size = varint()
            if i + size > n:
                raise ValueError("truncated field")
            if key >> 3 == number:
                found = message[i : i + size]
            i += size
        else:
            raise ValueError(f"unsupported wire type {wire}")
    if i != n:
        raise ValueError("truncated message")
    return found


class Verifier:
    """The trust roots and policies of one chain configuration, parsed once."""

    def __init__(self, config: ChainMakerConfig) -> None:
        self.config = config
        self._members: dict[tuple[int, str, bytes], Signer] = {}

    @cached_property
    def roots(self) -> dict[str, list[x509.Certificate]]:
        """The orgs' CA certificates (permissionedWithCert; other modes have none)."""
        out: dict[str, list[x509.Certificate]] = {}
        if self.config.auth_type != CERT_MODE:
            return out
        for root in self.config.trust_roots:
            out[root.org_id] = [x509.load_pem_x509_certificate(p.encode()) for p in root.root]
        return out

    @cached_property
    def admin_keys(self) -> dict[str, set[bytes]]:
        """The orgs' admin keys (permissionedWithKey, Public): their trust roots are public keys."""
        out: dict[str, set[bytes]] = {}
        if self.config.auth_type == CERT_MODE:
            return out
        for root in self.config.trust_roots:
            out[root.org_id] = {keys.from_pem(p.encode()).id for p in root.root}
        return out

    def signer(self, entry: Any, payload_bytes: bytes) -> Signer:
        """Check one EndorsementEntry (sender or endorser) against the trust roots."""
        member = entry.signer
        cache_key = (int(member.member_type), member.org_id, bytes(member.member_info))
        signer = self._members.get(cache_key)
        if signer is None:
            signer = self._member(member)
            if len(self._members) >= MEMBER_CACHE:
                self._members.clear()
            self._members[cache_key] = signer
        if not signer.key.verify(bytes(entry.signature), payload_bytes):
            who = _cn(signer.cert) if signer.cert is not None else f"a key of {signer.org_id}"
            raise AuthError(f"{VERIFY_FAILED}, the signature of {who} does not match the payload")
        return signer

    def _member(self, member: Any) -> Signer:
        """Who a member names, once per member: the checks that do not depend on the request
        are a pure function of the chain configuration."""
        wanted = "CERT" if self.config.auth_type == CERT_MODE else "PUBLIC_KEY"
        if member.member_type != pb.MemberType.Value(wanted):
            raise AuthError(
                f"{VERIFY_FAILED}, member type {member.member_type} is not supported on a "
                f"{self.config.auth_type} chain: sign with member type {wanted} "
                f"(auth_type: {self.config.auth_type} in sdk_config.yml)"
            )
        if wanted == "PUBLIC_KEY":
            return self._key_member(member.org_id, bytes(member.member_info))
        return self._cert_member(member.org_id, bytes(member.member_info))

    def _key_member(self, org_id: str, pem: bytes) -> Signer:
        try:
            key = keys.from_pem(pem)
        except ValueError as exc:
            raise AuthError(
                f"{VERIFY_FAILED}, the signer's public key is unreadable: {exc}"
            ) from None
        admins = self.admin_keys.get(org_id)
        if admins is None:
            raise AuthError(f"{VERIFY_FAILED}, org {org_id!r} is not in the trust roots")
        # a member that is no admin gets its role from the chain's registry (executor)
        return Signer(org_id, "admin" if key.id in admins else "", key)

    def _cert_member(self, org_id: str, pem: bytes) -> Signer:
        cas = self.roots.get(org_id)
        if not cas:
            raise AuthError(f"{VERIFY_FAILED}, org {org_id!r} is not in the trust roots")
        try:
            cert = x509.load_pem_x509_certificate(pem)
        except ValueError as exc:
            raise AuthError(f"{VERIFY_FAILED}, the signer's certificate is unreadable") from exc
        issuer = next((ca for ca in cas if keys.issued_by(cert, ca)), None)
        if issuer is None:
            raise AuthError(
                f"{VERIFY_FAILED}, the certificate of {_cn(cert)} was not issued by a CA of "
                f"{org_id} (unknown CA)"
            )
        orgs = cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
        if not orgs or orgs[0].value != org_id:
            raise AuthError(f"{VERIFY_FAILED}, the certificate names another org")
        try:
            key = keys.from_certificate(cert)
        except ValueError:
            raise AuthError(f"{VERIFY_FAILED}, only ECDSA and SM2 signers are supported") from None
        ous = cert.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)
        role = str(ous[0].value).lower() if ous else ""
        return Signer(org_id, role, key, cert, issuer)

    def sender(self, request: Any, payload_bytes: bytes) -> Signer:
        if not request.HasField("sender"):
            raise AuthError(f"{VERIFY_FAILED}, the request has no sender")
        return self.signer(request.sender, payload_bytes)

    def endorsed(
        self,
        resource: str,
        request: Any,
        payload_bytes: bytes,
        sender: Signer,
        self_org: str | None = None,
    ) -> None:
        """Raise unless the request's endorsements satisfy ``resource``'s policy. ``self_org`` is
        the org a SELF rule means when the request acts on an org (its trust root, its node
        ids) rather than on the sender's own."""
        policy = self.config.policy(resource)
        if policy is None:
            return
        rule = policy.rule.upper()
        if rule == "FORBIDDEN":
            raise AuthError(f"{VERIFY_FAILED}, {resource} is forbidden to access")
        if not request.endorsers:
            raise AuthError(f"{VERIFY_FAILED}, {resource}: endorsement is nil")
        orgs: set[str] = set()
        for entry in request.endorsers:
            try:
                who = self.signer(entry, payload_bytes)
            except AuthError as exc:
                raise AuthError(f"{VERIFY_FAILED}, refine endorsements failed: {exc}") from None
            if _counts(policy, who):
                orgs.add(who.org_id)
        needed = self.needed(policy, sender, self_org)
        enough = needed <= orgs if isinstance(needed, set) else len(orgs) >= needed
        if not enough:
            raise AuthError(
                f"{VERIFY_FAILED}, {resource} ({policy.rule} of "
                f"{', '.join(policy.role_list) or 'any role'}): not enough participants, "
                f"{len(orgs)} org(s) endorsed: {', '.join(sorted(orgs)) or 'none'}"
            )

    def needed(self, policy: Policy, sender: Signer, self_org: str | None = None) -> int | set[str]:
        """How many distinct orgs, or which orgs exactly, a rule asks for."""
        scope = policy.org_list or self.config.orgs()
        total = len(scope)
        rule = policy.rule.upper()
        if rule == "ANY":
            return 1
        if rule == "MAJORITY":
            return total // 2 + 1
        if rule == "ALL":
            return set(scope)
        if rule == "SELF":
            return {self_org or sender.org_id}
        try:
            share = Fraction(rule[:-1]) / 100 if rule.endswith("%") else Fraction(rule)
        except (ValueError, ZeroDivisionError):
            raise AuthError(f"{VERIFY_FAILED}, policy rule {policy.rule!r} is unknown") from None
        need = share * total
        return max(1, int(need) + (0 if need.denominator == 1 else 1))


def _counts(policy: Policy, who: Signer) -> bool:
    if policy.role_list and who.role not in {r.lower() for r in policy.role_list}:
        return False
    return not policy.org_list or who.org_id in policy.org_list


def issuing_ca(verifier: Verifier, cert: x509.Certificate) -> x509.Certificate | None:
    """The trusted CA (of any org) that issued ``cert``."""
    for cas in verifier.roots.values():
        for ca in cas:
            if keys.issued_by(cert, ca):
                return ca
    return None


def _cn(cert: x509.Certificate) -> str:
    cns = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(cns[0].value) if cns else "the signer"
