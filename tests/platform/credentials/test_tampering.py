"""Tampered, misused and no-longer-valid certificates are rejected, each by the check named.

One issuer, a did:web whose DID document a loopback server publishes, on a real academy ledger
lives through a timeline: key K1 issues batch A; K1 is rotated out for K2, which issues batch B;
K3 takes over, issues batch C and is then revoked (compromised); K4 signs the status lists. One
credential is revoked, one suspended.

A forger with a funded account of its own on the same ledger deploys a second registry, records
a key of its own there under the victim's issuer id and anchors forged credentials in it: nothing
it writes there counts, online or offline, since the registry a verifier reads is the one the
issuer's DID document names (or the verifier pins), never the one an unsigned anchor proof names.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import shutil
from pathlib import Path

import pytest
from academy.credentials import proofs
from academy.credentials.anchoring import Anchor, anchor_batch
from academy.credentials.credential import EXAMPLES_CONTEXT
from academy.credentials.did import did_web_for, did_web_url
from academy.credentials.fetch import FetchLimits
from academy.credentials.issuer import Issuer, now_utc
from academy.credentials.keys import IssuerKey, format_time
from academy.credentials.ledger import Registry
from academy.credentials.statuslist import StatusList
from academy.credentials.verify import (
    CacheSources,
    OnlineSources,
    cache_name,
    fill_cache,
    verify_credential,
)

from labs.minichain.waiting import wait_until

ACHIEVEMENT = {
    "id": "https://academy.example/courses/crypto-foundations",
    "name": "Cryptographic foundations",
    "description": "Hashes, signatures and Merkle trees, hands-on.",
    "criteria": "Every lab scored at least 60% of its points.",
    "level": "blockchain engineering technician: primary",
    "course": "crypto-foundations",
}


def draft(issuer: Issuer, n: int, **dates: str) -> dict:
    fields = {"valid_from": "2026-01-01T00:00:00Z", **dates}
    return issuer.draft(
        f"urn:uuid:00000000-0000-4000-8000-{n:012d}",
        f"learner{n}",
        ACHIEVEMENT,
        [{"name": "sha256", "score": 8, "max": 10}, {"name": "merkle", "score": 9.5, "max": 10}],
        **fields,
    )


def anchored(issuer: Issuer, docs: list[dict], stamp: str) -> list[dict]:
    """Anchor already-signed ``docs`` through the issuer's real registry."""
    reg = issuer.registry
    ident = reg.identity()

    def record(root: bytes, count: int) -> Anchor:
        tx = reg.anchor(issuer.id, root, count)
        return Anchor(ident["chainId"], ident["genesisHash"], ident["registry"], tx.tx_hash,
                      tx.block_number, tx.block_hash)  # fmt: skip

    return anchor_batch(docs, record, stamp)


@pytest.fixture(scope="module")
def world(academy_ledger, status_server, tmp_path_factory):
    issuer = Issuer(
        did_web_for(status_server.base_url + "/tamper"),
        "Tamper Test Institute",
        status_server.base_url + "/tamper/status",
        academy_ledger.registry,
    )
    w: dict = {"issuer": issuer, "server": status_server}
    t0 = now_utc() - dt.timedelta(seconds=30)
    k1 = issuer.add_key(t0)
    batch_a = issuer.issue(
        [
            draft(issuer, 1),
            draft(issuer, 2),
            draft(issuer, 3),
            draft(issuer, 4),
            draft(issuer, 5, valid_until="2026-02-01T00:00:00Z"),
            draft(issuer, 6, valid_from="2099-01-01T00:00:00Z"),
        ],
        created=t0 + dt.timedelta(seconds=1),
    )
    t1 = now_utc()
    k2 = issuer.add_key(t1)
    batch_b = issuer.issue([draft(issuer, 7), draft(issuer, 8)], created=t1)
    # K1 used after it was rotated out, anchored like any batch:
    late = proofs.sign(
        draft(issuer, 9), k1, format_time(t1 + dt.timedelta(seconds=1)), issuer.method(k1)
    )
    (rotated_out,) = anchored(issuer, [late], format_time(t1))
    t2 = now_utc() + dt.timedelta(seconds=1)
    k3 = issuer.add_key(t2)
    batch_c = issuer.issue([draft(issuer, 10)], created=t2)
    backdated_doc = proofs.sign(draft(issuer, 11), k3, format_time(t2), issuer.method(k3))
    t3 = issuer.revoke_key(k3.multikey, now_utc() + dt.timedelta(seconds=2))
    k4 = issuer.add_key(t3)
    wait_until(  # the ledger must see the revocation pass
        lambda: academy_ledger.registry.head_time() > t3,
        60,
        interval=0.2,
        message="the ledger's head never passed the key's revocation time",
    )
    after = proofs.sign(
        draft(issuer, 12), k3, format_time(t3 + dt.timedelta(seconds=1)), issuer.method(k3)
    )
    (revoked_key_doc, backdated) = anchored(issuer, [after, backdated_doc], format_time(t3))
    issuer.set_status(batch_a[2]["id"], "revocation")
    issuer.set_status(batch_a[3]["id"], "suspension")
    for purpose in ("revocation", "suspension"):
        status_server.publish(issuer.lists[purpose].url, issuer.status_list(purpose, at=t3))
    status_server.publish(did_web_url(issuer.id, http_loopback=True), issuer.did_document())
    cache = tmp_path_factory.mktemp("certs_tamper_cache")
    everything = batch_a + batch_b + batch_c + [rotated_out, revoked_key_doc, backdated]
    loopback = FetchLimits(allow_private=True)  # the test status server listens on loopback
    fill_cache(cache, everything, academy_ledger.rpc_url, limits=loopback, did_web_http=True)
    w.update(
        a=batch_a, b=batch_b, c=batch_c, rotated_out=rotated_out, revoked_key=revoked_key_doc,
        backdated=backdated, keys=(k1, k2, k3, k4), cache=cache,
        online=OnlineSources(academy_ledger.rpc_url, limits=loopback, did_web_http=True),
        loopback=loopback,
    )  # fmt: skip
    return w


