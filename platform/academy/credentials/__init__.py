"""Certificates: W3C Verifiable Credentials 2.0 / Open Badges 3.0, signed with eddsa-jcs-2022 and
eddsa-rdfc-2022, batch-anchored on the academy ledger, revocable through Bitstring Status Lists,
verifiable offline.

Modules, from the bottom up: ``jcs`` (canonical JSON), ``keys`` (Ed25519 issuer keys and their
history), ``did`` (the issuer's did:web and its DID document), ``credential`` (the Open Badges
document and the pinned contexts), ``rdfc`` (RDF Dataset Canonicalization with pinned contexts
only), ``proofs`` (Data Integrity proofs), ``merkle`` (batch trees), ``statuslist``, ``ledger``
(the registry contract on minichain and the signed ledger evidence), ``verify`` (every check,
named, with its outcome).
"""
