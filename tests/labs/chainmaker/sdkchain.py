"""What the SDK tests share: `academy chain` runs, and SDK clients for any org's member."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import yaml
from chainmaker import ChainClient

from labs.minichain.jsonrpc import call as rpc
from labs.minichain.waiting import wait_until

ROOT = Path(__file__).resolve().parents[3]
ORG = "wx-org{}.chainmaker.org"
LONG = 180.0  # seconds a loaded machine may take to commit what a test waits for


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
    extra = str(crypto / org / "ca")
    for node in document["chain_client"]["nodes"]:
        roots = node.get("trust_root_paths")  # none where the chain serves plain text (SM2)
        if roots is not None and extra not in roots:
            node["trust_root_paths"] = [*roots, extra]
    return ChainClient.from_conf(document)


def ask(url: str, method: str, params: list) -> Any:
    """A JSON-RPC answer, or None from a node too busy to answer now (one catching up executes
    block after block): waits ask again."""
    try:
        return rpc(url, method, params, timeout=10.0)
    except httpx.HTTPError:
        return None


def heights(chain) -> list[int]:
    root = Path(chain["chainmaker"]["crypto_config"]).parent
    nodes = json.loads((root / "network.json").read_text())["nodes"]
    answers = [
        ask(f"http://127.0.0.1:{n['rpc_port']}", "eth_blockNumber", [])
        for n in nodes
        if n.get("pid")
    ]
    return [-1 if a is None else int(a, 16) for a in answers]


def settled(chain) -> None:
    """Wait until every running node has what the highest one committed: the SDK sends each
    request to any node of its config, as ChainMaker's does, so a read right after a write may
    otherwise reach a node that is behind on a loaded host."""
    all_nodes_past(chain, max(heights(chain)))


def all_nodes_past(chain, height: int) -> None:
    """Wait until every running node committed ``height`` (each node trusts what it committed)."""
    wait_until(lambda: min(heights(chain)) >= height, LONG, message=f"a node is below {height}")
