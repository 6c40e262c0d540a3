"""Byzantine validators for labs and tests, without touching a line of the honest engines.

A byzantine validator runs the honest engine behind a lying :class:`ByzantineHost`: the engine
decides what it would say, the host rewrites what actually leaves the node. It signs only with its
own key, exactly like a real attacker who controls one validator.

Modes:

- ``equivocate``: as proposer, sends one block to half of its peers and a different block at the
  same height to the other half; as voter, votes for the real block to half and for another to the
  rest.
- ``silent``: sends nothing at all (it still listens and follows the chain).
- ``bad_votes``: every vote goes out with a broken signature, a random block hash, or a wrong
  height.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable
from typing import Any, cast

from .base import Block, ConsensusEngine, Host
from .tbft import TbftProposal, TbftVote

MODES = ("equivocate", "silent", "bad_votes")


class ByzantineHost:
    """A Host that forwards everything to the real one except what its engine sends."""

    def __init__(self, host: Host, mode: str) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown byzantine mode {mode!r}: use one of {', '.join(MODES)}")
        self._host = host
        self.mode = mode
        self._rng = random.Random(f"byzantine/{host.node_id}")
        self._others = [v for v in host.validators if v != host.node_id]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._host, name)

    def send(self, to: str, msg: Any) -> None:
        for target, out in self._rewrite(msg, [to]):
            self._host.send(target, out)

    def broadcast(self, msg: Any) -> None:
        for target, out in self._rewrite(msg, self._others):
            self._host.send(target, out)

    def _rewrite(self, msg: Any, targets: list[str]) -> list[tuple[str, Any]]:
        if self.mode == "silent":
            return []
        if self.mode == "bad_votes" and isinstance(msg, TbftVote):
            return [(t, self._bad_vote(msg)) for t in targets]
        if self.mode == "equivocate" and len(targets) > 1:
            half = len(targets) // 2
            first, second = targets[:half], targets[half:]
            if isinstance(msg, TbftVote):
                other = self._signed_vote(msg, self._other_hash(msg.block_hash))
                return [(t, msg) for t in first] + [(t, other) for t in second]
            if isinstance(msg, TbftProposal):
                other_proposal = self._other_proposal(msg)
                if other_proposal is not None:
                    return [(t, msg) for t in first] + [(t, other_proposal) for t in second]
        return [(t, msg) for t in targets]

    def _other_hash(self, block_hash: bytes) -> bytes:
        if block_hash:
            return b""  # the real block to some, nil to the others
        return hashlib.sha256(self._rng.randbytes(16)).digest()

    def _signed_vote(self, vote: TbftVote, block_hash: bytes) -> TbftVote:
        out = TbftVote(vote.kind, vote.height, vote.round, block_hash, vote.voter)
        out.signature = self._host.sign(out.signing_bytes())
        return out

    def _other_proposal(self, p: TbftProposal) -> TbftProposal | None:
        try:
            variant = self._rng.randrange(1, 1 << 30)
            # The node's and the simulator's hosts take a variant; the Host protocol does not.
            build: Callable[..., Block] = self._host.create_block
            block = build(p.height, variant=variant)
        except TypeError:
            return None  # this host cannot build a second block: send the honest one
        if block.hash == p.block.hash:
            return None
        out = TbftProposal(p.height, p.round, block, -1, p.proposer)
        out.signature = self._host.sign(out.signing_bytes())
        return out

    def _bad_vote(self, vote: TbftVote) -> TbftVote:
        choice = self._rng.randrange(3)
        if choice == 0:
            return TbftVote(
                vote.kind, vote.height, vote.round, vote.block_hash, vote.voter, b"\x00" * 64
            )
        if choice == 1:
            return self._signed_vote(vote, hashlib.sha256(self._rng.randbytes(16)).digest())
        out = TbftVote(
            vote.kind,
            vote.height + self._rng.randrange(1, 5),
            vote.round,
            vote.block_hash,
            vote.voter,
        )
        out.signature = self._host.sign(out.signing_bytes())
        return out


def make_byzantine(engine_cls: type[ConsensusEngine], mode: str) -> type[ConsensusEngine]:
    """A subclass of ``engine_cls`` whose messages go out through a :class:`ByzantineHost`."""
    if mode not in MODES:
        raise ValueError(f"unknown byzantine mode {mode!r}: use one of {', '.join(MODES)}")

    def __init__(self: ConsensusEngine, host: Host, **params: Any) -> None:
        engine_cls.__init__(self, ByzantineHost(host, mode), **params)

    # type() does what a class statement would (engine_cls's metaclass, ABCMeta, takes over), but
    # mypy cannot check a class statement whose base is a variable; the cast says what it builds.
    byzantine = type(
        f"Byzantine{engine_cls.__name__}",
        (engine_cls,),
        {"__init__": __init__, "byzantine_mode": mode, "__module__": __name__},
    )
    return cast(type[ConsensusEngine], byzantine)
