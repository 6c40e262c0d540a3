"""The academy spawner's own checks that a starting server is ready: the port it listens on is
its own (two servers drawing the same free port must not share one route)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

from academy.hub.spawner import (
    _PORTS,
    JUPYTER_CONFIG,
    JUPYTER_CONFIG_ZH,
    AcademySpawner,
    _draw_port,
    _listens,
)


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


def test_a_learner_in_chinese_gets_jupyterlab_and_grader_messages_in_chinese(
    tmp_path: Path,
) -> None:
    """The spawner puts the Chinese defaults first on the server's config path; JupyterLab then
    reads its locale from there, and the language pack it needs is installed."""
    from types import SimpleNamespace

    spawner = AcademySpawner()
    spawner._language = "zh_CN"
    assert spawner.learner_language() == "zh-CN"
    spawner._language = None
    browser = SimpleNamespace(
        request=SimpleNamespace(headers={"Accept-Language": "zh-CN,en;q=0.5"})
    )
    spawner.handler = browser
    assert spawner.learner_language() == "zh-CN"
    spawner.handler = None
    assert spawner.learner_language() == "en"
    script = (
        "import json, sys\n"
        "from jupyterlab_server.settings_utils import _get_overrides\n"
        "from jupyterlab_server.translation_utils import get_language_pack\n"
        "overrides, _ = _get_overrides(sys.argv[1])\n"
        "locale = overrides.get('@jupyterlab/translation-extension:plugin', {}).get('locale')\n"
        "pack, _ = get_language_pack(locale or 'en')\n"
        "print(json.dumps([locale, bool(pack)]))\n"
    )
    for config, want in ((JUPYTER_CONFIG_ZH, ["zh_CN", True]), (JUPYTER_CONFIG, [None, False])):
        env = dict(os.environ, JUPYTER_CONFIG_PATH=str(config))
        out = subprocess.run(
            [sys.executable, "-c", script, str(tmp_path)],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        assert json.loads(out.stdout) == want, out.stderr
