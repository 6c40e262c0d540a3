"""Verifying certificates safely: a self-made certificate never passes as an institution's, and the
public page and API fetch nothing from the addresses a certificate names (issue 21, findings 1
and 4). ``academy verify`` on the command line may fetch, within a deadline for the whole fetch,
a size cap and few redirects, and never from a private or loopback address unless asked."""

from __future__ import annotations

import copy
import http.server
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from academy.credentials import proofs
from academy.credentials.fetch import FetchError, FetchLimits, address_allowed, fetch_json
from academy.credentials.keys import IssuerKey, did_key, format_time
from academy.credentials.statuslist import status_entry
from academy.credentials.verify import OnlineSources, verify_credential
from academy.services import credentials as svc

from tests.platform.credentials.harness import send_json

from .builders import LAB
from .conftest import BASE, World, WorldOn

PAGE = BASE.removesuffix("/api")


class Target:
    """A loopback HTTP server that counts the requests it gets: JSON, a slow drip, a huge body,
    an endless redirect."""

    def __init__(self) -> None:
        self.hits: list[str] = []
        target = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                target.hits.append(self.path)
                if self.path.startswith("/drip"):
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.end_headers()
                    try:
                        for _ in range(600):  # one byte every 0.1 s: 60 s in all
                            self.wfile.write(b" ")
                            self.wfile.flush()
                            time.sleep(0.1)
                    except OSError:
                        pass
                    return
                if self.path.startswith("/big"):
                    self.send_response(200)
                    self.end_headers()
                    self.wfile.write(b"[" + b"1," * (2 * 1024 * 1024) + b"1]")
                    return
                if self.path.startswith("/loop"):
                    self.send_response(302)
                    self.send_header("Location", "/loop")
                    self.end_headers()
                    return
                send_json(self, 200, {"id": self.path})

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def target() -> Iterator[Target]:
    server = Target()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def issued(world_on: WorldOn) -> tuple[World, dict]:
    """The world, with one certificate academy issued to learner-a (University A)."""
    world = world_on("sqlite", grade_workers=0, credentials_auto_seconds=0)
    doc = json.loads(world.issue_credential("cohort_a", "learner-a", LAB, 3.0).document)
    return world, doc


def forged(original: dict, issuer: dict, status: list | None = None) -> dict:
    """``original`` re-signed by a key of the forger's own, naming ``issuer``."""
    doc = copy.deepcopy(original)
    doc.pop("proof", None)
    doc.pop("credentialStatus", None)
    doc["issuer"] = {**doc["issuer"], **issuer}
    if status:
        doc["credentialStatus"] = status
    key = IssuerKey.generate()
    if doc["issuer"]["id"].startswith("did:key:"):
        doc["issuer"]["id"] = did_key(key.multikey)
    return proofs.sign(doc, key, format_time(svc._now()))


def verify_api(world: World, doc: dict) -> dict:
    r = world.client.post(f"{BASE}/credentials/verify", json=doc)
    assert r.status_code == 200, r.text
    return r.json()


def verify_page(world: World, doc: dict) -> str:
    r = world.client.post(f"{PAGE}/verify", data={"document": json.dumps(doc)})
    assert r.status_code == 200, r.text
    return r.text


def test_academy_s_own_certificate_is_valid_with_the_name_academy_holds(issued) -> None:
    world, doc = issued
    report = verify_api(world, doc)
    assert report["verdict"] == "valid" and report["valid"], report
    assert report["issuer"]["known"] is True and report["issuer"]["name"] == "University A"
    html = verify_page(world, doc)
    assert 'data-verdict="valid"' in html and 'data-known="yes"' in html


