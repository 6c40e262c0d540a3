"""What runs inside a lab environment: create a learner's chain once, run its validators, preload.

This module is the entry point of the node image (``python3 -m labs.sandbox.launcher ...``) and is
also called in-process by the ``process`` backend, so both backends create, run and preload chains
the same way. It imports only what the node image holds (minichain, eth-account).

Subcommands (every one prints JSON on stdout, or one ``error: ...`` line on stderr and exits 1)::

    network   --data DIR --validators N ...   create the chain on first start, then run all N
                                              validators as child processes of this one (forked
                                              after the imports, so they share those pages)
    validator --data DIR --index I --peer-host-format 'v{i}'
                                              run one validator whose peers live in other containers
    init      --data DIR --validators N ...   create the chain and exit (the per-validator topology)
    zygote    --socket PATH                   import once, then fork a ``network`` per request
                                              (the process backend's way to start chains)
    info      --data DIR                      accounts, preloaded contracts, nodes and their heights
    preload   --data DIR PAYLOAD              deploy contracts (PAYLOAD: base64 of zlib'd JSON list of
                                              {name, data, abi}) unless already deployed
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import functools
import json
import os
import signal
import sys
import zlib
from pathlib import Path
from typing import Any

from labs.minichain.jsonrpc import RpcReplyError, call
from labs.minichain.waiting import wait_until

RPC_PORT = 8545
P2P_PORT = 26656


class LaunchError(RuntimeError):
    """Something the operator can fix; the message says what."""


# -------------------------------------------------------------------------------------------------
# Creating a chain
# -------------------------------------------------------------------------------------------------


def init_chain(
    data: Path,
    validators: int,
    consensus: str,
    identity: str,
    host: str = "127.0.0.1",
    rpc_port: int = RPC_PORT,
    p2p_port: int = P2P_PORT,
    fixed_ports: bool = True,
    params: dict | None = None,
) -> bool:
    """Create the chain in ``data`` unless it exists. Returns True when it was created now.

    Inside a container the ports are fixed (the container owns its network namespace), so the RPC
    URLs a learner sees never change; on a shared host (``fixed_ports=False``) the network module
    picks free ones at every start.
    """
    from labs.minichain.netconfig import NetworkConfig, init_network

    if (data / "genesis.json").exists() and (data / "network.json").exists():
        return False
    cfg = init_network(
        data,
        nodes=validators,
        consensus=consensus,
        identity_mode=identity,
        params=params or None,
        force=True,
    )
    cfg = NetworkConfig.load(data)
    cfg.host = host
    if fixed_ports:
        for i, node in enumerate(cfg.nodes):
            node.rpc_port = rpc_port + i
            node.p2p_port = p2p_port + i
    cfg.save()
    return True


# -------------------------------------------------------------------------------------------------
# Running validators
# -------------------------------------------------------------------------------------------------


def _run_node(
    data: Path, index: int, peer_host_format: str | None = None, listen: str = "0.0.0.0"
) -> None:
    """Run validator ``index`` in this process until SIGTERM (blocks)."""
    import asyncio
    import logging

    from labs.minichain.netconfig import NetworkConfig
    from labs.minichain.node import Node

    logging.basicConfig(
        level=logging.INFO,
        format=f"%(asctime)s node{index} %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    cfg = NetworkConfig.load(data)
    # In a container, listen on every interface of its network namespace: the learner's JupyterLab
    # reaches the RPC port from its own container on the learner's network, and nothing else is on
    # that network. On a shared host (process backend) listen on loopback only.
    cfg.host = listen
    node = Node(cfg, index)
    for pid, peer in node.transport.peers.items():
        j = next(k for k, n in enumerate(cfg.nodes) if n.id == pid)
        host = peer_host_format.format(i=j) if peer_host_format else "127.0.0.1"
        peer.address = (host, cfg.nodes[j].p2p_port)
    asyncio.run(node.run())


def _die_with_parent() -> None:
    """Linux: SIGKILL this process when its parent dies, so no validator outlives its launcher."""
    import ctypes

    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def run_network(data: Path, listen: str = "0.0.0.0") -> int:
    """Run every validator of ``data`` as a forked child; exit when told to or when all are gone.

    The heavy imports (py-evm, cryptography, aiohttp) happen once, before the forks, so the
    children share those pages copy-on-write: this is what makes one container for a 4-validator
    network cheaper than four containers.
    """
    import gc

    import labs.minichain.node  # noqa: F401 - imported before fork on purpose
    from labs.minichain.netconfig import NetworkConfig

    gc.collect()
    gc.freeze()  # shared pages stay shared: the children's collector leaves these objects alone

    cfg = NetworkConfig.load(data)
    children: dict[int, int] = {}
    for i in range(len(cfg.nodes)):
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                _die_with_parent()
                _run_node(data, i, listen=listen)
            except BaseException as exc:  # the child must never return into the parent's loop
                print(f"node{i}: {exc!r}", file=sys.stderr)
                code = 1
            finally:
                os._exit(code)
        children[pid] = i

    stopping = False

    def _stop(signum: int, frame: Any) -> None:
        nonlocal stopping
        stopping = True
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    print(json.dumps({"running": sorted(children.values())}), flush=True)
    try:
        wait_answering(local_urls(data), abort=lambda: stopping)
        print(json.dumps({"ready": True}), flush=True)
    except LaunchError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
    while children:
        try:
            pid, _status = os.wait()
        except ChildProcessError:
            break
        except InterruptedError:
            continue
        index = children.pop(pid, None)
        if index is not None and not stopping:
            print(f"node{index} exited; the others keep running", file=sys.stderr, flush=True)
    return 0


def serve_zygote(sock_path: Path, idle_exit: float = 300.0) -> int:
    """Import minichain once, then fork one chain launcher per request on a unix socket.

    Every chain started this way (and every validator it forks) shares the imported pages of this
    one process, so a learner's chain costs only its own state; and a chain starts without paying
    the imports again. A request is one JSON line ``{"data": DIR, "listen": ADDR, "log": FILE}``;
    the answer is ``{"pid": PID}`` of the new launcher, which runs in its own session and outlives
    the zygote. The zygote exits after ``idle_exit`` seconds without a request (the next start
    brings it back) or once its socket is gone (its state folder was deleted), so no caller has to
    remember to stop it. The loop itself is :func:`labs.sandbox.forkserver.serve_forks`.
    """
    import labs.minichain.node  # noqa: F401 - the point of the zygote

    from .forkserver import serve_forks

    def check(request: dict[str, Any]) -> None:
        Path(request["data"]), str(request["listen"]), str(request["log"])

    def child(request: dict[str, Any]) -> int:
        return run_network(Path(request["data"]), request["listen"])

    return serve_forks(sock_path, child, idle_exit=idle_exit, check=check)


def zygote_request(sock_path: Path, data: Path, listen: str, log: Path) -> int:
    """Ask a running zygote for a chain launcher; returns its pid (raises OSError if none)."""
    from .forkserver import fork_request

    try:
        return fork_request(sock_path, {"data": str(data), "listen": listen, "log": str(log)})
    except RuntimeError as exc:
        raise LaunchError(f"the chain zygote refused: {exc}") from None


# -------------------------------------------------------------------------------------------------
# Information and preloading
# -------------------------------------------------------------------------------------------------


def _rpc(url: str, method: str, params: list | None = None, timeout: float = 5.0) -> Any:
    """One JSON-RPC call; LaunchError with the node's message when it answers with an error.

    Over a plain HTTP connection (``pooled=False``): a chain launcher forked from the zygote must
    not import httpx or build a client per fork just to see its validators answer.
    """
    try:
        return call(url, method, params, timeout, pooled=False)
    except RpcReplyError as exc:
        raise LaunchError(f"{method}: {exc}") from None


def local_urls(data: Path, host: str = "127.0.0.1") -> list[str]:
    """RPC URLs of the validators as seen from where the chain runs."""
    from labs.minichain.netconfig import NetworkConfig

    cfg = NetworkConfig.load(data)
    return [f"http://{host}:{n.rpc_port}" for n in cfg.nodes]


def wait_answering(urls: list[str], timeout: float = 60.0, abort: Any = None) -> None:
    """Block until every URL answers JSON-RPC (or ``abort()`` turns true)."""
    pending = list(urls)

    def late() -> str:
        return f"{pending[0]} did not answer within {timeout:.0f} s"

    def all_answer() -> bool:
        while pending:
            try:
                _rpc(pending[0], "web3_clientVersion", timeout=1.0)
            except (OSError, LaunchError, ValueError):
                if abort is not None and abort():
                    raise LaunchError(late()) from None
                return False
            pending.pop(0)
        return True

    try:
        wait_until(all_answer, timeout, interval=0.05, message=late)
    except TimeoutError as exc:
        raise LaunchError(str(exc)) from None


def info(data: Path, urls: list[str] | None = None) -> dict:
    """Accounts, preloaded contracts and per-node heights of the chain in ``data``."""
    accounts = json.loads((data / "accounts.json").read_text())
    contracts_path = data / "contracts.json"
    contracts = json.loads(contracts_path.read_text()) if contracts_path.exists() else {}
    nodes = []
    for url in urls or local_urls(data):
        try:
            height = int(_rpc(url, "eth_blockNumber", timeout=2.0), 16)
        except (OSError, LaunchError, ValueError):
            height = None
        nodes.append({"url": url, "height": height})
    return {"accounts": accounts, "contracts": contracts, "nodes": nodes}


def encode_payload(items: list[dict]) -> str:
    """The compact form ``preload`` takes on its command line."""
    return base64.b64encode(zlib.compress(json.dumps(items).encode(), 9)).decode()


def decode_payload(text: str) -> list[dict]:
    return json.loads(zlib.decompress(base64.b64decode(text)))


def preload(data: Path, items: list[dict], url: str | None = None, timeout: float = 60.0) -> dict:
    """Deploy each ``{name, data, abi}`` from the first development account, once per name.

    Addresses go to ``data/contracts.json``, so a restarted environment knows its contracts and a
    second call deploys nothing.
    """
    from eth_account import Account

    url = url or local_urls(data)[0]
    path = data / "contracts.json"
    deployed: dict = json.loads(path.read_text()) if path.exists() else {}
    todo = [it for it in items if it["name"] not in deployed]
    if not todo:
        return deployed
    signer = Account.from_key(json.loads((data / "accounts.json").read_text())[0]["private_key"])
    chain_id = int(_rpc(url, "eth_chainId"), 16)
    nonce = int(_rpc(url, "eth_getTransactionCount", [signer.address, "pending"]), 16)
    gas_price = int(_rpc(url, "eth_gasPrice"), 16)
    for item in todo:
        call = {"from": signer.address, "data": item["data"]}
        gas = int(int(_rpc(url, "eth_estimateGas", [call]), 16) * 1.2) + 21_000
        tx = {
            "nonce": nonce,
            "gas": gas,
            "gasPrice": gas_price,
            "value": 0,
            "data": item["data"],
            "chainId": chain_id,
        }
        raw = signer.sign_transaction(tx).raw_transaction
        tx_hash = _rpc(url, "eth_sendRawTransaction", ["0x" + raw.hex()])
        try:
            receipt = wait_until(
                functools.partial(_rpc, url, "eth_getTransactionReceipt", [tx_hash]),
                timeout,
                interval=0.05,
                message=f"no receipt for the deployment of {item['name']}",
            )
        except TimeoutError as exc:
            raise LaunchError(str(exc)) from None
        if int(receipt["status"], 16) != 1:
            raise LaunchError(f"deployment of {item['name']} reverted: check its constructor args")
        deployed[item["name"]] = {"address": receipt["contractAddress"], "abi": item.get("abi", [])}
        nonce += 1
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(deployed, indent=1))
        os.replace(tmp, path)
    return deployed


# -------------------------------------------------------------------------------------------------
# Command line
# -------------------------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="labs.sandbox.launcher", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    for name in ("network", "init"):
        s = sub.add_parser(name)
        s.add_argument("--data", type=Path, default=Path("/data"))
        s.add_argument("--validators", type=int, default=4)
        s.add_argument("--consensus", default="tbft")
        s.add_argument("--identity", default="permissionedWithCert")
        s.add_argument("--listen", default="0.0.0.0", help="address the validators listen on")
        s.add_argument("--param", action="append", default=[], help="consensus NAME=JSON value")
    s = sub.add_parser("zygote")
    s.add_argument("--socket", type=Path, required=True)
    s.add_argument("--idle-exit", type=float, default=300.0, help="seconds without a request")
    s = sub.add_parser("validator")
    s.add_argument("--data", type=Path, default=Path("/data"))
    s.add_argument("--index", type=int, required=True)
    s.add_argument("--peer-host-format", default="v{i}")
    s = sub.add_parser("info")
    s.add_argument("--data", type=Path, default=Path("/data"))
    s.add_argument("--urls", default="", help="comma-separated RPC URLs (default: loopback)")
    s = sub.add_parser("preload")
    s.add_argument("--data", type=Path, default=Path("/data"))
    s.add_argument("--urls", default="", help="comma-separated RPC URLs (default: loopback)")
    s.add_argument("payload")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command in ("network", "init"):
            params = {}
            for item in args.param:
                name, _, value = item.partition("=")
                params[name] = json.loads(value)
            created = init_chain(
                args.data, args.validators, args.consensus, args.identity, params=params
            )
            if args.command == "init":
                print(json.dumps({"created": created}))
                return 0
            return run_network(args.data, args.listen)
        if args.command == "zygote":
            return serve_zygote(args.socket, args.idle_exit)
        if args.command == "validator":
            _run_node(args.data, args.index, args.peer_host_format)
            return 0
        if args.command == "info":
            print(json.dumps(info(args.data, args.urls.split(",") if args.urls else None)))
            return 0
        if args.command == "preload":
            urls = args.urls.split(",") if args.urls else local_urls(args.data)
            wait_answering(urls)
            print(json.dumps(preload(args.data, decode_payload(args.payload), urls[0])))
            return 0
    except (LaunchError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 2


if __name__ == "__main__":
    sys.exit(main())
