"""Peer transport: validators talking over TCP on loopback.

Each node keeps one *outbound* connection to every peer for sending and accepts inbound ones for
receiving. A connection starts with a signed hello (chain, sender id, receiver id, time) so a node
only ever hears from members of its own chain (see :class:`~labs.minichain.identity.Membership`);
after that, frames are ``4-byte big-endian length + msgpack``. Delivery is best effort, exactly what
the consensus engines expect: a frame to a peer that is down is dropped, and the sender redials in
the background.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
import time
from collections.abc import Callable
from typing import Any

import msgpack
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from .identity import Membership, raw_public

log = logging.getLogger("minichain.p2p")

MAX_FRAME = 64 * 1024 * 1024
HELLO_SKEW = 300.0
RECONNECT_DELAY = 0.3
QUEUE_LIMIT = 10_000


def _hello_bytes(chain: bytes, sender: str, receiver: str, ts: float) -> bytes:
    return b"minichain-hello|" + chain + f"|{sender}|{receiver}|{ts:.3f}".encode()


async def _read_frame(reader: asyncio.StreamReader) -> Any:
    header = await reader.readexactly(4)
    (size,) = struct.unpack(">I", header)
    if size > MAX_FRAME:
        raise ValueError(f"frame of {size} bytes is over the limit")
    return msgpack.unpackb(await reader.readexactly(size), raw=False)


def _frame(obj: Any) -> bytes:
    body = msgpack.packb(obj, use_bin_type=True)
    return struct.pack(">I", len(body)) + body


class Peer:
    """The outbound half of one link: a queue drained into a socket, redialled when it breaks."""

    def __init__(self, transport: Transport, peer_id: str, address: tuple[str, int]) -> None:
        self.transport = transport
        self.id = peer_id
        self.address = address
        self.queue: asyncio.Queue[bytes] = asyncio.Queue(QUEUE_LIMIT)
        self.connected = False
        self.task: asyncio.Task | None = None

    def put(self, frame: bytes) -> None:
        if not self.connected:
            return  # best effort: nobody to deliver to right now
        try:
            self.queue.put_nowait(frame)
        except asyncio.QueueFull:
            log.warning("queue to %s full; dropping a frame", self.id[:8])

    async def run(self) -> None:
        while True:
            writer = None
            try:
                reader, writer = await asyncio.open_connection(*self.address)
                writer.write(self.transport.hello_frame(self.id))
                await writer.drain()
                self.connected = True
                while True:
                    frame = await self.queue.get()
                    chunks = [frame]
                    while not self.queue.empty() and len(chunks) < 256:
                        chunks.append(self.queue.get_nowait())
                    writer.write(b"".join(chunks))
                    await writer.drain()
            except (OSError, asyncio.IncompleteReadError, ConnectionError):
                pass
            finally:
                self.connected = False
                self.queue = asyncio.Queue(QUEUE_LIMIT)
                if writer is not None:
                    writer.close()
                    with contextlib.suppress(Exception):
                        await writer.wait_closed()
            await asyncio.sleep(RECONNECT_DELAY)


class Transport:
    """Sends frames to peers and hands authenticated inbound frames to ``on_frame(sender, obj)``."""

    def __init__(
        self,
        node_id: str,
        key: Ed25519PrivateKey,
        chain_tag: bytes,
        membership: Membership,
        listen: tuple[str, int],
        peers: dict[str, tuple[str, int]],
        on_frame: Callable[[str, Any], None],
        cert: str | None = None,
    ) -> None:
        self.node_id = node_id
        self.key = key
        self.raw_key = raw_public(key.public_key())
        self.chain_tag = chain_tag
        self.membership = membership
        self.listen = listen
        self.peers = {pid: Peer(self, pid, addr) for pid, addr in peers.items() if pid != node_id}
        self.on_frame = on_frame
        self.blocked: set[str] = set()
        """Peers cut off by a partition fault switch: nothing is sent to or accepted from them."""
        self.server: asyncio.Server | None = None
        self.inbound: set[str] = set()
        self.cert = cert
        """This node's certificate from the consortium CA, shown in its hello: a node that joins
        after the genesis (a validator added by a chain configuration update) is known by it."""

    def hello_frame(self, receiver: str) -> bytes:
        ts = time.time()
        sig = self.key.sign(_hello_bytes(self.chain_tag, self.node_id, receiver, ts))
        hello = {"id": self.node_id, "ts": ts, "sig": sig, "addr": list(self.listen)}
        if self.cert is not None:
            hello["cert"] = self.cert
        return _frame(hello)

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, *self.listen)
        for peer in self.peers.values():
            peer.task = asyncio.get_running_loop().create_task(peer.run())

    async def close(self) -> None:
        for peer in self.peers.values():
            if peer.task:
                peer.task.cancel()
        if self.server:
            self.server.close()

    def send(self, to: str, obj: Any) -> None:
        peer = self.peers.get(to)
        if peer is not None and to not in self.blocked:
            peer.put(_frame(obj))

    def broadcast(self, obj: Any) -> None:
        frame = _frame(obj)
        for pid, peer in self.peers.items():
            if pid not in self.blocked:
                peer.put(frame)

    def connected_peers(self) -> list[str]:
        return sorted(pid for pid, p in self.peers.items() if p.connected)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sender = None
        try:
            hello = await asyncio.wait_for(_read_frame(reader), timeout=5)
            sender = self._check_hello(hello)
            if sender is None:
                return
            self.inbound.add(sender)
            while True:
                obj = await _read_frame(reader)
                if sender in self.blocked:
                    continue
                try:
                    self.on_frame(sender, obj)
                except Exception:  # a bad frame from a member must not kill the link
                    log.exception("dropping a frame from %s", sender[:8])
        except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError):
            pass
        except msgpack.UnpackException:
            log.warning("undecodable frame from %s; closing", (sender or "?")[:8])
        finally:
            if sender:
                self.inbound.discard(sender)
            writer.close()

    def _check_hello(self, hello: Any) -> str | None:
        """The sender's id if its hello is signed by a member key for this chain and this node."""
        if not isinstance(hello, dict):
            return None
        sender, ts, sig = hello.get("id"), hello.get("ts"), hello.get("sig")
        if not isinstance(sender, str) or not isinstance(ts, float) or not isinstance(sig, bytes):
            return None
        if abs(time.time() - ts) > HELLO_SKEW:
            log.warning("stale hello from %s", sender[:8])
            return None
        cert = hello.get("cert")
        if sender not in self.membership.members and isinstance(cert, str):
            self.membership.learn(sender, cert)
        if not self.membership.verify(
            sender, _hello_bytes(self.chain_tag, sender, self.node_id, ts), sig
        ):
            log.warning("refusing %s: not a member with a valid identity", sender[:8])
            return None
        self._dial_back(sender, hello.get("addr"))
        return sender

    def _dial_back(self, sender: str, addr: Any) -> None:
        """Open the sending half to a member that joined after this node started."""
        if sender in self.peers or sender == self.node_id:
            return
        if not (
            isinstance(addr, list)
            and len(addr) == 2
            and isinstance(addr[0], str)
            and isinstance(addr[1], int)
        ):
            return
        peer = self.peers[sender] = Peer(self, sender, (addr[0], addr[1]))
        peer.task = asyncio.get_running_loop().create_task(peer.run())