def test_a_self_signed_certificate_with_a_university_s_name_is_not_valid(issued) -> None:
    """Signed by any did:key, named "University A", no anchor, no status: every check passes,
    and still academy does not call it valid, and marks the name as unverified."""
    world, doc = issued
    fake = forged(doc, {"id": "did:key:", "name": "University A"})
    report = verify_api(world, fake)
    assert report["verdict"] == "issuer_unknown" and report["valid"] is False, report["checks"]
    assert report["issuer"]["known"] is False and report["issuer"]["name"] is None
    assert all(c["outcome"] != "fail" for c in report["checks"]), report
    html = verify_page(world, fake)
    assert 'data-verdict="issuer_unknown"' in html and 'data-verdict="valid"' not in html
    assert "signature valid, issuer unknown" in html
    assert 'data-known="no"' in html and "unverified" in html
    zh = world.client.post(
        f"{PAGE}/verify",
        data={"document": json.dumps(fake)},
        headers={"Accept-Language": "zh-CN"},
    )
    assert "签名有效，颁发机构未知" in zh.text and "未经核实" in zh.text


def test_academy_s_issuer_url_with_another_key_fails(issued) -> None:
    world, doc = issued
    fake = forged(doc, {})
    report = verify_api(world, fake)
    assert report["verdict"] == "invalid" and report["issuer"]["known"] is False, report
    assert next(c for c in report["checks"] if c["name"] == "issuer key")["outcome"] == "fail"


def test_page_and_api_fetch_nothing_a_certificate_names(issued, target: Target) -> None:
    """An issuer profile and a status list on a loopback port, or on a server that drips one
    byte at a time (it would hold a worker thread for a minute): academy asks none of them, and
    says nothing about what is (or is not) listening there."""
    world, doc = issued
    fake = forged(
        doc,
        {"id": f"{target.url}/issuer", "name": "University A"},
        [status_entry(f"{target.url}/status", 3, "revocation")],
    )
    closed = forged(
        doc,
        {"id": "http://127.0.0.1:9/issuer", "name": "x"},
        [status_entry("http://127.0.0.1:9/status", 3, "revocation")],
    )
    dripping = forged(
        doc,
        {"id": f"{target.url}/drip/issuer", "name": "University A"},
        [status_entry(f"{target.url}/drip/status", 3, "revocation")],
    )
    for document in (fake, closed, dripping):
        report = verify_api(world, document)
        assert report["verdict"] != "valid" and report["issuer"]["known"] is False
        html = verify_page(world, document)
        assert 'data-verdict="valid"' not in html
        for leak in ("refused", "Errno", "timed out", "HTTP 200", "ConnectError"):
            assert leak not in html and leak not in json.dumps(report), leak
    assert target.hits == []


def test_the_verify_page_answers_4xx_to_wrongly_typed_input(issued) -> None:
    world, doc = issued
    bad = [{"evidence": 5}, {**doc, "evidence": 5}, {**doc, "credentialSubject": "x"},
           {**doc, "issuer": 7}, {**doc, "validFrom": []}, [1, 2], 5, "text"]  # fmt: skip
    for value in bad:
        r = world.client.post(f"{PAGE}/verify", data={"document": json.dumps(value)})
        assert 400 <= r.status_code < 500, (value, r.status_code, r.text[:200])
        r = world.client.post(f"{BASE}/credentials/verify", json=value)
        assert r.status_code < 500, (value, r.status_code)


