"""Solo: one validator decides alone. The engine a learner's first chain runs, and the baseline.

There is nothing to agree on, so a block is final the moment it is built: as soon as transactions
wait (``on_transactions``), or after ``empty_block_interval`` seconds with an empty block so that
the chain visibly moves. With more than one validator listed, only the first one (genesis order)
produces blocks; the others stay idle, because two solo producers would fork the chain.
"""

from __future__ import annotations

from typing import Any

from .base import ConsensusEngine, Host, float_param


class SoloEngine(ConsensusEngine):
    """A single block producer; proof = None."""

    name = "solo"
    crash_fault_only = True

    def __init__(self, host: Host, **params: Any) -> None:
        super().__init__(host, **params)
        # 0 = never build empty blocks (the chain then moves only when transactions arrive).
        self.empty_block_interval = float_param("solo", params, "empty_block_interval", 1.0)
        self.producer = host.validators[0] if host.validators else host.node_id
        self.last_commit = 0.0
        self.tick = (
            0  # only the newest timer counts: timers are never cancelled, so stale ones idle
        )

    def start(self) -> None:
        self.last_commit = self.host.now()
        if self.host.node_id != self.producer:
            self.host.log("solo_idle", producer=self.producer)
            return
        self._arm(0.0 if self.host.has_pending_transactions() else self._idle_delay())

    def _idle_delay(self) -> float:
        """Seconds until the next empty block is due (a long nap when empty blocks are off)."""
        if self.empty_block_interval == 0:
            return 3600.0
        due = self.last_commit + self.empty_block_interval
        return max(0.0, due - self.host.now())

    def _arm(self, delay: float) -> None:
        self.tick += 1
        self.host.set_timer(delay, ("solo_tick", self.tick))

    def _produce(self) -> None:
        height = self.host.committed_height() + 1
        block = self.host.create_block(height)
        self.host.commit_block(block, None)
        self.last_commit = self.host.now()

    def on_transactions(self) -> None:
        if self.host.node_id == self.producer and self.host.has_pending_transactions():
            self._produce()
            if self.host.has_pending_transactions():
                self._arm(0.0)  # more than one block's worth waits: keep going, but yield first

    def on_timer(self, tag: tuple) -> None:
        if tag != ("solo_tick", self.tick) or self.host.node_id != self.producer:
            return
        now = self.host.now()
        if self.host.has_pending_transactions():
            self._produce()
            self._arm(0.0 if self.host.has_pending_transactions() else self._idle_delay())
            return
        if self.empty_block_interval and now >= self.last_commit + self.empty_block_interval - 1e-9:
            self._produce()
        self._arm(self._idle_delay())

    def on_message(self, sender: str, msg: Any) -> None:
        """Solo has no peers to listen to."""

    def status(self) -> dict:
        return {
            "engine": self.name,
            "producer": self.producer,
            "height": self.host.committed_height(),
        }