def offline(world) -> CacheSources:
    return CacheSources(world["cache"])


def test_untouched_credentials_are_valid_online_and_offline(world) -> None:
    for doc in world["a"][:2] + world["b"] + world["c"]:
        for sources in (world["online"], offline(world)):
            report = verify_credential(doc, sources)
            assert report.ok, [c for c in report.checks if c.outcome != "pass"]
            assert {c.name for c in report.checks if c.outcome == "pass"} >= {
                "signature", "issuer key", "merkle inclusion", "ledger anchor", "status"
            }  # fmt: skip


def test_key_revoked_after_anchoring_keeps_earlier_credentials_valid(world) -> None:
    report = verify_credential(world["c"][0], offline(world))
    assert report.ok and "valid" in report.check("issuer key").detail


def resign(doc: dict, key: IssuerKey, method: str | None = None) -> dict:
    """``doc`` with both its signature proofs replaced by ones of ``key`` (same time), naming
    ``method`` (its did:key if None)."""
    sigs = [p for p in proofs.proofs_of(doc) if proofs.is_signature_proof(p)]
    others = [p for p in proofs.proofs_of(doc) if not proofs.is_signature_proof(p)]
    fresh = proofs.sign(proofs.without_proof(doc), key, sigs[0]["created"], method)
    return proofs.with_proofs(doc, [*proofs.proofs_of(fresh), *others])


def sig_proof(doc: dict, suite: str = proofs.JCS_SUITE) -> dict:
    return next(p for p in doc["proof"] if p.get("cryptosuite") == suite)


def sig_proofs(doc: dict) -> list[dict]:
    return [p for p in doc["proof"] if p["type"] == "DataIntegrityProof"]


def anchor_proof(doc: dict) -> dict:
    return next(p for p in doc["proof"] if p["type"] == "LedgerAnchorProof")


def swap_subject(w) -> dict:
    doc = copy.deepcopy(w["a"][0])
    doc["credentialSubject"] = copy.deepcopy(w["a"][1]["credentialSubject"])
    return doc


def copy_proof(w) -> dict:
    doc = copy.deepcopy(w["a"][0])
    other = w["b"][0]
    doc["proof"] = copy.deepcopy(other["proof"])
    return doc


def forged_path(w) -> dict:
    doc = copy.deepcopy(w["a"][0])
    step = anchor_proof(doc)["path"][0]
    side = next(iter(step))
    step[side] = ("0" if step[side][0] != "0" else "1") + step[side][1:]
    return doc


def reordered_path(w) -> dict:
    doc = copy.deepcopy(w["a"][0])
    path = anchor_proof(doc)["path"]
    path[0], path[1] = path[1], path[0]
    return doc


def flipped_side(w) -> dict:
    doc = copy.deepcopy(w["a"][0])
    step = anchor_proof(doc)["path"][0]
    ((side, value),) = step.items()
    step.clear()
    step["right" if side == "left" else "left"] = value
    return doc