def test_deep_or_huge_input_gets_a_4xx_from_the_api_and_the_page(issued) -> None:
    """100,000 levels of arrays or objects, and a body over 1 MiB: one clear 4xx each from the
    public API and the page, never a crash of the service (issue 14, finding 4)."""
    world, doc = issued
    deep_bodies = ["[" * 100_000 + "]" * 100_000, '{"a":' * 100_000 + "1" + "}" * 100_000]
    for body in deep_bodies:
        r = world.client.post(
            f"{BASE}/credentials/verify",
            content=body,
            headers={"Content-Type": "application/json"},
        )
        assert r.status_code == 422 and "nested deeper than 64" in r.text, r.text[:300]
        r = world.client.post(f"{PAGE}/verify", data={"document": body})
        assert 400 <= r.status_code < 500  # 400 when the form itself is over its part size
        upload = {"credential": ("deep.json", body.encode(), "application/json")}
        r = world.client.post(f"{PAGE}/verify", files=upload)
        assert r.status_code == 422 and "nested deeper than 64" in r.text
    nested = copy.deepcopy(doc)
    inner: list = []
    for _ in range(100):
        inner = [inner]
    nested["credentialSubject"]["deep"] = inner
    r = world.client.post(f"{BASE}/credentials/verify", json=nested)
    assert r.status_code == 422 and "nested deeper" in r.text
    huge = json.dumps({**doc, "padding": "x" * (1024 * 1024)})
    r = world.client.post(
        f"{BASE}/credentials/verify", content=huge, headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 413, r.text[:300]
    assert verify_api(world, doc)["verdict"] == "valid"  # the service still answers


# -- the command line: fetching within bounds ---------------------------------------------------


def test_private_and_loopback_addresses_are_refused_unless_allowed() -> None:
    for ip in ("127.0.0.1", "10.1.2.3", "192.168.0.1", "172.16.0.1", "169.254.169.254",
               "100.64.0.1", "0.0.0.0", "::1", "fe80::1", "fc00::1", "::ffff:127.0.0.1"):  # fmt: skip
        assert not address_allowed(ip), ip
    assert address_allowed("8.8.8.8") and address_allowed("2001:4860:4860::8888")
    assert address_allowed("127.0.0.1", allow_private=True)


def test_cli_fetch_refuses_loopback_by_default(target: Target) -> None:
    with pytest.raises(FetchError, match="private, loopback"):
        fetch_json(f"{target.url}/list")
    assert target.hits == []
    assert fetch_json(f"{target.url}/list", FetchLimits(allow_private=True)) == {"id": "/list"}
    for url in ("file:///etc/passwd", "gopher://127.0.0.1/", "ftp://example.org/x"):
        with pytest.raises(FetchError, match="only http and https"):
            fetch_json(url, FetchLimits(allow_private=True))


def test_cli_fetch_has_a_total_deadline_against_a_slow_drip(target: Target) -> None:
    """One byte every 0.1 s never trips a per-read timeout; the deadline covers the whole fetch."""
    limits = FetchLimits(deadline=1.0, allow_private=True)
    started = time.monotonic()
    with pytest.raises(FetchError, match="deadline"):
        fetch_json(f"{target.url}/drip", limits)
    assert time.monotonic() - started < 5.0
    sources = OnlineSources(None, limits=limits)
    started = time.monotonic()
    doc = {"issuer": f"{target.url}/drip"}
    assert sources.issuer_keys(doc["issuer"]) is None
    assert time.monotonic() - started < 5.0


def test_cli_fetch_caps_size_and_redirects(target: Target) -> None:
    limits = FetchLimits(allow_private=True, max_bytes=64 * 1024, max_redirects=3)
    with pytest.raises(FetchError, match="larger than"):
        fetch_json(f"{target.url}/big", limits)
    with pytest.raises(FetchError, match="more than 3 redirects"):
        fetch_json(f"{target.url}/loop", limits)
    assert target.hits.count("/loop") == 4


def test_cli_verify_of_a_loopback_status_list_needs_the_option(issued, target: Target) -> None:
    world, doc = issued
    fake = forged(
        doc,
        {"id": "did:key:", "name": "x"},
        [status_entry(f"{target.url}/status", 3, "revocation")],
    )
    report = verify_credential(fake, OnlineSources(None))
    assert "private, loopback" in report.check("status").detail and target.hits == []
    report = verify_credential(fake, OnlineSources(None, limits=FetchLimits(allow_private=True)))
    assert target.hits == ["/status"]
    assert report.check("status").outcome == "fail"  # not a status list, but it was fetched
