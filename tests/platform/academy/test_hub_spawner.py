"""The academy spawner's own checks that a starting server is ready: the port it listens on is
its own (two servers drawing the same free port must not share one route)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

from academy.hub.spawner import _PORTS, _draw_port, _listens


def test_a_listener_counts_only_for_the_process_that_holds_it() -> None:
    other = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import socket, time\n"
            "s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen()\n"
            "print(s.getsockname()[1], flush=True); time.sleep(60)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert other.stdout is not None  # stdout=PIPE
        port = int(other.stdout.readline())
        assert _listens(other.pid, port)
        assert not _listens(os.getpid(), port)
        with socket.socket() as mine:
            mine.bind(("127.0.0.1", 0))
            assert not _listens(other.pid, mine.getsockname()[1])  # bound, not listening
            mine.listen()
            assert _listens(os.getpid(), mine.getsockname()[1])
    finally:
        other.kill()
        other.wait()


def test_a_drawn_port_is_not_drawn_again_while_its_server_may_run() -> None:
    drawn = [_draw_port() for _ in range(50)]
    try:
        assert len(set(drawn)) == 50
        assert set(drawn) <= _PORTS
    finally:
        _PORTS.difference_update(drawn)
