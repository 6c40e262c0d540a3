"""What the learner's jail adds to a server's start, apart from everything else a login does.

A stand-in server (forked, as the warm parent forks learners' servers) spends ``--busy`` seconds
of CPU, as a JupyterLab server initialising does, then listens. It starts alternately in a jail
(``academy.hub.jail.jail``: bubblewrap's namespaces, the fork into them, the relay that lets the
server in once it listens) and without one; the time from the fork until a connection from the
machine's loopback gets through is compared, start by start, so load from other work falls on
both alike.

    .venv/bin/python bench/jail_start.py [--starts 10] [--busy 0.25]   (as root, with bwrap)
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from academy.hub.forkserver import PRELOAD  # noqa: E402
from academy.hub.jail import Jail, jail, why_unavailable  # noqa: E402

from labs.minichain.ports import free_port  # noqa: E402


def stand_in(port: int, busy: float) -> Callable[[], int]:
    def server() -> int:
        started = time.process_time()
        while time.process_time() - started < busy:
            pass
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", port))
        listener.listen(8)
        while True:
            listener.accept()[0].close()

    return server


def start(folder: Path, n: int, busy: float, jailed: bool) -> float:
    """Seconds from the fork until the server answers on the machine's loopback."""
    port = free_port()
    spec = Jail(
        home=str(folder / f"learner{n}"),
        uid=300000 + n,
        port=port,
        hide=[str(folder)],
        learner=f"learner{n}",
        chains=str(folder / "sandbox"),
    )
    t0 = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            server = stand_in(port, busy)
            code = jail(spec, server) if jailed else server()
        finally:
            os._exit(code)
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
            break
        except OSError:
            time.sleep(0.001)
    seconds = time.perf_counter() - t0
    os.kill(pid, signal.SIGTERM)
    os.waitpid(pid, 0)
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--starts", type=int, default=10, help="starts of each kind")
    parser.add_argument("--busy", type=float, default=0.25, help="CPU seconds before listening")
    args = parser.parse_args()
    why_not = why_unavailable()
    if why_not:
        print(f"no jails here: {why_not}", file=sys.stderr)
        return 1
    import importlib

    for name in PRELOAD:  # what the warm parent holds before it forks (the relay's imports too)
        importlib.import_module(name)
    times: dict[bool, list[float]] = {True: [], False: []}
    with tempfile.TemporaryDirectory(dir="/var/tmp") as tmp:
        folder = Path(tmp)
        (folder / "sandbox" / "envs").mkdir(parents=True)
        for n in range(args.starts):
            for jailed in (n % 2 == 0, n % 2 == 1):  # each kind first in turn
                times[jailed].append(start(folder, n, args.busy, jailed))
    inside, plain = statistics.median(times[True]), statistics.median(times[False])
    print(
        f"fork to reachable, median of {args.starts}: jailed {inside * 1000:.0f} ms, "
        f"not jailed {plain * 1000:.0f} ms, the jail adds {(inside - plain) * 1000:.0f} ms "
        f"(load average {os.getloadavg()[0]:.1f})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
