"""academy: the ChainAcademy platform service and the ``academy`` command line."""

import sys as _sys

# py_ecc (eth_account -> eth_keyfile imports it) raises the whole process's recursion limit to
# 100,000 on import, far beyond what the C stack holds: a 100,000-deep JSON document handed to the
# verifier (CLI or public endpoint) would then crash it with SIGSEGV instead of being refused.
# academy imports it here, first and once, and puts the limit back. labs is left alone: a
# validator runs py-evm, which sets its own limit.
_limit = _sys.getrecursionlimit()
import py_ecc  # noqa: E402, F401

_sys.setrecursionlimit(_limit)
