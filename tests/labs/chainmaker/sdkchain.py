"""What the SDK tests share: `academy chain` runs, and SDK clients for any org's member."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml
from chainmaker import ChainClient

ROOT = Path(__file__).resolve().parents[3]
ORG = "wx-org{}.chainmaker.org"


def academy(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=f"{ROOT / 'platform'}:{ROOT}")
    return subprocess.run(
        [sys.executable, "-c", "from academy.cli import main; main()", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )


def admins(chain: dict, orgs: Any) -> list[dict]:
    """Endorser entries (``create_endorsers``) for admin1 of each org number in ``orgs``."""
    crypto = chain["chainmaker"]["crypto_config"]
    return [
        {
            "org_id": ORG.format(i),
            "user_sign_crt_file_path": f"{crypto}/{ORG.format(i)}/user/admin1/admin1.sign.crt",
            "user_sign_key_file_path": f"{crypto}/{ORG.format(i)}/user/admin1/admin1.sign.key",
        }
        for i in orgs
    ]


def member_client(
    chain: dict, org: str, user: str, crypto: Path | None = None, tls_from: Path | None = None
) -> ChainClient:
    """An SDK client signing as ``user`` of ``org`` (files under ``crypto``, the chain's own by
    default), connecting with the TLS pair of ``tls_from`` (the user's own by default)."""
    crypto = crypto or Path(chain["chainmaker"]["crypto_config"])
    document = yaml.safe_load(Path(chain["chainmaker"]["sdk_config"]).read_text())
    folder = crypto / org / "user" / user
    tls = tls_from or folder
    document["chain_client"].update(
        org_id=org,
        user_key_file_path=str(tls / f"{tls.name}.tls.key"),
        user_crt_file_path=str(tls / f"{tls.name}.tls.crt"),
        user_sign_key_file_path=str(folder / f"{user}.sign.key"),
        user_sign_crt_file_path=str(folder / f"{user}.sign.crt"),
    )
    roots = document["chain_client"]["nodes"][0]["trust_root_paths"]
    extra = str(crypto / org / "ca")
    for node in document["chain_client"]["nodes"]:
        node["trust_root_paths"] = [*roots, extra] if extra not in roots else roots
    return ChainClient.from_conf(document)
