"""Grader tests lease sandbox uids from a range of their own.

Other grader processes on the same host (other test runs, a running platform) lease uids from the
default range; a test that checks "no process of my sandbox uids is left" must never see theirs.
So this test process takes a range chosen from its pid, away from the default 200000..201023.
"""

from __future__ import annotations

import os

os.environ.setdefault("CHAINACADEMY_SANDBOX_UID_BASE", str(300_000 + (os.getpid() % 4096) * 1024))
