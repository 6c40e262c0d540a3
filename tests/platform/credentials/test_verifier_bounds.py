"""What a verifier reads is bounded, and a status list counts only when the issuer signed it
(issue 14, findings 2 and 4).

Deep JSON once ended ``academy verify`` with SIGSEGV: py_ecc, imported through eth_account,
raises the recursion limit of the whole process to 100,000. Documents past 1 MiB or 64 levels,
and status lists that inflate past their cap, now get one clear error each. A status list
re-signed by a stranger once decided the status of a credential with no anchor and no --key:
its own ``verificationMethod`` was trusted.
"""

from __future__ import annotations

import base64
import datetime as dt
import gzip
import json
import os
import subprocess
import sys
from collections import OrderedDict
from pathlib import Path

import pytest
from academy.credentials import proofs
from academy.credentials.did import did_web_for, did_web_url
from academy.credentials.fetch import FetchError, FetchLimits, fetch_json
from academy.credentials.issuer import Issuer, now_utc
from academy.credentials.jcs import (
    MAX_DEPTH,
    MAX_DOCUMENT_BYTES,
    InputBoundError,
    depth_of,
    depth_of_text,
    loads,
)
from academy.credentials.keys import IssuerKey, did_key
from academy.credentials.statuslist import MAX_ENTRIES, StatusList, StatusListError
from academy.credentials.verify import (
    CacheSources,
    OnlineSources,
    cache_name,
    fill_cache,
    verify_credential,
)

from .test_tampering import draft

DEEP = 100_000
LOOPBACK = FetchLimits(allow_private=True)  # the test status server listens on loopback
ROOT = Path(__file__).resolve().parents[3]


def deep_array(depth: int) -> str:
    return "[" * depth + "]" * depth


def deep_object(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth


def academy_cli(*args: str) -> subprocess.CompletedProcess:
    """The `academy` command in a process of its own, as a user runs it (a crash shows as a
    negative return code instead of taking the test run down)."""
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'platform'}{os.pathsep}{ROOT}"}
    cmd = [sys.executable, "-m", "academy.cli", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)


# -- finding 4: bounded inputs --------------------------------------------------------------------


@pytest.mark.parametrize("shape", ["array", "object"])
def test_a_100000_deep_document_is_refused_by_the_cli_not_a_crash(tmp_path, shape) -> None:
    path = tmp_path / "deep.json"
    path.write_text(deep_array(DEEP) if shape == "array" else deep_object(DEEP))
    for extra in ([], ["--offline", "--cache", str(tmp_path / "cache")]):
        run = academy_cli("verify", str(path), *extra)
        assert run.returncode == 2, (run.returncode, run.stderr[-500:])
        assert f"nested deeper than {MAX_DEPTH} levels" in run.stderr


def test_a_document_over_the_size_cap_is_refused_by_the_cli(tmp_path) -> None:
    path = tmp_path / "big.json"
    path.write_text(json.dumps({"padding": "x" * MAX_DOCUMENT_BYTES}))
    run = academy_cli("verify", str(path))
    assert run.returncode == 2 and f"larger than {MAX_DOCUMENT_BYTES} bytes" in run.stderr


def test_no_import_leaves_the_recursion_limit_raised() -> None:
    """py_ecc sets 100,000 on import; the verifier's processes (the CLI, the service) keep the
    interpreter's own limit, so deep input raises RecursionError at worst, never SIGSEGV."""
    code = (
        "import sys; before = sys.getrecursionlimit(); import academy.cli, academy.app, "
        "academy.credentials.verify, eth_account; print(before, sys.getrecursionlimit())"
    )
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'platform'}{os.pathsep}{ROOT}"}
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    before, after = run.stdout.split()
    assert after == before, run.stdout


def test_the_depth_is_counted_outside_strings_only() -> None:
    assert depth_of_text(b'{"a": "[[[[{{{{\\"[[["}') == 1
    assert depth_of_text(deep_object(MAX_DEPTH).encode()) == MAX_DEPTH
    assert loads(deep_object(MAX_DEPTH)) is not None  # at the bound: read
    assert depth_of(loads(deep_object(MAX_DEPTH))) == MAX_DEPTH
    assert depth_of(OrderedDict(a=OrderedDict(b=[[]]))) == 4  # subclasses count too
    assert depth_of("[[[") == 0
    with pytest.raises(InputBoundError, match="nested deeper"):
        loads(deep_object(MAX_DEPTH + 1))
    with pytest.raises(InputBoundError, match="nested deeper"):
        loads(deep_array(DEEP).encode())


