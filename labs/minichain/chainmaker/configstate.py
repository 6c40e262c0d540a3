"""The chain configuration as it stands after each block, kept in the chain's own state.

ChainMaker changes its configuration by transactions (``CHAIN_CONFIG``), so what decides a
request (trust roots, policies, block settings, consensus nodes) is whatever the blocks before it
made of the genesis configuration. Keeping it in the EVM state puts it under the state root: every
validator that executed the same blocks holds the same configuration, a node catching up rebuilds
it by executing, and a request in a block is judged by the configuration of that very point in the
chain. Until the first update the state holds nothing and the genesis configuration applies.

Bytes are stored as a length word and 32-byte words at keccak(slot) onwards, the layout Solidity
gives a ``bytes`` value, so the state stays the one thing that must agree.
"""

from __future__ import annotations

from eth.abc import StateAPI
from eth_typing import Address
from eth_utils import keccak

from .auth import Verifier
from .chainconfig import ChainMakerConfig

CONFIG_ACCOUNT = Address(keccak(b"minichain.chainmaker.chain-config")[12:])
SLOT_HASH, SLOT_BLOCK, SLOT_DOCUMENT = 0, 1, 2
CACHE = 64


def _ensure_account(state: StateAPI, account: Address) -> None:
    if state.get_nonce(account) == 0:
        state.set_nonce(account, 1)  # never an "empty" account that EIP-161 could drop


def write_bytes(state: StateAPI, account: Address, slot: int, data: bytes) -> None:
    """Store ``data`` at ``slot`` (length + 1 there, so 0 still means "nothing stored")."""
    _ensure_account(state, account)
    old = state.get_storage(account, slot)
    base = int.from_bytes(keccak(slot.to_bytes(32, "big")), "big")
    words = (len(data) + 31) // 32
    for i in range(words):
        chunk = data[i * 32 : (i + 1) * 32].ljust(32, b"\0")
        state.set_storage(account, (base + i) % 2**256, int.from_bytes(chunk, "big"))
    for i in range(words, (max(old - 1, 0) + 31) // 32):  # a shorter value clears the old tail
        state.set_storage(account, (base + i) % 2**256, 0)
    state.set_storage(account, slot, len(data) + 1)


def read_bytes(state: StateAPI, account: Address, slot: int) -> bytes | None:
    stored = state.get_storage(account, slot)
    if stored == 0:
        return None
    size = stored - 1
    base = int.from_bytes(keccak(slot.to_bytes(32, "big")), "big")
    words = b"".join(
        state.get_storage(account, (base + i) % 2**256).to_bytes(32, "big")
        for i in range((size + 31) // 32)
    )
    return words[:size]


def clear_bytes(state: StateAPI, account: Address, slot: int) -> None:
    write_bytes(state, account, slot, b"")
    state.set_storage(account, slot, 0)


class ChainConfigs:
    """The configuration (and its parsed trust roots) in force on a given state.

    Parsing a configuration and its CA certificates costs more than a request, so each version is
    parsed once and found again by the hash the state holds.
    """

    def __init__(self, genesis: ChainMakerConfig) -> None:
        self.genesis = genesis
        self._genesis = (genesis, Verifier(genesis))
        self._cache: dict[int, tuple[ChainMakerConfig, Verifier]] = {}

    def at(self, state: StateAPI) -> tuple[ChainMakerConfig, Verifier]:
        digest = state.get_storage(CONFIG_ACCOUNT, SLOT_HASH)
        if digest == 0:
            return self._genesis
        found = self._cache.get(digest)
        if found is None:
            document = read_bytes(state, CONFIG_ACCOUNT, SLOT_DOCUMENT)
            if document is None:
                raise RuntimeError("the state names a chain configuration it does not hold")
            config = ChainMakerConfig.model_validate_json(document)
            found = (config, Verifier(config))
            if len(self._cache) >= CACHE:
                self._cache.clear()
            self._cache[digest] = found
        return found

    def at_genesis(self) -> tuple[ChainMakerConfig, Verifier]:
        return self._genesis

    def config(self, state: StateAPI) -> ChainMakerConfig:
        return self.at(state)[0]

    def store(self, state: StateAPI, config: ChainMakerConfig, height: int) -> None:
        """Make ``config`` the configuration from the next request on; block ``height`` is now
        the last configuration block."""
        document = config.model_dump_json().encode()
        write_bytes(state, CONFIG_ACCOUNT, SLOT_DOCUMENT, document)
        state.set_storage(CONFIG_ACCOUNT, SLOT_HASH, int.from_bytes(keccak(document), "big"))
        state.set_storage(CONFIG_ACCOUNT, SLOT_BLOCK, height)

    @staticmethod
    def last_block(state: StateAPI) -> int:
        """Height of the block that last changed the configuration (0: the genesis)."""
        return int(state.get_storage(CONFIG_ACCOUNT, SLOT_BLOCK))
