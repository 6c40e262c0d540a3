"""Engine parameters for runs in the deterministic simulator, shared by the lab and grader tests."""

from __future__ import annotations

# Short timeouts keep each run short in virtual time; the protocol is the same at any scale.
TBFT_FAST = {
    "timeout_propose": 1.0,
    "timeout_prevote": 0.4,
    "timeout_precommit": 0.4,
    "timeout_delta": 0.2,
    "empty_block_interval": 0.2,
    "gossip_interval": 0.3,
}