def root_not_on_ledger(w) -> dict:
    """A well-formed batch whose root was never recorded (the anchor copies a real one's tx)."""
    real = anchor_proof(w["a"][0])["ledger"]
    k4 = w["keys"][3]
    extra = proofs.sign(
        draft(w["issuer"], 99),
        k4,
        format_time(now_utc() - dt.timedelta(seconds=1)),
        w["issuer"].method(k4),
    )

    def record(root: bytes, count: int) -> Anchor:
        return Anchor(real["chainId"], real["genesisHash"], real["registry"], real["transaction"],
                      real["blockNumber"], real["blockHash"])  # fmt: skip

    return anchor_batch([extra], record, format_time(now_utc()))[0]


def other_block(w) -> dict:
    doc = copy.deepcopy(w["a"][0])
    anchor_proof(doc)["ledger"]["blockNumber"] += 1
    return doc


def other_ledger(w) -> dict:
    doc = copy.deepcopy(w["a"][0])
    anchor_proof(doc)["ledger"]["genesisHash"] = "0x" + "ab" * 32
    return doc


def swapped_anchor(w) -> dict:
    doc = copy.deepcopy(w["a"][0])
    doc["proof"] = [*sig_proofs(doc), copy.deepcopy(anchor_proof(w["b"][0]))]
    return doc


def field_changed(w) -> dict:
    doc = copy.deepcopy(w["a"][0])
    doc["credentialSubject"]["achievement"]["name"] = "Advanced cryptography"
    return doc


def evidence_changed(w) -> dict:
    doc = copy.deepcopy(w["a"][0])
    doc["evidence"][0]["description"] = "sha256: 10 / 10"
    return doc


def status_index_changed(w) -> dict:
    doc = copy.deepcopy(w["a"][2])  # the revoked one points at another, clear bit
    doc["credentialStatus"][0]["statusListIndex"] = str(
        (int(doc["credentialStatus"][0]["statusListIndex"]) + 1) % 131072
    )
    return doc


def unknown_cryptosuite(w) -> dict:
    doc = copy.deepcopy(w["a"][0])
    sig_proof(doc)["cryptosuite"] = "eddsa-2099"
    return doc


def unknown_proof_type(w) -> dict:
    doc = copy.deepcopy(w["a"][0])
    doc["proof"].append({"type": "Ed25519Signature2018", "proofValue": "z1"})
    return doc


def proof_removed(w) -> dict:
    doc = copy.deepcopy(w["a"][0])
    doc["proof"] = [anchor_proof(doc)]
    return doc


def truncated_signature(w) -> dict:
    doc = copy.deepcopy(w["a"][0])
    sig_proof(doc)["proofValue"] = sig_proof(doc)["proofValue"][:-4]
    return doc


def unpinned_context(w) -> dict:
    doc = copy.deepcopy(w["a"][0])
    doc["@context"][1] = "https://evil.example/context.json"
    return doc


def stranger_key(w) -> dict:
    stranger = IssuerKey.generate()
    return resign(w["a"][0], stranger, w["issuer"].method(stranger))


def stranger_did_key(w) -> dict:
    """Signed by a stranger's key named by its own did:key: not a method of the issuer's DID."""
    return resign(w["a"][0], IssuerKey.generate())


def stranger_under_any_url(w) -> dict:
    """A URL whose fragment is a key used to be taken as that key; it names no key of the
    issuer's (its controller is not the issuer)."""
    stranger = IssuerKey.generate()
    return resign(w["a"][0], stranger, f"https://evil.example/profile#{stranger.multikey}")


def real_key_under_another_did(w) -> dict:
    """The issuer's own current key K4, named as a method of another DID: the proof's
    verificationMethod must be a method of the issuer, whatever key its fragment names."""
    k4 = w["keys"][3]
    return resign(w["a"][0], k4, f"did:web:evil.example#{k4.multikey}")


def future_signature(w) -> dict:
    doc = copy.deepcopy(w["b"][0])
    sig = sig_proof(doc)
    sig["created"] = "2099-01-01T00:00:00Z"
    return resign(doc, w["keys"][1], w["issuer"].method(w["keys"][1]))


