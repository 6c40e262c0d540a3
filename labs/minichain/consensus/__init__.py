"""Consensus engines behind one interface (see :mod:`.base`).

``load_engine("tbft")`` gives a built-in engine; ``load_engine("package.module:ClassName")`` gives any
importable :class:`~.base.ConsensusEngine` subclass, which is how a lab plugs in a learner's engine.
"""

from __future__ import annotations

import importlib

from .base import Block, ConsensusEngine, Host, float_param, from_wire, message, to_wire

BUILTIN = {
    "solo": "labs.minichain.consensus.solo:SoloEngine",
    "raft": "labs.minichain.consensus.raft:RaftEngine",
    "tbft": "labs.minichain.consensus.tbft:TBFTEngine",
}


class EngineNotFound(ValueError):
    """The consensus name names no engine."""


def load_engine(name: str) -> type[ConsensusEngine]:
    """The engine class for a built-in name or a ``module:Class`` path."""
    target = BUILTIN.get(name, name)
    if ":" not in target:
        raise EngineNotFound(
            f"unknown consensus {name!r}: use one of {', '.join(BUILTIN)} or 'package.module:Class'"
        )
    module_name, _, class_name = target.partition(":")
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as exc:
        raise EngineNotFound(f"cannot load consensus engine {target!r}: {exc}") from exc
    if not (isinstance(cls, type) and issubclass(cls, ConsensusEngine)):
        raise EngineNotFound(f"{target!r} is not a ConsensusEngine subclass")
    return cls


__all__ = [
    "BUILTIN",
    "Block",
    "ConsensusEngine",
    "EngineNotFound",
    "Host",
    "float_param",
    "from_wire",
    "load_engine",
    "message",
    "to_wire",
]
