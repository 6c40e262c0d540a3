"""One validator process: storage, the EVM application, a consensus engine, peers and JSON-RPC.

The node is the real-world :class:`~labs.minichain.consensus.base.Host`: it gives its engine sockets
(``p2p``), a clock and timers (asyncio), signatures (the validator's Ed25519 key) and the application
(``execution``). The fault switches a lab uses (stop / resume this validator, cut it off from some
peers, make it byzantine) live here too, because they are about the node, not about the protocol.

Run one with ``python -m labs.minichain.node --network DIR --index I``; ``labs.minichain.network``
starts and stops whole networks.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import hashlib
import logging
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import msgpack
from aiohttp import web

from .consensus import Block, ConsensusEngine, from_wire, load_engine, to_wire
from .execution import ExecutionApp, MiniBlock, TxError
from .genesis import Genesis, load_genesis
from .identity import Membership, load_key
from .netconfig import NetworkConfig, NodeEntry
from .p2p import Transport
from .rpc import RpcDispatcher, make_rpc_app
from .storage import Store

log = logging.getLogger("minichain.node")

CLIENT_VERSION = "minichain/0.1.0"


class NodeHost:
    """The Host an engine sees. One per engine instance, so a replaced engine's timers go quiet."""

    def __init__(self, node: Node, generation: int) -> None:
        self.node = node
        self.generation = generation
        self.node_id = node.id
        self.validators: Sequence[str] = [v.id for v in node.genesis.validators]
        self.engine: ConsensusEngine | None = None

    # -- clock, timers, messages --------------------------------------------------------------
    def now(self) -> float:
        return time.monotonic()

    def _live(self) -> bool:
        return self.generation == self.node.generation and not self.node.halted

    def send(self, to: str, msg: Any) -> None:
        if self._live():
            self.node.transport.send(to, ["c", to_wire(msg)])

    def broadcast(self, msg: Any) -> None:
        if self._live():
            self.node.transport.broadcast(["c", to_wire(msg)])

    def set_timer(self, delay: float, tag: tuple) -> None:
        asyncio.get_running_loop().call_later(max(0.0, delay), self._fire, tag)

    def _fire(self, tag: tuple) -> None:
        if self._live() and self.engine is not None:
            self.node.guard(self.engine.on_timer, tag)

    def validators_at(self, height: int) -> Sequence[str]:
        """The validators of ``height`` (the next one): those of the chain configuration the
        committed head holds, once a ChainMaker update changed its consensus nodes."""
        return self.node.validators_after_head()

    # -- identity ------------------------------------------------------------------------------
    def sign(self, data: bytes) -> bytes:
        return self.node.key.sign(data)

    def verify(self, signer: str, data: bytes, signature: bytes) -> bool:
        return self.node.membership.verify(signer, data, signature)

    # -- application ---------------------------------------------------------------------------
    def committed_height(self) -> int:
        return self.node.app.committed_height()

    def committed_block(self, height: int) -> tuple[MiniBlock, Any] | None:
        found = self.node.app.committed_block(height)
        if found is None:
            return None
        block, proof = found
        return block, (
            from_wire(msgpack.unpackb(proof, raw=False), MiniBlock.decode) if proof else None
        )

    def has_pending_transactions(self) -> bool:
        return self.node.app.has_pending()

    def create_block(self, height: int, variant: int = 0) -> MiniBlock:
        return self.node.app.build_block(
            height,
            self.node.coinbase,
            time.time(),
            extra=bytes.fromhex(self.node_id)[:20],
            variant=variant,
        )

    def validate_block(self, block: Block) -> bool:
        return self.node.app.validate_block(block)

    def commit_block(self, block: Block, proof: Any) -> None:
        # Engines commit what this host built or decoded, so a MiniBlock; re-decode anything else.
        mini = block if isinstance(block, MiniBlock) else MiniBlock.decode(block.encode())
        self.node.app.commit_block(mini, msgpack.packb(to_wire(proof), use_bin_type=True))
        self.node.on_commit(mini)

    def save_state(self, state: dict) -> None:
        self.node.store.save_consensus_state(msgpack.packb(to_wire(state), use_bin_type=True))

    def load_state(self) -> dict | None:
        raw = self.node.store.load_consensus_state()
        return from_wire(msgpack.unpackb(raw, raw=False), MiniBlock.decode) if raw else None

    def log(self, event: str, **fields: Any) -> None:
        self.node.events.append({"t": round(time.time(), 3), "event": event, **_plain_deep(fields)})


