"""minichain: a small permissioned EVM chain shaped like ChainMaker, written to be read by learners.

Layers, from the bottom up (the split Tendermint draws between consensus and application):

- ``execution``: the application. py-evm applies transactions; it never knows how blocks are agreed.
- ``consensus``: engines (solo, raft, tbft) that agree on blocks through a small ``Host`` interface.
- ``sim``: a deterministic, single-process simulator that runs the very same engines on virtual time.
- ``node``: one validator process: storage, peer transport, JSON-RPC, and a ``Host`` for its engine.
"""

import sys as _sys

_limit = _sys.getrecursionlimit()
import py_ecc  # noqa: E402,F401  (eth_account -> eth_keyfile imports it; see below)

# py_ecc raises the recursion limit of the whole process to 100,000 on import, far beyond what the
# C stack holds: deep input (a 100,000-deep JSON document) would then crash the process with
# SIGSEGV instead of raising RecursionError. It is imported here, once, and the limit put back.
_sys.setrecursionlimit(_limit)