CASES = {
    "field changed": (field_changed, "signature"),
    "evidence (grades) changed": (evidence_changed, "signature"),
    "subject swapped to another learner": (swap_subject, "signature"),
    "proof copied onto another credential": (copy_proof, "signature"),
    "status index moved to a clear bit": (status_index_changed, "signature"),
    "unknown cryptosuite": (unknown_cryptosuite, "signature"),
    "signature proof removed": (proof_removed, "signature"),
    "signature truncated": (truncated_signature, "signature"),
    "unknown proof type": (unknown_proof_type, "schema"),
    "unpinned @context": (unpinned_context, "schema"),
    "signed by a key that is not the issuer's": (stranger_key, "issuer key"),
    "signed by a stranger's did:key": (stranger_did_key, "issuer key"),
    "key named by the fragment of any URL": (stranger_under_any_url, "issuer key"),
    "issuer's own key named under another DID": (real_key_under_another_did, "issuer key"),
    "signed after the key was rotated out": (lambda w: w["rotated_out"], "issuer key"),
    "signed by a key revoked before issue": (lambda w: w["revoked_key"], "issuer key"),
    "backdated with a revoked key, anchored after": (lambda w: w["backdated"], "issuer key"),
    "signature dated in the future": (future_signature, "dates"),
    "forged Merkle path": (forged_path, "merkle inclusion"),
    "reordered Merkle path": (reordered_path, "merkle inclusion"),
    "Merkle sibling on the wrong side": (flipped_side, "merkle inclusion"),
    "anchor proof of another credential": (swapped_anchor, "merkle inclusion"),
    "root not on the ledger": (root_not_on_ledger, "ledger anchor"),
    "anchor names another block": (other_block, "ledger anchor"),
    "anchored on another ledger": (other_ledger, "ledger anchor"),
    "revoked": (lambda w: w["a"][2], "status"),
    "suspended": (lambda w: w["a"][3], "status"),
    "expired": (lambda w: w["a"][4], "dates"),
    "not yet valid": (lambda w: w["a"][5], "dates"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_tampered_credential_fails_the_named_check(world, case: str) -> None:
    make, check = CASES[case]
    doc = make(world)
    for sources in (offline(world), world["online"]):
        report = verify_credential(doc, sources)
        assert not report.ok
        assert check in report.failed, (sources.offline, report.to_json())
        assert report.check(check).detail


def test_revoked_and_suspended_verdicts(world) -> None:
    assert verify_credential(world["a"][2], world["online"]).verdict == "revoked"
    assert verify_credential(world["a"][3], offline(world)).verdict == "suspended"


def tampered_cache(world, tmp_path: Path, change) -> CacheSources:
    folder = tmp_path / "cache"
    shutil.copytree(world["cache"], folder)
    change(folder)
    return CacheSources(folder)


def _edit_status_list(folder: Path, world, edit) -> None:
    url = world["issuer"].lists["revocation"].url
    path = folder / "status" / cache_name(url)
    doc = json.loads(path.read_text())
    edit(doc)
    path.write_text(json.dumps(doc))


def _clear_bits(doc: dict) -> None:
    doc["credentialSubject"]["encodedList"] = StatusList().encode()


def test_status_list_tampered_is_rejected(world, tmp_path: Path) -> None:
    sources = tampered_cache(world, tmp_path, lambda f: _edit_status_list(f, world, _clear_bits))
    report = verify_credential(world["a"][2], sources)
    assert report.failed == ["status"] and "signature" in report.check("status").detail


def test_status_list_resigned_by_a_stranger_is_rejected(world, tmp_path: Path) -> None:
    stranger = IssuerKey.generate()

    def resign_list(doc: dict) -> None:
        _clear_bits(doc)
        fresh = proofs.sign(
            proofs.without_proof(doc), stranger, proofs.proofs_of(doc)[0]["created"]
        )
        doc.update(fresh)

    sources = tampered_cache(world, tmp_path, lambda f: _edit_status_list(f, world, resign_list))
    report = verify_credential(world["a"][2], sources)
    assert report.failed == ["status"]


def test_stale_status_list_disagrees_with_the_ledger(world, tmp_path: Path) -> None:
    """A list correctly signed by the issuer but from before the revocation: the ledger wins."""
    issuer = world["issuer"]
    stale = StatusList()
    doc = {
        **issuer.status_list("revocation"),
        "credentialSubject": {
            **issuer.status_list("revocation")["credentialSubject"],
            "encodedList": stale.encode(),
        },
    }
    k4 = world["keys"][3]
    signed = proofs.sign(proofs.without_proof(doc), k4, proofs.proofs_of(doc)[0]["created"])
    sources = tampered_cache(
        world, tmp_path, lambda f: _edit_status_list(f, world, lambda d: d.update(signed))
    )
    report = verify_credential(world["a"][2], sources)
    assert (
        report.failed == ["status"] and "disagrees with the ledger" in report.check("status").detail
    )


def _weaken_evidence(folder: Path, edit) -> None:
    (path,) = (folder / "ledger").iterdir()
    bundle = json.loads(path.read_text())
    for block in bundle["blocks"]:
        edit(block)
    path.write_text(json.dumps(bundle))


def test_ledger_evidence_without_a_quorum_of_signatures_is_rejected(world, tmp_path) -> None:
    def drop_votes(block: dict) -> None:
        block["precommits"] = block["precommits"][:2]

    sources = tampered_cache(world, tmp_path, lambda f: _weaken_evidence(f, drop_votes))
    report = verify_credential(world["a"][0], sources)
    assert "ledger anchor" in report.failed
    assert "needed" in report.check("ledger anchor").detail


def test_ledger_evidence_with_forged_receipts_is_rejected(world, tmp_path) -> None:
    def swap_receipts(block: dict) -> None:
        block["receipts"] = "0xc0"  # an empty receipt list

    sources = tampered_cache(world, tmp_path, lambda f: _weaken_evidence(f, swap_receipts))
    report = verify_credential(world["a"][0], sources)
    assert "ledger anchor" in report.failed
    assert "receipts" in report.check("ledger anchor").detail


def test_wrong_key_given_by_the_verifier(world) -> None:
    other = IssuerKey.generate().multikey
    report = verify_credential(world["a"][0], offline(world), key=other)
    assert report.failed[0] == "signature"


def unanchored(doc: dict) -> dict:
    """``doc`` with its LedgerAnchorProof removed (the signature stays as it was)."""
    return proofs.with_proofs(doc, sig_proofs(doc))


def test_removing_the_anchor_never_skips_the_ledger_s_key_revocation(world) -> None:
    """Signed by K3 and backdated to before its revocation: with the anchor the ledger dates it
    after the revocation. Without the anchor, --key K3 --offline still meets the revocation the
    cache holds (issue 14, finding 3)."""
    k3 = world["keys"][2]
    backdated = world["backdated"]
    assert verify_credential(backdated, offline(world), key=k3.multikey).verdict == "invalid"
    stripped = unanchored(backdated)
    for key in (k3.multikey, None):
        report = verify_credential(stripped, offline(world), key=key)
        assert report.verdict == "invalid", (key, report.to_json())
        assert "issuer key" in report.failed
        assert "revoked" in report.check("issuer key").detail
    pinned = CacheSources(
        world["cache"], genesis=world["issuer"].registry.identity()["genesisHash"]
    )
    assert verify_credential(stripped, pinned, key=k3.multikey).verdict == "invalid"


def test_removing_the_anchor_never_skips_a_rotation_the_cache_holds(world) -> None:
    """K1, used after it was rotated out: refused with or without its anchor."""
    k1 = world["keys"][0]
    stripped = unanchored(world["rotated_out"])
    report = verify_credential(stripped, offline(world), key=k1.multikey)
    assert report.verdict == "invalid" and "rotated out" in report.check("issuer key").detail


def test_an_unanchored_credential_by_a_valid_key_stays_valid_with_key(world) -> None:
    """The ledger records only refuse: K2's credential, anchor removed, passes with --key K2
    (its status list is signed by K4, which the ledger records as the issuer's)."""
    k2 = world["keys"][1]
    report = verify_credential(unanchored(world["b"][0]), offline(world), key=k2.multikey)
    assert report.check("issuer key").outcome == "pass", report.to_json()
    assert report.check("merkle inclusion").outcome == "n/a"


# -- a second registry on the same ledger ---------------------------------------------------------


@pytest.fixture(scope="module")
def forgery(world, academy_ledger, status_server, tmp_path_factory):
    """A forger with another funded account deploys its own AcademyRegistry on the victim's
    ledger, records a key of its own there under the victim's issuer id (and "revokes" the
    victim's K2 there), and anchors forged credentials in it, with status lists of its own."""
    victim = world["issuer"]
    account = academy_ledger.cfg.accounts()[1]["private_key"]
    rogue_registry = Registry.deploy(academy_ledger.rpc_url, account)
    rogue = Issuer(victim.id, victim.name, status_server.base_url + "/rogue/status", rogue_registry)
    rogue_key = rogue.add_key(now_utc() - dt.timedelta(seconds=5))
    k2 = world["keys"][1]
    rogue_registry.revoke_key(victim.id, k2.multikey, now_utc() - dt.timedelta(days=30))
    (as_victim_method,) = rogue.issue([draft(rogue, 60)])
    did_key_doc = proofs.sign(draft(rogue, 61), rogue_key, format_time(now_utc()))
    (as_did_key,) = anchored(rogue, [did_key_doc], format_time(now_utc()))
    for purpose in ("revocation", "suspension"):
        status_server.publish(rogue.lists[purpose].url, rogue.status_list(purpose))
    genesis = academy_ledger.registry.genesis_hash()
    docs = {"rogue key as the victim's method": as_victim_method, "rogue did:key": as_did_key}
    cache = tmp_path_factory.mktemp("certs_forgery_cache")
    # the verifier fills its cache from the forged credentials themselves, while online
    fill_cache(cache, list(docs.values()), academy_ledger.rpc_url, genesis, world["loopback"],
               did_web_http=True)  # fmt: skip
    return {"docs": docs, "cache": cache, "genesis": genesis, "registry": rogue_registry,
            "rogue": rogue}  # fmt: skip


@pytest.mark.parametrize("case", ["rogue key as the victim's method", "rogue did:key"])
def test_a_credential_anchored_in_a_second_registry_is_never_valid(world, forgery, case) -> None:
    doc = forgery["docs"][case]
    assert anchor_proof(doc)["ledger"]["registry"] == forgery["registry"].address
    pinned = CacheSources(forgery["cache"], genesis=forgery["genesis"])
    for sources in (pinned, world["online"]):
        report = verify_credential(doc, sources)
        assert report.verdict == "invalid", (sources.offline, report.to_json())
        assert "issuer key" in report.failed and "ledger anchor" in report.failed
        assert "not the issuer's" in report.check("ledger anchor").detail


def test_cli_says_a_second_registry_s_forgery_is_not_valid(world, forgery, tmp_path) -> None:
    """As an employer runs it: `academy credentials cache` then `academy verify --offline
    --cache ... --genesis G`, and `academy verify` online."""
    from .test_e2e_ledger import academy

    path = tmp_path / "forged.json"
    path.write_text(json.dumps(forgery["docs"]["rogue key as the victim's method"]))
    rpc = world["issuer"].registry.rpc_url
    cache = tmp_path / "cache"
    common = ["--genesis", forgery["genesis"], "--allow-private-fetch", "--did-web-http"]
    run = academy("credentials", "cache", str(path), "--cache", str(cache), "--rpc", rpc, *common)
    assert run.exit_code == 0, run.output
    run = academy("verify", str(path), "--offline", "--cache", str(cache),
                  "--genesis", forgery["genesis"])  # fmt: skip
    assert run.exit_code == 1 and "verdict: invalid" in run.output, run.output
    assert "FAIL  ledger anchor" in run.output and "FAIL  issuer key" in run.output
    run = academy("verify", str(path), "--rpc", rpc, *common)
    assert run.exit_code == 1 and "verdict: invalid" in run.output, run.output


def test_pinning_the_second_registry_by_hand_is_refused(world, forgery) -> None:
    """--registry cannot override the registry the issuer's own DID document names."""
    doc = forgery["docs"]["rogue key as the victim's method"]
    sources = OnlineSources(world["issuer"].registry.rpc_url, limits=world["loopback"],
                            registry=forgery["registry"].address, did_web_http=True)  # fmt: skip
    report = verify_credential(doc, sources)
    assert report.verdict == "invalid" and "names registry" in report.check("ledger anchor").detail


def test_a_genuine_anchor_renamed_to_the_second_registry_fails(world, forgery) -> None:
    """The forger re-anchors a genuine credential's root in its registry and points the anchor
    there: the root is checked only in the issuer's registry."""
    doc = copy.deepcopy(world["a"][0])
    root = bytes.fromhex(anchor_proof(doc)["merkleRoot"])
    tx = forgery["registry"].anchor(world["issuer"].id, root, 1)
    anchor_proof(doc)["ledger"].update(
        registry=forgery["registry"].address, transaction=tx.tx_hash,
        blockNumber=tx.block_number, blockHash=tx.block_hash,
    )  # fmt: skip
    for sources in (offline(world), world["online"]):
        report = verify_credential(doc, sources)
        assert report.failed == ["ledger anchor"], report.to_json()


def test_the_second_registry_s_key_revocation_counts_for_nothing(world, forgery) -> None:
    """The forger "revoked" K2 in its own registry; a handed-over cache holding that registry's
    evidence beside the real one changes nothing: K2's credentials stay valid, with or without
    their anchor."""
    from academy.credentials.ledger import fetch_ledger_bundle

    folder = forgery["cache"].parent / "handed-over"
    shutil.copytree(world["cache"], folder, dirs_exist_ok=True)
    bundle = fetch_ledger_bundle(world["issuer"].registry.rpc_url, forgery["registry"].address)
    name = cache_name(forgery["registry"].address.lower())
    (folder / "ledger" / name).write_text(json.dumps(bundle))
    k2 = world["keys"][1]
    for sources in (CacheSources(folder), world["online"]):
        assert verify_credential(world["b"][0], sources).verdict == "valid"
        report = verify_credential(unanchored(world["b"][0]), sources, key=k2.multikey)
        assert report.check("issuer key").outcome == "pass", report.to_json()


def test_removing_the_anchor_online_still_meets_the_ledger_s_revocation(world) -> None:
    """Online, with no anchor to name a registry, the issuer's DID document does: K3's revocation
    recorded on the ledger refuses the backdated credential, --key or not."""
    stripped = unanchored(world["backdated"])
    k3 = world["keys"][2]
    for key in (k3.multikey, None):
        report = verify_credential(stripped, world["online"], key=key)
        assert report.verdict == "invalid" and "revoked" in report.check("issuer key").detail


def test_without_the_issuer_s_document_an_anchor_has_no_registry(world, tmp_path) -> None:
    """Offline with a cache that lacks the issuer's DID document: nothing names the registry, so
    the anchor is not checked against whatever evidence lies there; one clear reason."""
    folder = tmp_path / "cache"
    shutil.copytree(world["cache"], folder)
    shutil.rmtree(folder / "issuers")
    report = verify_credential(world["a"][0], CacheSources(folder))
    assert report.verdict == "invalid" and "ledger anchor" in report.failed
    assert "academy credentials cache" in report.check("ledger anchor").detail


def test_a_registry_the_issuer_moved_from_stays_checkable(world, forgery, academy_ledger) -> None:
    """The issuer moves to a new registry and lists it first, the old one after: what the old
    one anchored stays valid, and a registry it never listed still counts for nothing."""
    from academy.credentials.did import LedgerBinding, did_document

    issuer, server = world["issuer"], world["server"]
    moved = Registry.deploy(academy_ledger.rpc_url, academy_ledger.private_key)
    ident = issuer.registry.identity()
    old = LedgerBinding(ident["chainId"], ident["genesisHash"], ident["registry"])
    new = LedgerBinding(ident["chainId"], ident["genesisHash"], moved.address)
    url = did_web_url(issuer.id, http_loopback=True)
    server.publish(url, did_document(issuer.id, issuer.history, [new, old]))
    try:
        fresh = OnlineSources(academy_ledger.rpc_url, limits=world["loopback"], did_web_http=True)
        assert verify_credential(world["a"][0], fresh).verdict == "valid"
        forged = forgery["docs"]["rogue key as the victim's method"]
        report = verify_credential(forged, fresh)
        assert report.verdict == "invalid" and "ledger anchor" in report.failed
    finally:
        server.publish(url, issuer.did_document())


def test_a_stale_did_document_does_not_hide_the_ledger_s_revocation(world, academy_ledger) -> None:
    """The issuer's web host still serves a DID document from before K3 was revoked: online,
    the revocation recorded in the issuer's registry refuses K3's backdated credential even
    with its anchor removed."""
    from academy.credentials.did import did_document
    from academy.credentials.keys import KeyHistory, KeyRecord

    issuer, server = world["issuer"], world["server"]
    stale = KeyHistory([KeyRecord(r.multikey, r.valid_from) for r in issuer.history.records])
    url = did_web_url(issuer.id, http_loopback=True)
    served = did_document(issuer.id, stale, issuer.did_document_ledgers())
    assert "revoked" not in json.dumps(served)
    server.publish(url, served)
    try:
        fresh = OnlineSources(academy_ledger.rpc_url, limits=world["loopback"], did_web_http=True)
        k3 = world["keys"][2]
        report = verify_credential(unanchored(world["backdated"]), fresh, key=k3.multikey)
        assert report.verdict == "invalid", report.to_json()
        assert "the ledger's key record" in report.check("issuer key").detail
    finally:
        server.publish(url, issuer.did_document())


# -- downgrades: the two proofs, their suites and contexts --------------------------------------


def _only(w, suite: str) -> dict:
    doc = copy.deepcopy(w["a"][0])
    doc["proof"] = [p for p in doc["proof"] if p.get("cryptosuite") in (suite, None)]
    return doc


def suites_swapped(w) -> dict:
    doc = copy.deepcopy(w["a"][0])
    jcs, rdfc = sig_proof(doc), sig_proof(doc, proofs.RDFC_SUITE)
    jcs["cryptosuite"], rdfc["cryptosuite"] = proofs.RDFC_SUITE, proofs.JCS_SUITE
    return doc


def both_named_jcs(w) -> dict:
    doc = copy.deepcopy(w["a"][0])
    sig_proof(doc, proofs.RDFC_SUITE)["cryptosuite"] = proofs.JCS_SUITE
    return doc


def rdfc_duplicated(w) -> dict:
    doc = copy.deepcopy(w["a"][0])
    doc["proof"].append(copy.deepcopy(sig_proof(doc, proofs.RDFC_SUITE)))
    return doc


def rdfc_by_a_stranger(w) -> dict:
    """The issuer's eddsa-jcs-2022 proof kept, the eddsa-rdfc-2022 one replaced by a stranger's."""
    doc = copy.deepcopy(w["a"][0])
    jcs = sig_proof(doc)
    fresh = proofs.create_proof(
        doc, IssuerKey.generate(), jcs["created"], cryptosuite=proofs.RDFC_SUITE
    )
    doc["proof"] = [jcs, fresh, anchor_proof(doc)]
    return doc


def rdfc_created_later(w) -> dict:
    """Both proofs by the issuer's key, the RDF one made later (what a leaked key could add)."""
    doc = copy.deepcopy(w["b"][0])
    jcs = sig_proof(doc)
    later = proofs.create_proof(
        doc, w["keys"][1], format_time(now_utc()), cryptosuite=proofs.RDFC_SUITE
    )
    doc["proof"] = [jcs, later, anchor_proof(doc)]
    return doc


def proof_context_shortened(w) -> dict:
    doc = copy.deepcopy(w["a"][0])
    sig_proof(doc, proofs.RDFC_SUITE)["@context"] = doc["@context"][:1]
    return doc


def contexts_reordered(w) -> dict:
    doc = copy.deepcopy(w["a"][0])
    doc["@context"] = [doc["@context"][0], doc["@context"][2], doc["@context"][1]]
    return doc


def context_appended_with_a_term(w) -> dict:
    """A pinned context appended after the signed ones (allowed) to carry a new term (not)."""
    doc = copy.deepcopy(w["a"][0])
    doc["@context"] = [*doc["@context"], EXAMPLES_CONTEXT]
    doc["credentialSubject"]["alumniOf"] = "The School of Examples"
    return doc


def undefined_term(w) -> dict:
    doc = copy.deepcopy(w["a"][0])
    doc["credentialSubject"]["favouriteColour"] = "blue"
    return doc


CASES.update(
    {
        "eddsa-jcs-2022 proof stripped": (lambda w: _only(w, proofs.RDFC_SUITE), "signature"),
        "eddsa-rdfc-2022 proof stripped": (lambda w: _only(w, proofs.JCS_SUITE), "signature"),
        "cryptosuite names swapped": (suites_swapped, "signature"),
        "both proofs named eddsa-jcs-2022": (both_named_jcs, "signature"),
        "eddsa-rdfc-2022 proof duplicated": (rdfc_duplicated, "signature"),
        "eddsa-rdfc-2022 proof by a stranger": (rdfc_by_a_stranger, "signature"),
        "eddsa-rdfc-2022 proof made later": (rdfc_created_later, "signature"),
        "proof @context shortened": (proof_context_shortened, "signature"),
        "@context reordered": (contexts_reordered, "signature"),
        "context appended to carry a term": (context_appended_with_a_term, "signature"),
        "undefined term added": (undefined_term, "signature"),
    }
)
DOWNGRADES = [c for c in CASES if "proof" in c or "context" in c or "term" in c]


@pytest.mark.parametrize("case", DOWNGRADES)
def test_downgrades_fail_online_too(world, case: str) -> None:
    make, check = CASES[case]
    report = verify_credential(make(world), world["online"])
    assert check in report.failed, report.to_json()


def test_a_context_appended_after_the_signed_ones_keeps_the_signatures(world) -> None:
    """The proofs name the contexts they signed with; a document whose @context starts with
    them passes the signature check (Data Integrity's rule), so a holder may add a pinned
    context. An anchored credential is still fixed byte for byte by its Merkle leaf."""
    doc = copy.deepcopy(world["b"][0])
    doc["@context"] = [*doc["@context"], EXAMPLES_CONTEXT]
    report = verify_credential(doc, offline(world))
    assert report.check("signature").outcome == "pass", report.to_json()
    assert report.failed == ["merkle inclusion"]
    report = verify_credential(unanchored(doc), offline(world), key=world["keys"][1].multikey)
    assert report.check("signature").outcome == "pass", report.to_json()
    assert report.check("issuer key").outcome == "pass", report.to_json()


def test_a_status_list_with_one_proof_is_refused(world, tmp_path: Path) -> None:
    """The issuer's own status list with its eddsa-rdfc-2022 proof stripped: a downgraded list
    counts for nothing, like an unsigned one."""

    def strip(doc: dict) -> None:
        doc["proof"] = sig_proof(doc)

    sources = tampered_cache(world, tmp_path, lambda f: _edit_status_list(f, world, strip))
    report = verify_credential(world["a"][0], sources)
    assert report.failed == ["status"] and "eddsa-rdfc-2022" in report.check("status").detail
