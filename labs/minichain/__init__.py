"""minichain: a small permissioned EVM chain shaped like ChainMaker, written to be read by learners.

Layers, from the bottom up (the split Tendermint draws between consensus and application):

- ``execution``: the application. py-evm applies transactions; it never knows how blocks are agreed.
- ``consensus``: engines (solo, raft, tbft) that agree on blocks through a small ``Host`` interface.
- ``sim``: a deterministic, single-process simulator that runs the very same engines on virtual time.
- ``node``: one validator process: storage, peer transport, JSON-RPC, and a ``Host`` for its engine.
"""
