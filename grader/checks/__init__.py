"""Domain checkers for nbgrader hidden test cells: hashing, consensus and contracts.

Every checker either returns quietly or raises ``AssertionError`` with one message a learner can
act on (nbgrader scores a test cell by whether it raises, and the feedback shows that message).
They run inside the grading sandbox, in the hidden cell, and are written to judge plain data:
values are copied into exact builtin types before they are compared, references are computed by
the checker, chains and balances are read back from the simulator or the EVM by the checker
itself. See README.md beside this file for the API and one example each.

Submodules are imported on use (``from grader.checks import hashing``) so a hashing lab does not
pay for web3 and a contracts lab does not pay for hypothesis.
"""

from __future__ import annotations

__all__ = ["consensus", "contracts", "hashing"]