def test_a_deep_value_inside_a_credential_fails_the_schema_check() -> None:
    """A document built in memory (not parsed by ``loads``) is bounded too: 500 levels inside
    the subject once overflowed the canonicalization."""
    issuer, key = did_key_issuer("https://status.invalid")
    doc = issuer.issue([draft(issuer, 1)])[0]
    inner: list = []
    for _ in range(500):
        inner = [inner]
    doc["credentialSubject"]["deep"] = inner
    report = verify_credential(doc, None, key=key.multikey)
    assert report.verdict == "invalid"
    assert report.failed[0] == "schema" and "nested deeper" in report.check("schema").detail


def test_a_status_list_that_inflates_past_the_cap_is_refused() -> None:
    bomb = gzip.compress(bytes(64 * 1024 * 1024))  # 64 KiB of GZIP, 64 MiB of bits
    encoded = "u" + base64.urlsafe_b64encode(bomb).decode().rstrip("=")
    with pytest.raises(StatusListError, match=f"more than {MAX_ENTRIES} entries"):
        StatusList.decode(encoded)
    at_cap = StatusList(MAX_ENTRIES)
    at_cap.set(MAX_ENTRIES - 1, True)
    assert StatusList.decode(at_cap.encode()).get(MAX_ENTRIES - 1)
    trailing = gzip.compress(bytes(StatusList().bits)) * 2
    with pytest.raises(StatusListError, match="one whole GZIP stream"):
        StatusList.decode("u" + base64.urlsafe_b64encode(trailing).decode().rstrip("="))


def test_a_signed_credential_whose_status_list_is_a_bomb_is_not_valid(status_server) -> None:
    issuer, _key = did_key_issuer(status_server.base_url + "/bomb")
    doc = issuer.issue([draft(issuer, 1)])[0]
    for purpose in ("revocation", "suspension"):
        lst = json.loads(json.dumps(issuer.status_list(purpose)))
        bomb = gzip.compress(bytes(64 * 1024 * 1024))
        lst["credentialSubject"]["encodedList"] = "u" + base64.urlsafe_b64encode(
            bomb
        ).decode().rstrip("=")
        signed = proofs.sign(proofs.without_proof(lst), _key, proofs.proofs_of(lst)[0]["created"])
        status_server.publish(issuer.lists[purpose].url, signed)
    report = verify_credential(doc, OnlineSources(None, limits=LOOPBACK))
    assert report.failed == ["status"], report.to_json()
    assert f"more than {MAX_ENTRIES} entries" in report.check("status").detail


def test_a_deep_status_list_answer_is_a_fetch_error(status_server) -> None:
    url = status_server.base_url + "/deep/list"
    status_server.docs["/deep/list"] = json.loads(deep_object(MAX_DEPTH + 5))
    with pytest.raises(FetchError, match="nested deeper"):
        fetch_json(url, LOOPBACK)


# -- finding 2: status lists verify against the issuer's own keys only ----------------------------


def did_key_issuer(status_base: str) -> tuple[Issuer, IssuerKey]:
    """An issuer whose id is the did:key of its one key, with no ledger."""
    key = IssuerKey.generate()
    issuer = Issuer(did_key(key.multikey), "Did Key Academy", status_base)
    issuer.add_key(now_utc() - dt.timedelta(minutes=1), key=key)
    return issuer, key


def url_issuer(status_server, name: str) -> tuple[Issuer, IssuerKey]:
    """An issuer whose id is an https-style URL serving its document with its keys."""
    base = f"{status_server.base_url}/{name}"
    issuer = Issuer(f"{base}/profile", "Profile Academy", f"{base}/status")
    key = issuer.add_key(now_utc() - dt.timedelta(minutes=1))
    status_server.publish(issuer.id, issuer.did_document())
    return issuer, key


def did_web_issuer(status_server, name: str) -> tuple[Issuer, IssuerKey]:
    """An issuer whose id is a did:web of the loopback server, its DID document served there."""
    base = f"{status_server.base_url}/{name}"
    issuer = Issuer(did_web_for(base), "Did Web Academy", f"{base}/status")
    key = issuer.add_key(now_utc() - dt.timedelta(minutes=1))
    status_server.publish(did_web_url(issuer.id, http_loopback=True), issuer.did_document())
    return issuer, key


def publish_lists(status_server, issuer: Issuer, stranger: IssuerKey | None) -> None:
    """The issuer's current lists, or (``stranger``) the lists cleared and re-signed by
    another key, naming that key as the list's verificationMethod."""
    for purpose in ("revocation", "suspension"):
        lst = json.loads(json.dumps(issuer.status_list(purpose)))
        if stranger is not None:
            lst["credentialSubject"]["encodedList"] = StatusList().encode()
            lst = proofs.sign(
                proofs.without_proof(lst), stranger, proofs.proofs_of(lst)[0]["created"]
            )
        status_server.publish(issuer.lists[purpose].url, lst)


