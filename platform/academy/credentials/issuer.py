"""An issuing institution in memory: its key history, its status lists, its ledger registry, and
the DID document that publishes its keys and names that registry.

The pieces the platform persists in its database are exactly these; the platform's service keeps
them in rows, tests and the benchmark keep them here. Every ledger write goes through
:class:`~academy.credentials.ledger.Registry` (None: nothing is recorded, for signature-only use).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from .anchoring import Anchor, anchor_batch, sign_all
from .credential import build_credential
from .did import LedgerBinding, did_document, method_id
from .keys import IssuerKey, KeyHistory, KeyRecord, format_time
from .ledger import Registry
from .proofs import sign
from .statuslist import StatusList, random_free_index, status_entry, status_list_credential


def now_utc() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


@dataclass
class ListState:
    url: str
    purpose: str
    bits: StatusList = field(default_factory=StatusList)
    taken: set[int] = field(default_factory=set)
    signed: dict[str, Any] | None = None


class Issuer:
    """One institution issuing credentials under its own keys."""

    def __init__(
        self,
        issuer_id: str,
        name: str,
        status_base: str,
        registry: Registry | None = None,
        passphrase: bytes = b"issuer key passphrase",
    ) -> None:
        self.id = issuer_id
        self.name = name
        self.registry = registry
        self.passphrase = passphrase
        self.history = KeyHistory()
        self.lists = {
            p: ListState(f"{status_base.rstrip('/')}/{p}/1", p)
            for p in ("revocation", "suspension")
        }
        self.by_credential: dict[str, dict[str, int]] = {}

    # -- keys -------------------------------------------------------------------------------
    def add_key(self, at: dt.datetime | None = None, key: IssuerKey | None = None) -> IssuerKey:
        """Start signing with a new key from ``at`` (the current key, if any, is rotated out)."""
        at = at or now_utc()
        key = key or IssuerKey.generate()
        record = KeyRecord(key.multikey, at, encrypted_private=key.encrypt(self.passphrase))
        old = self.history.rotate(record, at)
        if self.registry is not None:
            if old is not None:
                self.registry.retire_key(self.id, old.multikey, at)
            self.registry.add_key(self.id, key.multikey, at)
        return key

    def revoke_key(self, multikey: str, at: dt.datetime | None = None) -> dt.datetime:
        """Revoke a (compromised) key from ``at`` on. Credentials the ledger anchored before
        then stay valid, so ``at`` is never earlier than the ledger's newest block: block times
        can run ahead of the wall clock (each block is at least a second after its parent)."""
        at = at or now_utc()
        if self.registry is not None:
            at = max(at, self.registry.head_time() + dt.timedelta(seconds=1))
        self.history.revoke(multikey, at)
        if self.registry is not None:
            self.registry.revoke_key(self.id, multikey, at)
        return at

    def key_at(self, at: dt.datetime) -> IssuerKey:
        record = self.history.active(at)
        if record is None or record.encrypted_private is None:
            raise ValueError(f"issuer {self.id} has no valid key at {format_time(at)}")
        return IssuerKey.decrypt(record.encrypted_private, self.passphrase)

    def profile(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name}

    def method(self, key: IssuerKey) -> str:
        """The verification method a proof by ``key`` names: a method of the issuer's DID (a
        did:key of the key itself when the issuer is not a DID)."""
        return method_id(self.id, key.multikey) if self.id.startswith("did:web:") else (
            key.verification_method
        )  # fmt: skip

    def did_document_ledgers(self) -> list[LedgerBinding]:
        """The registry the issuer's DID document names (none without a ledger)."""
        if self.registry is None:
            return []
        ident = self.registry.identity()
        return [LedgerBinding(ident["chainId"], ident["genesisHash"], ident["registry"])]

    def did_document(self) -> dict[str, Any]:
        """What the issuer publishes at its did:web address: its keys and its registry."""
        return did_document(self.id, self.history, self.did_document_ledgers())

    # -- issuing ----------------------------------------------------------------------------
    def draft(
        self,
        subject_id: str,
        identity: str,
        achievement: dict[str, Any],
        evidence: list[dict[str, Any]],
        valid_from: str,
        valid_until: str | None = None,
    ) -> dict[str, Any]:
        """An unsigned credential with a fresh random index in each status list."""
        statuses = []
        indexes = {}
        for purpose, state in self.lists.items():
            index = random_free_index(state.taken, state.bits.size)
            state.taken.add(index)
            indexes[purpose] = index
            statuses.append(status_entry(state.url, index, purpose))
        doc = build_credential(
            issuer=self.profile(),
            subject_id=subject_id,
            identity=identity,
            achievement=achievement,
            evidence=evidence,
            valid_from=valid_from,
            valid_until=valid_until,
            status=statuses,
        )
        self.by_credential[doc["id"]] = indexes
        return doc

    def issue(
        self, drafts: list[dict[str, Any]], created: dt.datetime | None = None
    ) -> list[dict[str, Any]]:
        """Sign ``drafts`` with the key valid at ``created`` and anchor them as one batch."""
        created = created or now_utc()
        stamp = format_time(created)
        key = self.key_at(created)
        signed = sign_all(drafts, key, stamp, self.method(key))
        if self.registry is None:
            return signed
        registry = self.registry
        identity = registry.identity()

        def record(root: bytes, count: int) -> Anchor:
            tx = registry.anchor(self.id, root, count)
            return Anchor(
                identity["chainId"],
                identity["genesisHash"],
                identity["registry"],
                tx.tx_hash,
                tx.block_number,
                tx.block_hash,
            )

        return anchor_batch(signed, record, stamp)

    # -- status -----------------------------------------------------------------------------
    def set_status(self, credential_id: str, purpose: str, value: bool = True) -> None:
        state = self.lists[purpose]
        index = self.by_credential[credential_id][purpose]
        state.bits.set(index, value)
        state.signed = None
        if self.registry is not None:
            self.registry.set_statuses(self.id, [(state.url, index, purpose, value)])

    def status_list(self, purpose: str, at: dt.datetime | None = None) -> dict[str, Any]:
        """The signed, current BitstringStatusListCredential of one purpose."""
        state = self.lists[purpose]
        if state.signed is None:
            at = at or now_utc()
            doc = status_list_credential(state.url, self.id, purpose, state.bits, format_time(at))
            key = self.key_at(at)
            state.signed = sign(doc, key, format_time(at), self.method(key))
        return state.signed
