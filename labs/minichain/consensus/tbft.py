"""TBFT: Tendermint-style byzantine fault tolerant consensus (propose / prevote / precommit).

n = 3f + 1 validators agree on one block per height, safe while at most f of them are byzantine.
Each height runs rounds; in round r the proposer ``validators[(height + r) % n]`` proposes, then
everyone prevotes and precommits. Written to be read beside the Tendermint paper ("The latest gossip
on BFT consensus"): every ``upon`` rule of its Algorithm 1 is one small method here, named after it.

- A *polka* is 2f+1 prevotes for one block in one round. Seeing a polka for block B in the current
  round makes a validator *lock* on B: it will prevote nothing else in later rounds unless it sees a
  newer polka (the proposal's ``pol_round``). Locking is what makes two different commits
  impossible.
- 2f+1 precommits for B in any round commit B; the precommits themselves are the commit proof, so a
  validator that was away checks them when it catches up (``TbftSyncBlock``).
- Timeouts grow with the round so that, once the network is timely again, a round eventually fits.
- f+1 messages from a higher round mean at least one honest validator is there: skip to it.

Messages are signed with the validator's key through the host; a vote or proposal whose signature
fails is dropped. The write-ahead state (locks, own votes) is saved before a vote leaves, so a
validator restarted after kill -9 re-sends the votes it cast and never casts a different one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .base import Block, ConsensusEngine, Host, float_param, message

PREVOTE, PRECOMMIT = "prevote", "precommit"
PROPOSE_STEP, PREVOTE_STEP, PRECOMMIT_STEP = 0, 1, 2
NIL = b""
SYNC_BATCH = 16
FUTURE_HEIGHTS = 2  # how far ahead messages are buffered for replay when this node gets there


@message
@dataclass(slots=True)
class TbftProposal:
    height: int
    round: int
    block: Any
    pol_round: int
    proposer: str
    signature: bytes = b""

    def signing_bytes(self) -> bytes:
        return (
            f"tbft|proposal|{self.height}|{self.round}|{self.pol_round}|".encode() + self.block.hash
        )


@message
@dataclass(slots=True)
class TbftVote:
    kind: str
    height: int
    round: int
    block_hash: bytes  # NIL (b"") votes for no block
    voter: str
    signature: bytes = b""

    def signing_bytes(self) -> bytes:
        return f"tbft|{self.kind}|{self.height}|{self.round}|".encode() + self.block_hash


@message
@dataclass(slots=True)
class TbftSyncRequest:
    from_height: int


@message
@dataclass(slots=True)
class TbftSyncBlock:
    block: Any
    precommits: list


def _is_block(value: Any) -> bool:
    """What a block must offer (the Block protocol's fields), checked cheaply: ``isinstance`` against
    a runtime protocol costs more than the rest of handling a proposal."""
    return (
        isinstance(getattr(value, "hash", None), bytes)
        and isinstance(getattr(value, "height", None), int)
        and isinstance(getattr(value, "parent_hash", None), bytes)
        and callable(getattr(value, "encode", None))
    )


class _Tally:
    """Votes of one kind in one round, counted per block by *distinct voters*.

    An equivocating validator's votes count for every block it signed. That is safe — two 2f+1
    quorums for different blocks in one round share f+1 validators, one of them honest, and an
    honest validator never signs twice — and it is needed for liveness: a polka that includes an
    equivocator's vote must still be recognisable by a validator that first saw its other vote,
    or locked and unlocked validators can wait on each other forever. ``total`` counts voters.
    """

    __slots__ = ("votes", "hashes_of", "count", "total")

    MAX_HASHES_PER_VOTER = 16
    """An equivocator cannot grow a tally without bound (it only hurts its own votes' weight)."""

    def __init__(self) -> None:
        self.votes: dict[tuple[str, bytes], TbftVote] = {}
        self.hashes_of: dict[str, int] = {}
        self.count: dict[bytes, int] = {}
        self.total = 0

    def add(self, vote: TbftVote) -> bool:
        key = (vote.voter, vote.block_hash)
        if key in self.votes:
            return False
        seen = self.hashes_of.get(vote.voter, 0)
        if seen >= self.MAX_HASHES_PER_VOTER:
            return False
        self.votes[key] = vote
        self.hashes_of[vote.voter] = seen + 1
        self.count[vote.block_hash] = self.count.get(vote.block_hash, 0) + 1
        if seen == 0:
            self.total += 1
        return True

    def votes_for(self, block_hash: bytes) -> list[TbftVote]:
        return [v for (_, h), v in self.votes.items() if h == block_hash]


class TBFTEngine(ConsensusEngine):
    """One TBFT validator. Params (seconds): timeout_propose, timeout_prevote, timeout_precommit,
    timeout_delta (added per round), empty_block_interval (0 = never wait for transactions),
    gossip_interval (re-send own messages while stuck)."""

    name = "tbft"

    def __init__(self, host: Host, **params: Any) -> None:
        super().__init__(host, **params)
        p = params
        self.timeout_propose = float_param("tbft", p, "timeout_propose", 3.0)
        self.timeout_prevote = float_param("tbft", p, "timeout_prevote", 1.0)
        self.timeout_precommit = float_param("tbft", p, "timeout_precommit", 1.0)
        self.timeout_delta = float_param("tbft", p, "timeout_delta", 0.5)
        self.empty_block_interval = float_param("tbft", p, "empty_block_interval", 1.0)
        self.gossip_interval = float_param("tbft", p, "gossip_interval", 0.5) or 0.5
        self._set_validators(list(host.validators))
        self.me = host.node_id
        self.height = 0
        self._new_height_state()
        self.future: list[tuple[str, Any]] = []
        self.synced_blocks: dict[int, TbftSyncBlock] = {}
        self.last_sync_request: dict[str, tuple[int, float]] = {}
        self.last_commit_time = 0.0
        self.gossip_mark: tuple | None = None
        self.ahead_peers: set[str] = set()

    # -- state ---------------------------------------------------------------------------------
    def _set_validators(self, validators: list[str]) -> None:
        self.validators = validators
        self.members = set(validators)
        self.n = len(validators)
        self.f = (self.n - 1) // 3
        self.q = self.quorum(self.n)

    def _follow_validator_set(self) -> None:
        """Take the validators the host names for this height, if it names any.

        A host whose validator set changes with the chain (ChainMaker's chain configuration adds
        or removes consensus nodes) offers ``validators_at(height)``; it is asked once per height,
        right after the height before was committed, so every validator switches at the same
        height. Commit proofs of a synced block are checked against the set of its own height.
        """
        at = getattr(self.host, "validators_at", None)
        if at is None:
            return
        validators = list(at(self.height))
        if validators and validators != self.validators:
            self._set_validators(validators)
            self.host.log("tbft_validators", height=self.height, validators=validators)

    def _new_height_state(self) -> None:
        self.round = 0
        self.step = PROPOSE_STEP
        self.locked_round, self.locked_block = -1, None
        self.valid_round, self.valid_block = -1, None
        self.valid_polka: list[TbftVote] = []
        """The signed prevotes behind valid_block: kept (and saved) so they can be shown again."""
        self.proposals: dict[int, TbftProposal] = {}
        self.tallies: dict[tuple[int, str], _Tally] = {}
        self.round_senders: dict[int, set[str]] = {}
        self.my_votes: dict[tuple[int, str], bytes] = {}
        self.my_proposals: dict[int, Block] = {}
        self.validity: dict[bytes, bool] = {}
        self.polka_seen: set[int] = set()
        self.timers_set: set[tuple] = set()

    def _save(self) -> None:
        """Write-ahead state: all it takes never to contradict an earlier vote after a crash."""
        self.host.save_state(
            {
                "height": self.height,
                "round": self.round,
                "locked_round": self.locked_round,
                "locked_block": self.locked_block,
                "valid_round": self.valid_round,
                "valid_block": self.valid_block,
                "valid_polka": self.valid_polka,
                "my_votes": [[r, k, h] for (r, k), h in self.my_votes.items()],
                "my_proposals": [[r, b] for r, b in self.my_proposals.items()],
            }
        )

    def start(self) -> None:
        self.height = self.host.committed_height() + 1
        self._follow_validator_set()
        self.last_commit_time = self.host.now()
        saved = self.host.load_state()
        start_round = 0
        if saved and saved.get("height") == self.height:
            start_round = int(saved["round"])
            self.locked_round, self.locked_block = saved["locked_round"], saved["locked_block"]
            self.valid_round, self.valid_block = saved["valid_round"], saved["valid_block"]
            self.my_votes = {(r, k): h for r, k, h in saved["my_votes"]}
            self.my_proposals = {r: b for r, b in saved["my_proposals"]}
            self.valid_polka = list(saved.get("valid_polka") or [])
            for vote in self.valid_polka:
                self._tally(vote.round, PREVOTE).add(vote)
            self.host.log("tbft_recovered", height=self.height, round=start_round)
        self._arm_gossip()
        self._start_round(start_round)

    def proposer(self, height: int, round_: int) -> str:
        return self.validators[(height + round_) % self.n]

    def _tally(self, round_: int, kind: str) -> _Tally:
        t = self.tallies.get((round_, kind))
        if t is None:
            t = self.tallies[(round_, kind)] = _Tally()
        return t

    def _valid(self, block: Block) -> bool:
        ok = self.validity.get(block.hash)
        if ok is None:
            ok = block.height == self.height and self.host.validate_block(block)
            self.validity[block.hash] = ok
        return ok

    def _timeout(self, base: float, round_: int) -> float:
        return base + round_ * self.timeout_delta

    def _timer_once(self, name: str, delay: float) -> None:
        key = (name, self.height, self.round)
        if key not in self.timers_set:
            self.timers_set.add(key)
            self.host.set_timer(delay, key)

    # -- rounds --------------------------------------------------------------------------------
    def _start_round(self, round_: int) -> None:
        self.round = round_
        self.step = PROPOSE_STEP
        self.host.log("tbft_round", height=self.height, round=round_)
        # The proposer sets the timer too: if it cannot prevote its own proposal in time (say it
        # re-proposes a block whose polka it lost in a crash) it prevotes nil like everyone else.
        self._timer_once("propose", self._timeout(self.timeout_propose, round_))
        if self.proposer(self.height, round_) == self.me:
            self._maybe_propose()
        self._check(round_)

    def _maybe_propose(self) -> None:
        """As proposer: re-propose a valid block if one exists, else wait a little for txs."""
        if self.step != PROPOSE_STEP or self.proposer(self.height, self.round) != self.me:
            return
        if self.round in self.proposals:
            return
        block = self.my_proposals.get(self.round)
        if block is None and self.valid_block is not None:
            block = self.valid_block
        if block is None:
            due = self.last_commit_time + self.empty_block_interval
            now = self.host.now()
            if self.round == 0 and not self.host.has_pending_transactions() and now < due:
                self._timer_once("propose_wait", due - now)
                return
            block = self.host.create_block(self.height)
        self.my_proposals[self.round] = block
        same_as_valid = self.valid_block is not None and block.hash == self.valid_block.hash
        pol = self.valid_round if same_as_valid else -1
        proposal = TbftProposal(self.height, self.round, block, pol, self.me)
        proposal.signature = self.host.sign(proposal.signing_bytes())
        self._save()
        self.host.broadcast(proposal)
        if pol >= 0:
            for vote in self.valid_polka:  # let everyone check the polka the proposal claims
                self.host.broadcast(vote)
        self._on_proposal(proposal)

    def _vote(self, kind: str, block_hash: bytes) -> None:
        """Cast (or, after a restart, re-cast) our one vote of ``kind`` in this round."""
        if self.me not in self.members:
            return  # a node outside the validator set follows the chain; it has no vote
        key = (self.round, kind)
        recorded = self.my_votes.get(key)
        if recorded is not None:
            block_hash = recorded
        else:
            self.my_votes[key] = block_hash
            self._save()
        vote = TbftVote(kind, self.height, self.round, block_hash, self.me)
        vote.signature = self.host.sign(vote.signing_bytes())
        self.host.broadcast(vote)
        self._on_vote(vote)

    # -- inputs --------------------------------------------------------------------------------
    def on_transactions(self) -> None:
        if self.round == 0 and self.step == PROPOSE_STEP:
            self._maybe_propose()

    def on_message(self, sender: str, msg: Any) -> None:
        # Committed blocks carry their own proof, so any peer the transport let in may ask for
        # them or offer them: a node outside the validator set (one about to join, or one that
        # left) follows the chain this way. Votes and proposals count from validators only.
        if isinstance(msg, TbftSyncRequest):
            self._serve_sync(sender, msg)
            return
        if isinstance(msg, TbftSyncBlock):
            self._on_sync_block(msg)
            return
        if sender not in self.members:
            if isinstance(msg, TbftVote | TbftProposal) and msg.height > self.height:
                self.ahead_peers.add(sender)  # a validator of a set we have not reached yet
            return
        if isinstance(msg, TbftVote | TbftProposal):
            if msg.height > self.height:
                # Usually a faster peer already moved on and our commit is moments away; ask for
                # the blocks only when clearly behind, or later when stuck (see _gossip).
                self.ahead_peers.add(sender)
                if msg.height > self.height + 1:
                    self._ask_sync(sender)
                if msg.height <= self.height + FUTURE_HEIGHTS and len(self.future) < 50 * self.n:
                    self.future.append((sender, msg))
                return
            if msg.height < self.height:
                return
            if isinstance(msg, TbftVote):
                if self._authentic_vote(msg):
                    self._on_vote(msg)
            elif self._authentic_proposal(msg):
                self._on_proposal(msg)

    def _authentic_vote(self, v: TbftVote) -> bool:
        return (
            v.kind in (PREVOTE, PRECOMMIT)
            and v.voter in self.members
            and isinstance(v.block_hash, bytes)
            and isinstance(v.round, int)
            and v.round >= 0
            and self.host.verify(v.voter, v.signing_bytes(), v.signature)
        )

    def _authentic_proposal(self, p: TbftProposal) -> bool:
        return (
            isinstance(p.round, int)
            and p.round >= 0
            and p.proposer == self.proposer(p.height, p.round)
            and _is_block(p.block)
            and self.host.verify(p.proposer, p.signing_bytes(), p.signature)
        )

    def _on_proposal(self, p: TbftProposal) -> None:
        if p.round in self.proposals:
            return  # an equivocating proposer's second block is ignored
        self.proposals[p.round] = p
        self._note_sender(p.round, p.proposer)
        self._check(p.round)
        if p.round != self.round:
            self._check(self.round)

    def _on_vote(self, v: TbftVote) -> None:
        if not self._tally(v.round, v.kind).add(v):
            return
        self._note_sender(v.round, v.voter)
        self._check(v.round)
        if v.round != self.round:
            self._check(self.round)

    def _note_sender(self, round_: int, sender: str) -> None:
        senders = self.round_senders.setdefault(round_, set())
        senders.add(sender)
        # upon f+1 messages of a higher round: some honest validator is there, go too
        if round_ > self.round and len(senders) >= self.f + 1:
            self._start_round(round_)

    def on_timer(self, tag: tuple) -> None:
        name = tag[0]
        if name == "gossip":
            self._gossip(tag)
            return
        if name == "replay":
            if tag[1] == self.height:
                self._replay_future()
            return
        _, height, round_ = tag
        if height != self.height or round_ != self.round:
            return
        if name == "propose_wait":
            self._maybe_propose()
        elif name == "propose" and self.step == PROPOSE_STEP:
            self._resend()  # a timeout may mean our messages were lost: repeat them first
            self.step = PREVOTE_STEP
            self._vote(PREVOTE, NIL)
        elif name == "prevote" and self.step == PREVOTE_STEP:
            self._resend()
            self.step = PRECOMMIT_STEP
            self._vote(PRECOMMIT, NIL)
        elif name == "precommit":
            self._resend()
            self._start_round(round_ + 1)

    # -- the upon rules ------------------------------------------------------------------------
    def _check(self, round_: int) -> None:
        """Apply every rule that may have become true for ``round_`` of this height.

        Casting a vote feeds it straight back in, which may decide the height; so after each rule
        the height is checked again, and nothing stale is applied to the next height."""
        height = self.height
        self._upon_commit(round_)
        if self.height != height or round_ != self.round:
            return
        if self.step == PROPOSE_STEP:
            self._upon_proposal(round_)
            if self.height != height or round_ != self.round:
                return
        if self.step >= PREVOTE_STEP:
            self._upon_polka(round_)
            if self.height != height or round_ != self.round:
                return
        prevotes = self.tallies.get((round_, PREVOTE))
        if self.step == PREVOTE_STEP and prevotes is not None:
            if prevotes.count.get(NIL, 0) >= self.q:
                self.step = PRECOMMIT_STEP
                self._vote(PRECOMMIT, NIL)
                if self.height != height or round_ != self.round:
                    return
            elif prevotes.total >= self.q:
                self._timer_once("prevote", self._timeout(self.timeout_prevote, round_))
        precommits = self.tallies.get((round_, PRECOMMIT))
        if precommits is not None and precommits.total >= self.q:
            self._timer_once("precommit", self._timeout(self.timeout_precommit, round_))

    def _upon_proposal(self, round_: int) -> None:
        """Prevote for the round's proposal when it is valid and compatible with our lock."""
        p = self.proposals.get(round_)
        if p is None:
            return
        h = p.block.hash
        if p.pol_round == -1:
            ok = self._valid(p.block) and (self.locked_round == -1 or self._locked_hash() == h)
        elif 0 <= p.pol_round < round_:
            pol = self.tallies.get((p.pol_round, PREVOTE))
            if pol is None or pol.count.get(h, 0) < self.q:
                return  # wait for the polka the proposer claims
            ok = self._valid(p.block) and (
                self.locked_round <= p.pol_round or self._locked_hash() == h
            )
        else:
            ok = False
        self.step = PREVOTE_STEP
        self._vote(PREVOTE, h if ok else NIL)

    def _upon_polka(self, round_: int) -> None:
        """2f+1 prevotes for the proposal of this round: lock on it and precommit it (once)."""
        if round_ in self.polka_seen:
            return
        p = self.proposals.get(round_)
        prevotes = self.tallies.get((round_, PREVOTE))
        if p is None or prevotes is None or prevotes.count.get(p.block.hash, 0) < self.q:
            return
        if not self._valid(p.block):
            return
        self.polka_seen.add(round_)
        self.valid_round, self.valid_block = round_, p.block
        self.valid_polka = prevotes.votes_for(p.block.hash)
        if self.step == PREVOTE_STEP:
            self.locked_round, self.locked_block = round_, p.block
            self.step = PRECOMMIT_STEP
            self._vote(PRECOMMIT, p.block.hash)  # may decide the height: nothing may follow

    def _upon_commit(self, round_: int) -> None:
        """2f+1 precommits for a proposed valid block, in any round: decide it."""
        p = self.proposals.get(round_)
        precommits = self.tallies.get((round_, PRECOMMIT))
        if p is None or precommits is None:
            return
        h = p.block.hash
        if precommits.count.get(h, 0) >= self.q and self._valid(p.block):
            self._decide(p.block, precommits.votes_for(h))

    def _locked_hash(self) -> bytes | None:
        return self.locked_block.hash if self.locked_block is not None else None

    def _decide(self, block: Block, precommits: list[TbftVote]) -> None:
        self.host.commit_block(block, precommits)
        self.host.log("tbft_commit", height=self.height, round=self.round, hash=block.hash)
        self.height += 1
        self._follow_validator_set()
        self.last_commit_time = self.host.now()
        self._new_height_state()
        self._save()
        self._start_round(0)
        # Replay buffered messages from the event loop, not from inside this call chain: a long
        # catch-up would otherwise nest one height inside the other.
        self.host.set_timer(0.0, ("replay", self.height))

    def _replay_future(self) -> None:
        synced = self.synced_blocks.pop(self.height, None)
        if synced is not None:
            self._on_sync_block(synced)
            return
        pending, self.future = self.future, []
        for sender, msg in pending:
            if msg.height >= self.height:
                self.on_message(sender, msg)

    # -- catching up ---------------------------------------------------------------------------
    def _ask_sync(self, peer: str) -> None:
        now = self.host.now()
        last = self.last_sync_request.get(peer)
        if last is not None and last[0] == self.height and now - last[1] < 1.0:
            return
        self.last_sync_request[peer] = (self.height, now)
        self.host.send(peer, TbftSyncRequest(self.height))

    def _serve_sync(self, peer: str, req: TbftSyncRequest) -> None:
        if not isinstance(req.from_height, int) or req.from_height < 1:
            return
        top = min(self.host.committed_height(), req.from_height + SYNC_BATCH - 1)
        for h in range(req.from_height, top + 1):
            found = self.host.committed_block(h)
            if found is None:
                break
            block, proof = found
            self.host.send(peer, TbftSyncBlock(block, list(proof or [])))

    def _on_sync_block(self, msg: TbftSyncBlock) -> None:
        block = msg.block
        if not _is_block(block) or not isinstance(msg.precommits, list):
            return
        if block.height > self.height:
            if block.height <= self.height + SYNC_BATCH:
                self.synced_blocks[block.height] = msg
            return
        if block.height < self.height or not self._commit_proof_ok(block, msg.precommits):
            return
        if not self._valid(block):
            return
        self.host.log("tbft_synced", height=block.height)
        self._decide(block, msg.precommits)

    def _commit_proof_ok(self, block: Block, precommits: list) -> bool:
        """2f+1 distinct validators' valid precommits for this block at its height (one round)."""
        voters: dict[int, set[str]] = {}
        for v in precommits:
            if (
                isinstance(v, TbftVote)
                and v.kind == PRECOMMIT
                and v.height == block.height
                and v.block_hash == block.hash
                and self._authentic_vote(v)
            ):
                voters.setdefault(v.round, set()).add(v.voter)
        return any(len(s) >= self.q for s in voters.values())

    # -- gossip --------------------------------------------------------------------------------
    def _arm_gossip(self) -> None:
        self.host.set_timer(self.gossip_interval, ("gossip",))

    def _gossip(self, tag: tuple) -> None:
        """Messages are best effort: while nothing moves, send our part of this round again."""
        self._arm_gossip()
        mark = (self.height, self.round, self.step, sum(t.total for t in self.tallies.values()))
        if mark != self.gossip_mark:
            self.gossip_mark = mark
            return
        for peer in sorted(self.ahead_peers):
            self._ask_sync(peer)
        self.ahead_peers.clear()
        self._resend()

    def _resend(self) -> None:
        """Send this height's part of ours again: the round's proposal, its polka, our votes."""
        p = self.proposals.get(self.round)
        if p is not None:
            self.host.broadcast(p)
        for vote in self.valid_polka:
            self.host.broadcast(vote)
        for (r, kind), h in self.my_votes.items():
            vote = TbftVote(kind, self.height, r, h, self.me)
            vote.signature = self.host.sign(vote.signing_bytes())
            self.host.broadcast(vote)

    def status(self) -> dict:
        prevotes = self.tallies.get((self.round, PREVOTE))
        precommits = self.tallies.get((self.round, PRECOMMIT))
        return {
            "engine": self.name,
            "height": self.height,
            "round": self.round,
            "step": ("propose", "prevote", "precommit")[self.step],
            "proposer": self.proposer(self.height, self.round),
            "locked_round": self.locked_round,
            "valid_round": self.valid_round,
            "prevotes": prevotes.total if prevotes else 0,
            "precommits": precommits.total if precommits else 0,
            "validators": self.n,
            "quorum": self.q,
        }