def verdicts(doc: dict, tmp_path: Path, key: str | None = None) -> dict[str, str]:
    """The verdict online (fetching the lists) and offline (from a cache filled online)."""
    cache = tmp_path / f"cache-{len(list(tmp_path.iterdir()))}"
    fill_cache(cache, [doc], None, limits=LOOPBACK, did_web_http=True)
    online = verify_credential(doc, online_sources(), key=key)
    offline = verify_credential(doc, CacheSources(cache), key=key)
    return {"online": online.verdict, "offline": offline.verdict}


def online_sources() -> OnlineSources:
    """Fetching from the loopback test server, did:web resolved there over http."""
    return OnlineSources(None, limits=LOOPBACK, did_web_http=True)


@pytest.mark.parametrize("kind", ["did:key", "profile", "did:web"])
def test_a_revoked_credential_with_a_stranger_re_signed_list_is_not_valid(
    status_server, tmp_path, kind
) -> None:
    """No --key, no anchor: the issuer is its own did:key, or a URL whose profile lists its
    keys (read online only). Re-signed by a stranger, the cleared list never makes the revoked
    credential valid, online or offline, with or without --key."""
    if kind == "did:key":
        issuer, key = did_key_issuer(f"{status_server.base_url}/stranger-did")
    elif kind == "did:web":
        issuer, key = did_web_issuer(status_server, "stranger-did-web")
    else:
        issuer, key = url_issuer(status_server, "stranger-profile")
    doc = issuer.issue([draft(issuer, 1)])[0]
    issuer.set_status(doc["id"], "revocation")
    publish_lists(status_server, issuer, None)
    genuine = verdicts(doc, tmp_path)
    assert genuine["online"] == "revoked", genuine
    assert verdicts(doc, tmp_path, key=key.multikey) == {"online": "revoked", "offline": "revoked"}
    publish_lists(status_server, issuer, IssuerKey.generate())
    for key_given in (None, key.multikey):
        for where, verdict in verdicts(doc, tmp_path, key=key_given).items():
            assert verdict == "invalid", (key_given, where, verdict)
    report = verify_credential(doc, online_sources())
    assert report.failed == ["status"], report.to_json()
    assert "not the issuer's" in report.check("status").detail


def test_a_list_signed_by_the_issuer_s_own_key_still_counts(status_server, tmp_path) -> None:
    issuer, key = did_key_issuer(f"{status_server.base_url}/own")
    doc, other = issuer.issue([draft(issuer, 1), draft(issuer, 2)])
    issuer.set_status(other["id"], "suspension")
    publish_lists(status_server, issuer, None)
    assert verdicts(doc, tmp_path) == {"online": "valid", "offline": "valid"}
    assert verdicts(other, tmp_path) == {"online": "suspended", "offline": "suspended"}
    assert verdicts(other, tmp_path, key=key.multikey)["offline"] == "suspended"


def test_a_list_signed_by_a_stranger_is_refused_even_with_the_issuer_s_key_listed(
    status_server, tmp_path
) -> None:
    """The issuer's profile lists its keys; a list signed by any other key fails, and says so,
    even when the credential itself is the issuer's."""
    issuer, _key = url_issuer(status_server, "profile-keys")
    doc = issuer.issue([draft(issuer, 1)])[0]
    publish_lists(status_server, issuer, IssuerKey.generate())
    report = verify_credential(doc, OnlineSources(None, limits=LOOPBACK))
    assert report.check("issuer key").outcome == "pass"
    assert report.failed == ["status"] and "not the issuer's" in report.check("status").detail


def test_a_deep_cache_file_is_an_error_not_a_crash(tmp_path) -> None:
    """A cache folder handed over by someone else: its ledger evidence and status lists are read
    within the same depth bound."""
    (tmp_path / "ledger").mkdir()
    (tmp_path / "status").mkdir()
    (tmp_path / "ledger" / "x.json").write_text(deep_array(DEEP))
    issuer, key = did_key_issuer("https://status.invalid/deep")
    doc = issuer.issue([draft(issuer, 1)])[0]
    for entry in doc["credentialStatus"]:
        path = tmp_path / "status" / cache_name(entry["statusListCredential"])
        path.write_text(deep_object(DEEP))
    report = verify_credential(doc, CacheSources(tmp_path), key=key.multikey)
    assert report.failed == ["status"] and "nested deeper" in report.check("status").detail
