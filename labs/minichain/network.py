"""Start, watch and stop a whole network of validator processes on this machine.

Each validator is its own OS process (so a test or a lab can ``kill -9`` one), started detached in its
own session with its log in ``node<i>/node.log``; pids are kept in ``network.json`` so that
``academy chain down`` finds them from any shell. A caller that runs the network only while it runs
itself (``academy up``) asks for ``follow_caller``: the nodes then stop when it dies, even by
``kill -9`` (:mod:`labs.minichain.lifetime`).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import TypeGuard

import httpx

from . import procfs
from .genesis import load_genesis
from .jsonrpc import call as rpc
from .lifetime import follow_parent_preexec
from .netconfig import NetworkConfig, NetworkError
from .ports import free_ports, port_free
from .waiting import wait_until

READY_TIMEOUT = 60.0


def _is_our_node(pid: int | None, cfg: NetworkConfig, index: int) -> TypeGuard[int]:
    """True when ``pid`` is alive and is validator ``index`` of this network.

    Pids get reused, also by another network's validator: a stale ``network.json`` must never
    make ``stop_network`` kill, or ``wait_ready`` wait on, a validator of another network. So
    the check reads the process's own ``--network`` and ``--index`` arguments.
    """
    if not pid:
        return False
    try:
        args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        if b"labs.minichain.node" not in args:
            return False
        root = Path(os.fsdecode(args[args.index(b"--network") + 1]))
        theirs = int(args[args.index(b"--index") + 1])
        if not root.is_absolute():
            root = Path(os.readlink(f"/proc/{pid}/cwd")) / root
    except (OSError, ValueError, IndexError):
        return False
    return theirs == index and root.resolve() == cfg.root.resolve()


def _exec_pending(pid: int | None) -> bool:
    """True for a live child of ours whose command line is still empty: it has just exec'd.

    ``Popen`` returns once the child's exec is past its point of no return, but the kernel fills
    in the new command line a moment later; under load a read right after ``Popen`` finds it
    empty most of the time (measured here: 285 of 300 with the two cores busy, 2 of 300 idle).
    Such a child is starting, not gone. Only our own children count: a kernel thread's command
    line is empty too.
    """
    if not pid:
        return False
    try:
        if Path(f"/proc/{pid}/cmdline").read_bytes():
            return False
    except OSError:
        return False
    st = procfs.stat(pid)
    return st is not None and st[0] != "Z" and st[1] == os.getpid()


def assign_ports(cfg: NetworkConfig) -> None:
    """Give every node that is not running ports that are free now (keeps them when still free)."""
    for i, node in enumerate(cfg.nodes):
        if _is_our_node(node.pid, cfg, i):
            continue
        ports = (node.p2p_port, node.rpc_port, node.grpc_port)
        if not all(port_free(p, cfg.host) for p in ports):
            node.p2p_port, node.rpc_port, node.grpc_port = free_ports(3, cfg.host)


def start_node(cfg: NetworkConfig, index: int, follow_caller: bool = False) -> int:
    """Spawn validator ``index`` (detached); returns its pid. Does not wait for it to be ready.

    With ``follow_caller`` the node gets SIGTERM (its ordinary stop) when the calling thread's
    process dies; call it from the main thread then (see :mod:`labs.minichain.lifetime`).
    """
    node = cfg.nodes[index]
    if _is_our_node(node.pid, cfg, index):
        return node.pid
    home = cfg.node_home(index)
    logf = open(home / "node.log", "ab")  # noqa: SIM115 - handed to the child
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "labs.minichain.node",
            "--network",
            str(cfg.root.resolve()),
            "--index",
            str(index),
        ],
        stdout=logf,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
        env=env,
        preexec_fn=follow_parent_preexec() if follow_caller else None,
    )
    logf.close()
    node.pid = proc.pid
    cfg.save()
    return proc.pid


def _log_tail(cfg: NetworkConfig, index: int, lines: int = 5) -> str:
    try:
        text = (cfg.node_home(index) / "node.log").read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " | ".join(text[-lines:])


def wait_ready(
    cfg: NetworkConfig, indices: list[int] | None = None, timeout: float = READY_TIMEOUT
) -> None:
    """Block until every given node answers JSON-RPC; fail with the node's last log lines."""
    pending = set(range(len(cfg.nodes)) if indices is None else indices)

    def all_answer() -> bool:
        for i in sorted(pending):
            pid = cfg.nodes[i].pid
            if _exec_pending(pid):
                continue
            if not _is_our_node(pid, cfg, i):
                raise NetworkError(f"node{i} exited while starting: {_log_tail(cfg, i)}")
            try:
                rpc(cfg.rpc_url(i), "web3_clientVersion", timeout=1.0)
                pending.discard(i)
            except (httpx.HTTPError, RuntimeError, ValueError):
                pass
        return not pending

    try:
        wait_until(
            all_answer,
            timeout,
            message=lambda: f"nodes {sorted(pending)} did not answer within {timeout:.0f} s",
        )
    except TimeoutError as exc:
        raise NetworkError(str(exc)) from None


def start_network(root: Path, wait: bool = True, follow_caller: bool = False) -> NetworkConfig:
    """Start every node that does not run yet (``follow_caller``: see :func:`start_node`)."""
    cfg = NetworkConfig.load(root)
    assign_ports(cfg)
    cfg.save()
    chainmaker = load_genesis(cfg.genesis_path).chainmaker
    if chainmaker is not None:  # the SDK's config names the gRPC ports this start picked
        cfg.write_sdk_config(chainmaker)
    for i in range(len(cfg.nodes)):
        start_node(cfg, i, follow_caller)
    if wait:
        wait_ready(cfg)
    return cfg


def kill_node(cfg: NetworkConfig, index: int, sig: int = signal.SIGKILL) -> None:
    pid = cfg.nodes[index].pid
    if _is_our_node(pid, cfg, index):
        os.kill(pid, sig)
        _reap(pid, cfg, index)
    cfg.nodes[index].pid = None
    cfg.save()


def _reap(pid: int, cfg: NetworkConfig, index: int, timeout: float = 10.0) -> bool:
    def gone() -> bool:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        return not _is_our_node(pid, cfg, index)

    try:
        return wait_until(gone, timeout, interval=0.02)
    except TimeoutError:
        return False


def stop_network(root: Path) -> int:
    """Stop every running node (SIGTERM, then SIGKILL after a grace period). Returns how many."""
    cfg = NetworkConfig.load(root)
    running = [(i, n.pid) for i, n in enumerate(cfg.nodes) if _is_our_node(n.pid, cfg, i)]
    for _, pid in running:
        os.kill(pid, signal.SIGTERM)
    for i, pid in running:
        if not _reap(pid, cfg, i, 5.0):
            os.kill(pid, signal.SIGKILL)
            _reap(pid, cfg, i)
        cfg.nodes[i].pid = None
    for n in cfg.nodes:
        n.pid = None
    cfg.save()
    return len(running)


def network_status(root: Path) -> list[dict]:
    cfg = NetworkConfig.load(root)
    out = []
    for i, n in enumerate(cfg.nodes):
        row: dict = {"index": i, "id": n.id, "rpc_url": cfg.rpc_url(i), "pid": n.pid}
        row["running"] = _is_our_node(n.pid, cfg, i)
        if row["running"]:
            try:
                st = rpc(cfg.rpc_url(i), "minichain_status", timeout=2.0)
                row.update(height=st["height"], peers=len(st["peers"]), halted=st["halted"])
            except (httpx.HTTPError, RuntimeError, ValueError):
                row["height"] = None
        out.append(row)
    return out
