"""The anchor for bench/chain_tps.py: plain py-evm applying transactions, nothing else.

It lives in bench/ because only measurements use it; the chain itself never runs it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from eth.chains.base import MiningChain
from eth.db.atomic import AtomicDB
from eth.typing import HeaderParams

from labs.minichain.blocks import TX_BUILDER, VM, genesis_accounts
from labs.minichain.genesis import Genesis


def raw_apply_rate(genesis: Genesis, raw_txs: Sequence[bytes], block_size: int) -> float:
    """Transactions per second that plain py-evm reaches applying ``raw_txs`` in blocks of
    ``block_size`` on a fresh in-memory chain with the genesis alloc (decoding included).

    This is the anchor the chain's end-to-end throughput is compared with: what the EVM library
    alone does, with no mempool, consensus, network or disk.
    """
    chain_class = MiningChain.configure(vm_configuration=((0, VM),), chain_id=genesis.chain_id)
    params: dict[str, HeaderParams] = {
        "difficulty": 0,
        "gas_limit": genesis.gas_limit,
        "timestamp": genesis.timestamp,
        "base_fee_per_gas": genesis.base_fee_per_gas,
    }
    chain = chain_class.from_genesis(AtomicDB(), params, genesis_accounts(genesis))
    assert isinstance(chain, MiningChain)  # from_genesis builds a chain_class, typed as BaseChain
    started = time.perf_counter()
    txs = [TX_BUILDER.decode(raw) for raw in raw_txs]
    timestamp = genesis.timestamp
    for i in range(0, len(txs), block_size):
        timestamp += 1
        chain.mine_all(txs[i : i + block_size], timestamp=timestamp)
    elapsed = time.perf_counter() - started
    return len(txs) / elapsed if elapsed > 0 else float("inf")
