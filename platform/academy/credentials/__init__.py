"""Certificates: W3C Verifiable Credentials 2.0 / Open Badges 3.0, signed with eddsa-jcs-2022,
batch-anchored on the academy ledger, revocable through Bitstring Status Lists, verifiable offline.

Modules, from the bottom up: ``jcs`` (canonical JSON), ``keys`` (Ed25519 issuer keys and their
history), ``did`` (the issuer's did:web and its DID document), ``proofs`` (Data Integrity proofs),
``merkle`` (batch trees), ``statuslist``, ``credential`` (the Open Badges document), ``ledger``
(the registry contract on minichain and the signed ledger evidence), ``verify`` (every check,
named, with its outcome).
"""
