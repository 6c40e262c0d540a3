"""`academy chain init|up|status|down` as a user runs them, in a real shell process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from labs.minichain.jsonrpc import call

ACADEMY = [sys.executable, "-m", "academy.cli"]


def run(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [*ACADEMY, *args],
        capture_output=True,
        text=True,
        timeout=180,
        env=dict(os.environ, COLUMNS="200"),
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"academy {' '.join(args)} failed: {proc.stderr}")
    return proc


def one_line_error(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, f"expected one line, got: {proc.stderr!r}"
    assert "Traceback" not in proc.stderr
    return lines[0]


def test_up_detach_prints_json_then_down_stops(tmp_path: Path) -> None:
    data = tmp_path / "chain"
    run("chain", "init", "--data", str(data), "--nodes", "4", "--consensus", "tbft")
    proc = run("chain", "up", "--data", str(data), "--detach")
    try:
        summary = json.loads(proc.stdout)
        assert len(summary["nodes"]) == 4 and len(summary["accounts"]) == 10
        for node in summary["nodes"]:
            assert node["rpc_url"].startswith("http://127.0.0.1:")
            os.kill(node["pid"], 0)  # alive
            assert call(node["rpc_url"], "eth_chainId") == hex(1337)
        acct = summary["accounts"][0]
        assert acct["address"].startswith("0x") and len(acct["private_key"]) in (64, 66)
        status = json.loads(run("chain", "status", "--data", str(data), "--json").stdout)
        assert all(row["running"] for row in status)
    finally:
        run("chain", "down", "--data", str(data))
    for node in summary["nodes"]:
        assert (
            not Path(f"/proc/{node['pid']}").exists()
            or b"labs.minichain.node" not in Path(f"/proc/{node['pid']}/cmdline").read_bytes()
        )


def test_missing_data_folder_is_one_line(tmp_path: Path) -> None:
    line = one_line_error(run("chain", "status", "--data", str(tmp_path / "nope"), check=False))
    assert "academy chain init" in line


def test_invalid_genesis_is_one_line(tmp_path: Path) -> None:
    data = tmp_path / "chain"
    run("chain", "init", "--data", str(data), "--nodes", "1", "--consensus", "solo")
    genesis = json.loads((data / "genesis.json").read_text())
    genesis["chain_id"] = -5
    (data / "genesis.json").write_text(json.dumps(genesis))
    line = one_line_error(run("chain", "up", "--data", str(data), "--detach", check=False))
    assert "chain_id" in line

    (data / "genesis.json").write_text("{not json")
    line = one_line_error(run("chain", "up", "--data", str(data), "--detach", check=False))
    assert "not valid JSON" in line

    genesis["chain_id"] = 1337
    genesis["validators"][0]["cert"] = None
    (data / "genesis.json").write_text(json.dumps(genesis))
    line = one_line_error(run("chain", "up", "--data", str(data), "--detach", check=False))
    assert "has no cert" in line


def test_bad_init_options_are_one_line(tmp_path: Path) -> None:
    assert "--nodes 1" in one_line_error(
        run(
            "chain",
            "init",
            "--data",
            str(tmp_path / "a"),
            "--nodes",
            "3",
            "--consensus",
            "solo",
            check=False,
        )
    )
    assert "permissionedWithCert" in one_line_error(
        run("chain", "init", "--data", str(tmp_path / "b"), "--identity", "open", check=False)
    )
    assert "use one of solo, raft, tbft" in one_line_error(
        run("chain", "init", "--data", str(tmp_path / "d"), "--consensus", "pbft", check=False)
    )
    run("chain", "init", "--data", str(tmp_path / "c"), "--nodes", "1", "--consensus", "solo")
    assert "--force" in one_line_error(
        run("chain", "init", "--data", str(tmp_path / "c"), check=False)
    )


def test_up_on_an_empty_folder_with_an_unknown_consensus_is_one_line(tmp_path: Path) -> None:
    data = tmp_path / "chain"
    line = one_line_error(
        run("chain", "up", "--data", str(data), "--consensus", "pbft", "--detach", check=False)
    )
    assert "use one of solo, raft, tbft" in line
    assert not (data / "genesis.json").exists()
