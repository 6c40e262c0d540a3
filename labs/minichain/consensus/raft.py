"""Raft: crash-fault-tolerant consensus by a leader that replicates blocks to a majority.

The log index *is* the block height, and a log entry is one block. Committed entries live in the
host's block store (their term travels as the commit proof, ``{"term": t}``); only the uncommitted
tail is the engine's own, write-ahead state (``currentTerm``, ``votedFor`` and that tail, saved
before any reply or send that depends on them).

Two shapes of the seam shape the protocol:

- ``host.create_block`` builds only on the last committed block, so a leader keeps *one* block in
  flight: it creates height ``committed + 1`` only when nothing uncommitted is outstanding.
- A new leader may inherit an uncommitted block of an older term. Raft never commits an old-term
  entry by counting replicas (a later leader could overwrite it), and a leader cannot append a fresh
  block on top of it. So the new leader *re-stamps* its last uncommitted entry with its own term —
  the same block, now proposed in the current term, exactly as a new Paxos leader re-proposes the
  value it found — and commits it by the usual rule once a majority stores it in that term.

Because entries up to a node's commit index are final, any AppendEntries whose ``prev_index`` is
committed locally matches (terms of committed entries may differ between nodes after a re-stamp; the
blocks cannot).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from .base import Block, ConsensusEngine, Host, float_param, message

MAX_ENTRIES_PER_APPEND = 64
"""Blocks per AppendEntries: a follower far behind catches up in batches this size."""


@message
@dataclass(slots=True)
class RaftEntry:
    """One log entry: a block and the term in which the leader proposed it."""

    term: int
    block: Any


@message
@dataclass(slots=True)
class RaftRequestVote:
    term: int
    last_log_index: int
    last_log_term: int


@message
@dataclass(slots=True)
class RaftVote:
    term: int
    granted: bool


@message
@dataclass(slots=True)
class RaftAppend:
    term: int
    prev_index: int
    prev_term: int
    entries: list
    leader_commit: int


@message
@dataclass(slots=True)
class RaftAppendReply:
    term: int
    success: bool
    match_index: int
    conflict_index: int
    """On failure: where the leader should retry from (the follower's guess of the mismatch)."""


FOLLOWER, CANDIDATE, LEADER = "follower", "candidate", "leader"


class RaftEngine(ConsensusEngine):
    """One Raft server. Params: election_timeout, heartbeat_interval, block_interval,
    empty_block_interval (seconds)."""

    name = "raft"
    crash_fault_only = True

    def __init__(self, host: Host, **params: Any) -> None:
        super().__init__(host, **params)
        self.election_timeout = float_param("raft", params, "election_timeout", 1.0) or 1.0
        self.heartbeat_interval = float_param("raft", params, "heartbeat_interval", 0.15) or 0.15
        self.block_interval = float_param("raft", params, "block_interval", 0.0)
        self.empty_block_interval = float_param("raft", params, "empty_block_interval", 1.0)
        self.peers = [v for v in host.validators if v != host.node_id]
        self.majority = len(host.validators) // 2 + 1
        self.term = 0
        self.voted_for: str | None = None
        self.log: dict[int, tuple[int, Block]] = {}  # uncommitted tail: index -> (term, block)
        self.role = FOLLOWER
        self.leader: str | None = None
        self.votes: set[str] = set()
        self.next_index: dict[str, int] = {}
        self.match_index: dict[str, int] = {}
        self.sent_upto: dict[str, int] = {}
        """Highest index already sent to each follower: a reply must not trigger a re-send."""
        self.deadline = 0.0
        self.last_block_time = 0.0
        self.committed_terms: dict[int, int] = {}
        self.rng = random.Random(f"{host.node_id}/{host.now()}")

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> None:
        saved = self.host.load_state() or {}
        self.term = int(saved.get("term", 0))
        self.voted_for = saved.get("voted_for")
        committed = self.host.committed_height()
        for index, term, block in saved.get("log", []):
            if index > committed:
                self.log[index] = (term, block)
        self.last_block_time = self.host.now()
        self._reset_deadline()
        self.host.set_timer(self.deadline - self.host.now(), ("raft_election",))
        self.host.log("raft_start", term=self.term, log_tail=len(self.log))

    def _save(self) -> None:
        """Write-ahead: persist before any message that depends on this state leaves the node."""
        self.host.save_state(
            {
                "term": self.term,
                "voted_for": self.voted_for,
                "log": [[i, t, b] for i, (t, b) in sorted(self.log.items())],
            }
        )

    def _reset_deadline(self) -> None:
        self.deadline = self.host.now() + self.election_timeout * (1.0 + self.rng.random())

    # -- log helpers ---------------------------------------------------------------------------
    def _last_index(self) -> int:
        return max(self.log) if self.log else self.host.committed_height()

    def _term_at(self, index: int) -> int:
        if index in self.log:
            return self.log[index][0]
        if index <= 0:
            return 0
        cached = self.committed_terms.get(index)
        if cached is not None:
            return cached
        found = self.host.committed_block(index)
        proof = found[1] if found else None
        term = int(proof.get("term", 0)) if isinstance(proof, dict) else 0
        if len(self.committed_terms) > 4 * MAX_ENTRIES_PER_APPEND:
            self.committed_terms.clear()
        self.committed_terms[index] = term
        return term

    def _block_at(self, index: int) -> Block | None:
        if index in self.log:
            return self.log[index][1]
        found = self.host.committed_block(index)
        return found[0] if found else None

    def _commit_through(self, index: int) -> None:
        """Hand entries up to ``index`` to the host, in order, each exactly once."""
        committed = self.host.committed_height()
        while committed < index and committed + 1 in self.log:
            term, block = self.log[committed + 1]
            if not self.host.validate_block(block):
                self.host.log("raft_invalid_block", height=committed + 1, hash=block.hash)
                return
            self.host.commit_block(block, {"term": term})
            del self.log[committed + 1]
            committed += 1
            self.committed_terms[committed] = term

    # -- roles -----------------------------------------------------------------------------------
    def _step_down(self, term: int) -> None:
        if term > self.term:
            self.term, self.voted_for = term, None
        if self.role != FOLLOWER:
            self.host.log("raft_follower", term=self.term)
        self.role = FOLLOWER
        self.votes = set()

    def _start_election(self) -> None:
        self.term += 1
        self.role, self.voted_for, self.leader = CANDIDATE, self.host.node_id, None
        self.votes = {self.host.node_id}
        self._save()
        self._reset_deadline()
        self.host.log("raft_candidate", term=self.term)
        last = self._last_index()
        self.host.broadcast(RaftRequestVote(self.term, last, self._term_at(last)))
        if len(self.votes) >= self.majority:
            self._become_leader()

    def _become_leader(self) -> None:
        self.role, self.leader = LEADER, self.host.node_id
        last = self._last_index()
        if last in self.log and self.log[last][0] < self.term:
            self.log[last] = (self.term, self.log[last][1])  # re-stamp: see the module docstring
            self._save()
        self.next_index = {p: last + 1 for p in self.peers}
        self.match_index = {p: 0 for p in self.peers}
        self.host.log("raft_leader", term=self.term, last_index=last)
        self._send_appends()
        self._maybe_create_block()
        self._advance_commit()
        self.host.set_timer(self.heartbeat_interval, ("raft_heartbeat", self.term))

    # -- timers ----------------------------------------------------------------------------------
    def on_timer(self, tag: tuple) -> None:
        kind = tag[0]
        now = self.host.now()
        if kind == "raft_election":
            if self.role == LEADER:
                self._reset_deadline()
            elif now >= self.deadline - 1e-9:
                self._start_election()
            self.host.set_timer(max(0.0, self.deadline - now), ("raft_election",))
        elif kind == "raft_heartbeat" and self.role == LEADER and tag[1] == self.term:
            self._maybe_create_block()
            self._send_appends()
            self.host.set_timer(self.heartbeat_interval, tag)
        elif kind == "raft_block" and self.role == LEADER:
            self._maybe_create_block()

    def on_transactions(self) -> None:
        if self.role == LEADER:
            self._maybe_create_block()

    # -- leader ----------------------------------------------------------------------------------
    def _maybe_create_block(self) -> bool:
        """Propose the next block when it is due; True when one was proposed (and sent)."""
        committed = self.host.committed_height()
        if self.role != LEADER or self._last_index() != committed:
            return False  # one block in flight at a time
        now = self.host.now()
        pending = self.host.has_pending_transactions()
        if not pending and self.empty_block_interval == 0:
            return False  # empty blocks switched off
        due = self.last_block_time + (self.block_interval if pending else self.empty_block_interval)
        if now < due - 1e-9:
            if pending:
                self.host.set_timer(due - now, ("raft_block",))
            return False
        block = self.host.create_block(committed + 1)
        self.log[committed + 1] = (self.term, block)
        self._save()
        self.last_block_time = now
        self._send_appends()
        if not self.peers:
            self._advance_commit()
        return True

    def _send_appends(self) -> None:
        for peer in self.peers:
            self._send_append(peer)

    def _send_append(self, peer: str) -> None:
        last = self._last_index()
        start = min(self.next_index.get(peer, last + 1), last + 1)
        stop = min(last, start + MAX_ENTRIES_PER_APPEND - 1)
        entries = []
        for i in range(start, stop + 1):
            block = self._block_at(i)
            if block is None:
                break
            entries.append(RaftEntry(self._term_at(i), block))
        committed = self.host.committed_height()
        msg = RaftAppend(self.term, start - 1, self._term_at(start - 1), entries, committed)
        self.sent_upto[peer] = start - 1 + len(entries)
        self.host.send(peer, msg)

    def _advance_commit(self) -> None:
        committed = self.host.committed_height()
        for n in range(self._last_index(), committed, -1):
            if self._term_at(n) != self.term:
                break  # Raft's rule: count replicas only for entries of the current term
            stored = 1 + sum(1 for p in self.peers if self.match_index.get(p, 0) >= n)
            if stored >= self.majority:
                self._commit_through(n)
                if self.host.committed_height() > committed:
                    if not self.peers:  # a one-node cluster: no recursion, next block on a timer
                        self.host.set_timer(0.0, ("raft_block",))
                    elif not self._maybe_create_block():
                        self._send_appends()  # tell followers the new commit index now
                return

    # -- messages --------------------------------------------------------------------------------
    def on_message(self, sender: str, msg: Any) -> None:
        if sender not in self.host.validators or sender == self.host.node_id:
            return
        if isinstance(msg, RaftAppend):
            self._on_append(sender, msg)
        elif isinstance(msg, RaftAppendReply):
            self._on_append_reply(sender, msg)
        elif isinstance(msg, RaftRequestVote):
            self._on_request_vote(sender, msg)
        elif isinstance(msg, RaftVote):
            self._on_vote(sender, msg)

    def _on_request_vote(self, sender: str, msg: RaftRequestVote) -> None:
        changed = False
        if msg.term > self.term:
            self._step_down(msg.term)
            changed = True
        last = self._last_index()
        up_to_date = (msg.last_log_term, msg.last_log_index) >= (self._term_at(last), last)
        granted = msg.term == self.term and self.voted_for in (None, sender) and up_to_date
        if granted and self.voted_for is None:
            self.voted_for = sender
            changed = True
        if granted:
            self._reset_deadline()
        if changed:
            self._save()
        self.host.send(sender, RaftVote(self.term, granted))

    def _on_vote(self, sender: str, msg: RaftVote) -> None:
        if msg.term > self.term:
            self._step_down(msg.term)
            self._save()
            return
        if self.role == CANDIDATE and msg.term == self.term and msg.granted:
            self.votes.add(sender)
            if len(self.votes) >= self.majority:
                self._become_leader()

    def _on_append(self, sender: str, msg: RaftAppend) -> None:
        if msg.term < self.term:
            self.host.send(sender, RaftAppendReply(self.term, False, 0, 0))
            return
        changed = msg.term > self.term
        if changed or self.role != FOLLOWER:
            self._step_down(msg.term)
        if self.leader != sender:
            self.leader = sender
            self.host.log("raft_follow", term=self.term, leader=sender)
        self._reset_deadline()
        committed = self.host.committed_height()
        last = self._last_index()
        prev = msg.prev_index
        if prev > last:
            reply = RaftAppendReply(self.term, False, 0, last + 1)
        elif prev > committed and self._term_at(prev) != msg.prev_term:
            bad_term, first = self._term_at(prev), prev
            while first - 1 > committed and self._term_at(first - 1) == bad_term:
                first -= 1
            reply = RaftAppendReply(self.term, False, 0, first)
        else:
            index = prev
            for entry in msg.entries:
                index += 1
                if index <= committed:
                    continue  # final here already; by Raft's safety it is the same block
                mine = self.log.get(index)
                if mine is not None and mine[0] == entry.term:
                    continue
                for stale in [i for i in self.log if i >= index]:
                    del self.log[stale]
                self.log[index] = (entry.term, entry.block)
                changed = True
            if changed:
                self._save()
                changed = False
            if msg.leader_commit > committed:
                self._commit_through(min(msg.leader_commit, index))
            reply = RaftAppendReply(self.term, True, max(index, self.host.committed_height()), 0)
        if changed:
            self._save()
        self.host.send(sender, reply)

    def _on_append_reply(self, sender: str, msg: RaftAppendReply) -> None:
        if msg.term > self.term:
            self._step_down(msg.term)
            self._save()
            return
        if self.role != LEADER or msg.term != self.term:
            return
        if msg.success:
            if msg.match_index > self.match_index.get(sender, 0):
                self.match_index[sender] = msg.match_index
            self.next_index[sender] = self.match_index[sender] + 1
            self._advance_commit()
            last = self._last_index()
            if self.next_index[sender] <= last and self.sent_upto.get(sender, 0) < last:
                self._send_append(sender)
        else:
            current = self.next_index.get(sender, 1)
            self.next_index[sender] = max(1, min(current - 1, msg.conflict_index or current - 1))
            self._send_append(sender)

    def status(self) -> dict:
        return {
            "engine": self.name,
            "role": self.role,
            "term": self.term,
            "leader": self.leader,
            "voted_for": self.voted_for,
            "commit_index": self.host.committed_height(),
            "last_index": self._last_index(),
        }