class Node:
    """A validator: wires storage, application, engine, transport and RPC together."""

    def __init__(self, network: NetworkConfig, index: int) -> None:
        self.network = network
        self.entry: NodeEntry = network.nodes[index]
        self.home = network.node_home(index)
        self.genesis: Genesis = load_genesis(network.genesis_path)
        self.key = load_key(self.home / "node.key")
        self.membership = Membership(self.genesis)
        self.id = self.entry.id
        cert_path = self.home / "node.crt"
        self.cert = cert_path.read_text() if cert_path.exists() else None
        if self.id not in self.membership.members and not (
            self.cert is not None and self.membership.learn(self.id, self.cert)
        ):
            reason = self.membership.rejected.get(self.id, "not listed in genesis.validators")
            raise SystemExit(
                f"node {self.id[:8]} cannot join: {reason} (a node added later needs a "
                "certificate from the consortium CA in node.crt)"
            )
        self.coinbase = bytes.fromhex(self.id)[:20]
        self.store = Store(self.home / "chain.db")
        self.app = ExecutionApp(self.store, self.genesis)
        self.engine_cls = load_engine(self.genesis.consensus.engine)
        self.engine_params = dict(self.genesis.consensus.params)
        self.events: collections.deque[dict] = collections.deque(maxlen=200)
        self.generation = 0
        self.halted = False
        self.byzantine: str | None = None
        self.partitioned_from: list[str] = []
        self.engine: ConsensusEngine | None = None
        self.host: NodeHost | None = None
        self._gossip: list[bytes] = []
        self.transport = Transport(
            self.id,
            self.key,
            hashlib.sha256(self.genesis.hash_input()).digest(),
            self.membership,
            (network.host, self.entry.p2p_port),
            {n.id: (network.host, n.p2p_port) for n in network.nodes},
            self.on_frame,
            cert=self.cert,
        )
        self.dispatcher = RpcDispatcher(self.app, node=self)
        self.started = time.time()
        self._cm_gossip: list[bytes] = []
        self.grpc_server: Any = None
        self.tls_roots: Any = None

    # -- engine lifecycle ----------------------------------------------------------------------
    def guard(self, fn: Any, *args: Any) -> None:
        """Run an engine callback; a bug in an engine is logged, never fatal to the node."""
        try:
            fn(*args)
        except Exception as exc:
            log.exception("consensus engine error")
            self.events.append(
                {"t": round(time.time(), 3), "event": "engine_error", "error": repr(exc)}
            )

    def start_engine(self) -> None:
        """(Re)create the engine from its saved state, as a restart after a crash would."""
        self.generation += 1
        cls = self.engine_cls
        if self.byzantine:
            from .consensus.byzantine import make_byzantine

            cls = make_byzantine(cls, self.byzantine)
        host = NodeHost(self, self.generation)
        engine = cls(host, **self.engine_params)
        host.engine = engine
        self.host, self.engine = host, engine
        self.guard(engine.start)

    def on_frame(self, sender: str, obj: Any) -> None:
        if not isinstance(obj, list) or len(obj) != 2:
            return
        kind, body = obj
        if kind == "c":
            if self.halted or self.engine is None:
                return
            try:
                msg = from_wire(body, MiniBlock.decode)
            except Exception:
                log.warning("malformed consensus message from %s", sender[:8])
                return
            self.guard(self.engine.on_message, sender, msg)
        elif kind == "cm" and isinstance(body, list) and self.app.chainmaker is not None:
            from .chainmaker.executor import RequestRefused

            added = False
            for raw in body:
                if isinstance(raw, bytes):
                    try:
                        self.app.check_cm(raw)
                        added = True
                    except RequestRefused:
                        pass
            if added and self.engine is not None and not self.halted:
                self.guard(self.engine.on_transactions)
        elif kind == "tx" and isinstance(body, list):
            added = False
            for raw in body:
                if isinstance(raw, bytes):
                    try:
                        self.app.check_tx(raw)
                        added = True
                    except TxError:
                        pass
            if added and self.engine is not None and not self.halted:
                self.guard(self.engine.on_transactions)

    def validators_after_head(self) -> list[str]:
        """Genesis validators, until a chain configuration update changed the consensus nodes;
        then the configuration's node ids, in its order (orgs, then their nodes)."""
        genesis = [v.id for v in self.genesis.validators]
        executor = self.app.chainmaker
        if executor is None:
            return genesis
        state = self.app.head_state()
        if executor.configs.last_block(state) == 0:
            return genesis
        config = executor.configs.config(state)
        return [i for org in config.consensus_nodes for i in org.node_id]

    def on_commit(self, block: MiniBlock) -> None:
        self.events.append({"t": round(time.time(), 3), "event": "commit", "height": block.height})
        if self.tls_roots is not None and block.cm:  # only ChainMaker requests change the config
            from .chainmaker.service import trust_roots_pem

            config = self.app.chainmaker.configs.config(self.app.head_state())
            self.tls_roots.update(trust_roots_pem(config))

    # -- the RPC-facing side -------------------------------------------------------------------
    def submit_transaction(self, raw: bytes) -> bytes:
        """Admit a transaction from a client and gossip it to the other validators."""
        tx_hash = self.app.check_tx(raw)
        if not self._gossip:
            asyncio.get_running_loop().call_soon(self._flush_gossip)
        self._gossip.append(raw)
        return tx_hash

    def submit_cm(self, raw: bytes) -> None:
        """Gossip a ChainMaker request this node admitted (over gRPC) to the other validators."""
        if not self._cm_gossip:
            asyncio.get_running_loop().call_soon(self._flush_cm_gossip)
        self._cm_gossip.append(raw)

    def _flush_cm_gossip(self) -> None:
        batch, self._cm_gossip = self._cm_gossip, []
        if batch:
            self.transport.broadcast(["cm", batch])
            if self.engine is not None and not self.halted:
                self.guard(self.engine.on_transactions)

    async def start_grpc(self) -> None:
        """ChainMaker's RpcNode on the node's gRPC port, when the chain has ChainMaker orgs."""
        cm = self.genesis.chainmaker
        if cm is None or not self.entry.grpc_port or not self.entry.chainmaker_node:
            return
        from .chainmaker.service import AppView, RpcNode, TlsRoots, start_server, trust_roots_pem

        view = AppView(
            self.app,
            [(n.id, f"{self.network.host}:{n.grpc_port}") for n in self.network.nodes],
        )
        rpc = RpcNode(self.app, view, cm, self.submit_cm, lambda: self.engine)
        if cm.rpc_tls:
            self.tls_roots = TlsRoots(
                self.network.root / self.entry.chainmaker_node,
                trust_roots_pem(view.config_at(None)),
            )
        creds = self.tls_roots.credentials() if self.tls_roots is not None else None
        self.grpc_server = await start_server(rpc, self.network.host, self.entry.grpc_port, creds)
        log.info("node %s gRPC RpcNode on %s", self.id[:8], self.entry.grpc_port)

    def _flush_gossip(self) -> None:
        batch, self._gossip = self._gossip, []
        if batch:
            self.transport.broadcast(["tx", batch])
            if self.engine is not None and not self.halted:
                self.guard(self.engine.on_transactions)

    def rpc_methods(self) -> dict[str, Any]:
        return {
            "minichain_status": self.rpc_status,
            "minichain_validators": self.rpc_validators,
            "minichain_consensusState": self.rpc_consensus_state,
            "minichain_stopValidator": self.rpc_stop,
            "minichain_resumeValidator": self.rpc_resume,
            "minichain_partition": self.rpc_partition,
            "minichain_heal": self.rpc_heal,
            "minichain_setByzantine": self.rpc_set_byzantine,
            "minichain_genesis": self.rpc_genesis,
            "minichain_commitEvidence": self.rpc_commit_evidence,
        }

    def rpc_genesis(self, params: list) -> dict:
        """The genesis file, so a light client can pin the validator set by the genesis hash."""
        return self.genesis.model_dump(mode="json")

    def rpc_commit_evidence(self, params: list) -> dict | None:
        """What proves block ``params[0]`` final without trusting this node: the block (RLP, whose
        header commits to its transactions and receipts), the signed commit proof consensus kept
        (TBFT: 2f+1 precommit votes) and the block's receipts (RLP). ``null`` if not committed."""
        from .rpc import RpcError, parse_quantity

        if not params:
            raise RpcError(-32602, "minichain_commitEvidence needs a block height")
        height = parse_quantity(params[0], "height")
        found = self.app.committed_block(height)
        extras = self.store.receipts_at(height)
        if found is None or extras is None:
            return None
        block, proof = found
        decoded = from_wire(msgpack.unpackb(proof, raw=False), MiniBlock.decode) if proof else None
        votes = []
        for v in decoded if isinstance(decoded, list) else []:
            if all(hasattr(v, a) for a in ("kind", "round", "block_hash", "voter", "signature")):
                votes.append(
                    {
                        "kind": v.kind,
                        "height": v.height,
                        "round": v.round,
                        "block_hash": "0x" + bytes(v.block_hash).hex(),
                        "voter": v.voter,
                        "signature": "0x" + bytes(v.signature).hex(),
                    }
                )
        return {
            "engine": self.genesis.consensus.engine,
            "height": height,
            "hash": "0x" + block.hash.hex(),
            "block": "0x" + block.encode().hex(),
            "precommits": votes,
            "receipts": "0x" + bytes(extras[0]).hex(),
        }

    def rpc_status(self, params: list) -> dict:
        return {
            "id": self.id,
            "chain_id": self.genesis.chain_id,
            "height": self.app.committed_height(),
            "head_hash": "0x" + self.app.head.hash.hex(),
            "consensus": self.genesis.consensus.engine,
            "identity_mode": self.genesis.identity_mode,
            "peers": self.transport.connected_peers(),
            "inbound": sorted(self.transport.inbound),
            "mempool": self.app.pending_count(),
            "halted": self.halted,
            "byzantine": self.byzantine,
            "partitioned_from": self.partitioned_from,
            "uptime": round(time.time() - self.started, 3),
        }

    def rpc_validators(self, params: list) -> list[dict]:
        out = []
        for v in self.genesis.validators:
            out.append(
                {
                    "id": v.id,
                    "public_key": "0x" + v.public_key,
                    "member": v.id in self.membership.members,
                    "rejected_because": self.membership.rejected.get(v.id),
                    "has_cert": bool(v.cert),
                    "self": v.id == self.id,
                }
            )
        return out

    def rpc_consensus_state(self, params: list) -> dict:
        status = self.engine.status() if self.engine is not None else {}
        return {
            "engine": self.genesis.consensus.engine,
            "state": _plain_deep(status),
            "halted": self.halted,
            "recent_events": list(self.events)[-50:],
        }

    def rpc_stop(self, params: list) -> bool:
        """Fault switch: this validator stops taking part in consensus (RPC keeps answering)."""
        self.halted = True
        self.generation += 1
        self.events.append({"t": round(time.time(), 3), "event": "halted"})
        return True

    def rpc_resume(self, params: list) -> bool:
        self.halted = False
        self.events.append({"t": round(time.time(), 3), "event": "resumed"})
        self.start_engine()
        return True

    def rpc_partition(self, params: list) -> list[str]:
        """Fault switch: cut this node off from the listed peer ids (both directions, here)."""
        if (
            not params
            or not isinstance(params[0], list)
            or not all(isinstance(p, str) for p in params[0])
        ):
            raise ValueError("params: [[peer_id, ...]] — the ids to cut this node off from")
        known = {n.id for n in self.network.nodes}
        unknown = [p for p in params[0] if p not in known]
        if unknown:
            raise ValueError(f"unknown peer id(s): {', '.join(unknown)}")
        self.partitioned_from = sorted(set(params[0]) - {self.id})
        self.transport.blocked = set(self.partitioned_from)
        return self.partitioned_from

    def rpc_heal(self, params: list) -> bool:
        self.partitioned_from = []
        self.transport.blocked = set()
        return True

    def rpc_set_byzantine(self, params: list) -> str | None:
        """Fault switch: make this validator byzantine (mode name) or honest again (null)."""
        from .consensus.byzantine import MODES

        mode = params[0] if params else None
        if mode is not None and mode not in MODES:
            raise ValueError(
                f"unknown byzantine mode {mode!r}: use one of {', '.join(MODES)} or null"
            )
        self.byzantine = mode
        self.start_engine()
        return mode

    # -- running -------------------------------------------------------------------------------
    async def run(self) -> None:
        runner = web.AppRunner(make_rpc_app(self.dispatcher), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, self.network.host, self.entry.rpc_port, reuse_address=True)
        await self.transport.start()
        self.start_engine()
        await site.start()
        await self.start_grpc()
        log.info("node %s up: rpc %s:%s", self.id[:8], self.network.host, self.entry.rpc_port)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        self.halted = True
        if self.grpc_server is not None:
            await self.grpc_server.stop(1.0)
        await self.transport.close()
        await runner.cleanup()
        self.store.close()


def _plain_deep(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain_deep(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_plain_deep(v) for v in value]
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run one minichain validator.")
    parser.add_argument(
        "--network", required=True, type=Path, help="network folder (academy chain init)"
    )
    parser.add_argument("--index", required=True, type=int, help="which node of network.json")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    try:
        network = NetworkConfig.load(args.network)
        node = Node(network, args.index)
    except (ValueError, OSError) as exc:
        raise SystemExit(f"minichain node: {exc}") from None
    asyncio.run(node.run())


if __name__ == "__main__":
    main()
