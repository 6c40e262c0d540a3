"""The chain explorer in a real Chromium (Playwright) against the real academy app (uvicorn on a
loopback port) and a learner's real minichain started by ``labs.sandbox`` (process backend) the way the hub starts it at spawn.

A learner sends a transaction to their own chain and finds it in the explorer, keyboard only;
the same page with ``Accept-Language: zh-CN`` speaks Chinese; another learner's chain is not found.
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import httpx
import pytest
from academy.db import session_scope
from academy.hub.labchains import sandbox_chains
from academy.pages.i18n import MESSAGES, pick_language
from academy.services.identity import ensure_user, issue_token
from academy.settings import Settings
from eth_abi import encode
from eth_account import Account
from eth_utils import function_signature_to_4byte_selector, to_checksum_address

from labs.minichain.waiting import wait_until
from labs.sandbox import SandboxManager
from tests.labs.sandbox.helpers import rpc
from tests.platform import appserver

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
COUNTER = Path(__file__).resolve().parents[2] / "labs" / "contracts" / "Counter.vy"
ARTIFACTS = Path(__file__).resolve().parents[3] / "test-artifacts" / "explorer"


@pytest.fixture
def chain(tmp_path: Path):
    """Ada's chain for a one-validator lab, started the way the hub does at spawn."""
    lab = tmp_path / "explore" / "lab.toml"
    lab.parent.mkdir()
    lab.write_text(
        '[lab]\nid = "explore"\n[chain]\nvalidators = 1\nconsensus = "solo"\n'
        'preload = [ { contract = "Counter.vy", name = "Counter", args = [7] } ]\n'
    )
    shutil.copy(COUNTER, lab.parent / "Counter.vy")
    manager = SandboxManager(state_dir=str(tmp_path / "sandbox"))
    try:
        spawn_env = asyncio.run(
            sandbox_chains(lab, tmp_path / "sandbox", explorer_base="/services/academy")("ada")
        )
        env = manager.status("ada", "explore")
        assert env.status == "running" and spawn_env["ACADEMY_RPC_URL"] == env.rpc_url
        yield env, spawn_env
    finally:
        manager.destroy("ada", "explore")


@pytest.fixture
def served(tmp_path: Path, chain):
    settings = Settings(
        state_dir=tmp_path / "state",
        sandbox_dir=tmp_path / "sandbox",
        courses_dir=tmp_path / "courses",
        grade_workers=0,
        credentials_auto_seconds=0,
    )
    with appserver.serve(settings) as served:
        tokens = {}
        with session_scope(served.engine) as session:
            for name in ("ada", "bob"):
                user, _ = ensure_user(session, name)
                tokens[name] = issue_token(session, user, ["learn"])[1]
            session.commit()
        yield {"origin": served.origin, "url": served.url, "tokens": tokens}


def send(env, to: str, value: int = 0, data: str = "0x", gas: int = 21000) -> str:
    """Sign with the chain's first funded account, send, and wait for the receipt."""
    key = env.accounts[0]["private_key"]
    sender = Account.from_key(key)
    url = env.rpc_url
    tx = {
        "to": to_checksum_address(to),
        "value": value,
        "data": data,
        "gas": gas,
        "gasPrice": 2 * 10**9,
        "nonce": int(rpc(url, "eth_getTransactionCount", [sender.address, "pending"]), 16),
        "chainId": int(rpc(url, "eth_chainId"), 16),
    }
    raw = "0x" + sender.sign_transaction(tx).raw_transaction.hex().removeprefix("0x")
    tx_hash = rpc(url, "eth_sendRawTransaction", [raw])
    wait_until(
        lambda: rpc(url, "eth_getTransactionReceipt", [tx_hash]),
        30,
        interval=0.2,
        message="the transfer was not mined in 30 s",
    )
    return str(tx_hash)


def test_learner_finds_their_transaction_in_the_explorer(served, chain) -> None:
    from playwright.sync_api import sync_playwright

    env, spawn_env = chain
    tx_hash = send(env, "0x" + "22" * 20, value=12345)
    counter = env.contracts["Counter"]["address"]
    bump = (
        "0x"
        + (function_signature_to_4byte_selector("bump(uint256)") + encode(["uint256"], [5])).hex()
    )
    bump_hash = send(env, counter, data=bump, gas=200_000)
    receipt = rpc(env.rpc_url, "eth_getTransactionReceipt", [tx_hash])
    number = int(receipt["blockNumber"], 16)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    auth = {"Authorization": f"token {served['tokens']['ada']}"}

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            ctx = browser.new_context(extra_http_headers=auth, locale="en-US")
            page = ctx.new_page()
            page.goto(f"{served['url']}/explorer/")
            page.click("#chains a:text('explore')")
            page.wait_for_selector("#blocks")
            # the link the learner's JupyterLab got at spawn is this very page
            assert page.url == served["origin"] + spawn_env["ACADEMY_EXPLORER_URL"]
            assert "Latest blocks" in page.inner_text("main")
            assert page.inner_text("#faults").startswith("None")
            validators = rpc(env.rpc_url, "minichain_validators")
            assert validators[0]["id"] in page.inner_text("#validators")
            page.screenshot(path=str(ARTIFACTS / "chain-en.png"), full_page=True)

            # keyboard only: the labelled search box takes the block number
            page.get_by_label("Block number or transaction hash").focus()
            page.keyboard.type(str(number))
            page.keyboard.press("Enter")
            page.wait_for_selector("#txs")
            assert tx_hash.lower() in page.inner_text("#txs").lower()
            page.screenshot(path=str(ARTIFACTS / "block-en.png"), full_page=True)

            page.click("#txs a")
            page.wait_for_selector("#receipt")
            assert "success" in page.inner_text("#receipt")
            assert "12345" in page.inner_text("#tx")
            page.screenshot(path=str(ARTIFACTS / "tx-en.png"), full_page=True)

            # a call to the preloaded contract, decoded with the ABI the sandbox recorded
            page.get_by_label("Block number or transaction hash").fill(bump_hash)
            page.keyboard.press("Enter")
            page.wait_for_selector("#receipt")
            assert page.inner_text("#call") == "Counter.bump(step=5)"
            sender = Account.from_key(env.accounts[0]["private_key"]).address.lower()
            assert f"Counter.Bumped(sender={sender}, count=12)" in page.inner_text("#logs")
            page.screenshot(path=str(ARTIFACTS / "call-en.png"), full_page=True)

            page.goto(f"{served['url']}/explorer/{env.env_id}/find?q=nonsense")
            assert "Type a block number" in page.inner_text("[role=alert]")

            zh = browser.new_context(
                extra_http_headers={**auth, "Accept-Language": "zh-CN,zh;q=0.9,en;q=0.5"},
                locale="zh-CN",
            )
            zpage = zh.new_page()
            zpage.goto(f"{served['url']}/explorer/{env.env_id}")
            zpage.wait_for_selector("#blocks")
            main = zpage.inner_text("main")
            assert "最新区块" in main and "验证节点" in main and "Latest blocks" not in main
            assert zpage.get_attribute("html", "lang") == "zh-CN"
            zpage.screenshot(path=str(ARTIFACTS / "chain-zh.png"), full_page=True)
        finally:
            browser.close()

    # another learner cannot open ada's chain, and sees an empty list of their own
    bob = {"Authorization": f"token {served['tokens']['bob']}"}
    other = httpx.get(f"{served['url']}/explorer/{env.env_id}", headers=bob)
    assert other.status_code == 404 and "of yours" in other.json()["detail"]
    mine = httpx.get(f"{served['url']}/explorer/", headers=bob)
    assert mine.status_code == 200 and "no lab chain yet" in mine.text
    assert httpx.get(f"{served['url']}/explorer/{env.env_id}").status_code == 401

    # nothing to show: the status says so, and the page leads back to the chain
    ada = {"Authorization": f"token {served['tokens']['ada']}"}
    chain_url = f"{served['url']}/explorer/{env.env_id}"
    missing = httpx.get(f"{chain_url}/block/99999", headers=ada)
    assert missing.status_code == 404 and "Not found on this chain." in missing.text
    assert f'/explorer/{env.env_id}">Back to the chain</a>' in missing.text
    no_tx = httpx.get(f"{chain_url}/tx/0x{'ab' * 32}", headers=ada)
    assert no_tx.status_code == 404 and "Back to the chain" in no_tx.text
    assert httpx.get(f"{chain_url}/tx/0x12", headers=ada).status_code == 422
    assert httpx.get(f"{chain_url}/find?q=nonsense", headers=ada).status_code == 422


def test_language_follows_accept_language() -> None:
    assert pick_language("zh-CN,zh;q=0.9,en;q=0.8") == "zh"
    assert pick_language("en-GB,zh;q=0.5") == "en"
    assert pick_language("fr, zh-TW;q=0.4") == "zh"
    assert pick_language("zh;q=0, en") == "en"
    assert pick_language(None) == "en"
    assert pick_language("garbage;;q=x") == "en"
    assert all(set(entry) == {"en", "zh"} and all(entry.values()) for entry in MESSAGES.values())
