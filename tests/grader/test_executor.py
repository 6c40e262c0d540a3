"""The sandboxed executor on real processes: IPython semantics, limits, isolation, forgery.

Every test runs real sandboxes (root needed, as on the grading hosts and in CI) and ends by
checking that no process of a sandbox uid is left anywhere on the machine.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator

import pytest

from grader.executor import CellSpec, Limits, execute, leftover_pids, uids_taken
from labs.minichain.waiting import wait_until

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the grading sandbox needs root")

FAST = Limits(cell_timeout=10.0, submission_timeout=30.0, cpu_seconds=20)


def sandbox_pids() -> list[int]:
    """Pids of processes whose real uid belongs to this test process's sandboxes."""
    return leftover_pids(uids_taken())


def child_pids() -> set[int]:
    """Direct children of this test process, except the long-lived zygote."""
    me = os.getpid()
    kids = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == me and fields[0] != "Z":
            kids.add(int(entry))
    return kids


@pytest.fixture(autouse=True)
def no_stray_processes() -> Iterator[None]:
    before = child_pids()
    yield
    assert sandbox_pids() == [], "a sandbox process survived its submission"
    extra = child_pids() - before
    # The first test starts the zygote; nothing else may remain.
    assert len(extra) <= 1, f"stray child processes: {extra}"


def run(*sources: str, limits: Limits = FAST, hidden: set[int] = frozenset(), **kw):
    cells = [CellSpec(s, hidden=i in hidden) for i, s in enumerate(sources)]
    return execute(cells, limits=limits, **kw)


def stdout(outcome) -> str:
    return "".join(o["text"] for o in outcome.outputs if o.get("name") == "stdout")


def test_cells_share_state_and_last_expression_is_execute_result() -> None:
    out = run("x = 20", "def twice(v):\n    return 2 * v", "twice(x) + 2")
    assert [o.status for o in out] == ["ok", "ok", "ok"]
    assert out[0].outputs == []
    result = out[2].outputs[0]
    assert result["output_type"] == "execute_result"
    assert result["data"]["text/plain"] == "42"
    assert result["execution_count"] == 3


def test_line_and_cell_magics_run() -> None:
    out = run(
        "%%capture captured\nprint('hidden away')",
        "print(captured.stdout.strip())",
        "%time y = 6 * 7\nprint(y)",
    )
    assert [o.status for o in out] == ["ok", "ok", "ok"]
    assert stdout(out[0]) == ""
    assert stdout(out[1]) == "hidden away\n"
    assert "42" in stdout(out[2]) and "Wall time" in stdout(out[2])


def test_exception_gives_error_with_name_and_value() -> None:
    out = run("raise ValueError('bad input')", "print('still alive')")
    assert out[0].status == "error"
    assert out[0].error["ename"] == "ValueError"
    assert out[0].error["evalue"] == "bad input"
    assert out[0].reason == "ValueError: bad input"
    assert out[0].outputs[-1]["output_type"] == "error"
    assert out[1].status == "ok" and stdout(out[1]) == "still alive\n"


def test_interrupted_cell_times_out_and_the_next_cells_go_on_in_the_same_interpreter() -> None:
    limits = Limits(cell_timeout=1.0, submission_timeout=30.0)
    out = run("a = 1", "import time\nwhile True:\n    time.sleep(0.01)", "a", limits=limits)
    assert [o.status for o in out] == ["ok", "timeout", "ok"]
    assert out[1].reason == "cell exceeded its 1 s wall-time limit; interrupted"
    assert out[1].error["ename"] == "KeyboardInterrupt"
    assert out[2].outputs[0]["data"]["text/plain"] == "1"


def test_loop_ignoring_sigint_is_skipped_and_the_cells_after_it_still_run() -> None:
    limits = Limits(cell_timeout=1.0, submission_timeout=30.0)
    src = "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    pass"
    setup = "import os\na = 1\npid = os.getpid()\nprint('setup ran')"
    out = run(setup, src, "a", "a + 1", limits=limits)
    assert [o.status for o in out] == ["ok", "timeout", "ok", "ok"]
    assert "1 s wall-time limit; it ignored the interrupt; skipped" in out[1].reason
    assert stdout(out[0]) == "setup ran\n"  # the first run's output, not the replay's
    assert out[3].outputs[0]["data"]["text/plain"] == "2"
    # a hang in the last cell: nothing after it to rescue, no restart needed
    out = run("a = 1", src, limits=limits)
    assert [o.status for o in out] == ["ok", "timeout"]


def test_a_failed_cell_whose_rerun_crashes_is_left_out_and_a_completed_one_stops_grading() -> None:
    """After a crash, the earlier cells are re-run in a fresh sandbox. Here cell 0 behaves one
    way before a wall-clock moment and crashes its sandbox after it, and cell 1 crashes its own
    after that moment, so cell 0's re-run crashes too (as a recursion bomb's may on a loaded
    host). A cell that had failed is then left out and the grading goes on; one that had
    completed built the state the cells after it need, so they are not graded without it."""
    from concurrent.futures import ThreadPoolExecutor

    moment = time.time() + 6  # both first runs of cell 0 happen well before it
    limits = Limits(cell_timeout=15.0, submission_timeout=60.0)
    crash_after = f"import os, time\nif time.time() > {moment}:\n    os._exit(7)\n"
    crash_later = f"import os, time\ntime.sleep(max(0, {moment} - time.time()) + 0.2)\nos._exit(3)"
    failed = (crash_after + "raise ValueError('first run')", crash_later, "b = 2\nb")
    completed = (crash_after + "a = 1", crash_later, "a")
    with ThreadPoolExecutor(2) as pool:
        left_out, stopped = pool.map(lambda cells: run(*cells, limits=limits), (failed, completed))
    assert [o.status for o in left_out] == ["error", "killed", "ok"]
    assert left_out[0].error["evalue"] == "first run"  # its outcome is the first run's
    assert "left out when the cells before a later crash were re-run" in left_out[0].reason
    assert left_out[2].outputs[0]["data"]["text/plain"] == "2"
    assert [o.status for o in stopped] == ["ok", "killed", "not_run"]
    assert "cell 0, which had completed, did not finish" in stopped[2].reason


def test_submission_wall_time_limit() -> None:
    limits = Limits(cell_timeout=10.0, submission_timeout=1.5)
    out = run("import time; time.sleep(1)", "time.sleep(1)", "1", limits=limits)
    assert [o.status for o in out] == ["ok", "timeout", "not_run"]
    assert "submission" in out[1].reason


def test_os_exit_is_killed_and_sys_exit_is_an_error() -> None:
    out = run("import sys; sys.exit(0)", "print('after sys.exit')", "import os; os._exit(3)", "1")
    assert out[0].status == "error" and out[0].error["ename"] == "SystemExit"
    assert stdout(out[1]) == "after sys.exit\n"
    assert out[2].status == "killed" and "status 3" in out[2].reason
    assert out[3].status == "ok"  # in a fresh sandbox, after the earlier cells ran again


def test_memory_hog_fails_with_memory_error() -> None:
    limits = Limits(cell_timeout=10.0, memory_bytes=1024**3)
    out = run("hog = bytearray(4 * 1024**3)", "print('ok')", limits=limits)
    assert out[0].status == "error" and out[0].error["ename"] == "MemoryError"
    assert out[1].status == "ok"


def test_fork_bomb_is_capped_and_leaves_nothing() -> None:
    bomb = (
        "import os, time\n"
        "n = 0\n"
        "for _ in range(200):\n"
        "    try:\n"
        "        pid = os.fork()\n"
        "    except OSError:\n"
        "        continue\n"
        "    if pid == 0:\n"
        "        while True:\n"
        "            try:\n"
        "                os.fork()\n"
        "            except OSError:\n"
        "                time.sleep(0.01)\n"
        "    n += 1\n"
        "n"
    )
    limits = Limits(cell_timeout=10.0, max_processes=16)
    out = run(bomb, "print('survived')", limits=limits)
    assert out[0].status == "ok"
    assert int(out[0].outputs[-1]["data"]["text/plain"]) < 16
    assert out[1].status == "ok"


def test_no_network_inside_the_sandbox() -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.settimeout(0.2)
    port = listener.getsockname()[1]
    probe = (
        "import socket\n"
        "for target in [('127.0.0.1', PORT)]:\n"
        "    try:\n"
        "        socket.create_connection(target, timeout=2)\n"
        "        print('connected')\n"
        "    except OSError as exc:\n"
        "        print('blocked', type(exc).__name__)\n"
        "try:\n"
        "    socket.getaddrinfo('example.com', 80)\n"
        "    print('resolved')\n"
        "except OSError:\n"
        "    print('dns blocked')\n"
    ).replace("PORT", str(port))
    try:
        out = run(probe)
        with pytest.raises(TimeoutError):
            listener.accept()
    finally:
        listener.close()
    text = stdout(out[0])
    assert "blocked" in text and "connected" not in text
    assert "dns blocked" in text


def test_endless_output_is_capped() -> None:
    limits = Limits(cell_timeout=10.0, max_output_bytes=100_000)
    out = run("while True:\n    print('x' * 1000)", "print('next')", limits=limits)
    assert out[0].status == "error" and out[0].error["ename"] == "OutputLimitExceeded"
    assert len(stdout(out[0])) <= 100_000
    assert out[1].status == "ok"


def test_file_write_beyond_cap_fails() -> None:
    limits = Limits(cell_timeout=10.0, max_file_bytes=1024**2)
    out = run(
        "with open('small.bin', 'wb') as fh:\n    fh.write(b'0' * 1000)",
        "with open('big.bin', 'wb') as fh:\n    fh.write(b'0' * (2 * 1024**2))",
        limits=limits,
    )
    assert out[0].status == "ok"
    assert out[1].status == "error" and out[1].error["ename"] == "OSError"


def test_files_are_in_scratch_and_filesystem_is_read_only_elsewhere() -> None:
    out = run(
        "print(open('data/in.txt').read())",
        "import os\nfor p in ['/usr/x', '/etc/x', '/x']:\n"
        "    try:\n        open(p, 'w')\n        print('wrote', p)\n"
        "    except OSError:\n        print('denied', p)",
        files={"data/in.txt": b"hello scratch"},
    )
    assert stdout(out[0]) == "hello scratch\n"
    assert "wrote" not in stdout(out[1]) and stdout(out[1]).count("denied") == 3


def test_temporary_files_work_wherever_the_repository_lives() -> None:
    # With the repository cloned under /tmp, the sandbox's /tmp is a read-only view: tempfile
    # must still get a writable folder (solc-js and many libraries open temporary files).
    out = run(
        "import tempfile\nwith tempfile.TemporaryFile() as fh:\n    fh.write(b'x')\n"
        "print(tempfile.mkdtemp().startswith(tempfile.gettempdir()))"
    )
    assert out[0].status == "ok", out[0]
    assert stdout(out[0]) == "True\n"


def test_hidden_source_and_gradebook_are_not_readable(tmp_path) -> None:
    marker = "HIDDEN_MARKER_7f3a"
    gradebook = tmp_path / "gradebook.json"
    gradebook.write_text(marker)
    snoop = (
        "import os\n"
        "hits = []\n"
        f"if os.path.exists({str(tmp_path)!r}):\n"
        "    hits.append('tmp_path visible')\n"
        "for root in ['/scratch', '/proc', '/tmp', '/root', '/work']:\n"
        "    for dirpath, dirs, files in os.walk(root):\n"
        "        if dirpath.startswith('/proc/') and dirpath.count('/') > 2:\n"
        "            dirs[:] = []\n"
        "        if '.venv' in dirpath or '.pyenv' in dirpath:\n"
        "            dirs[:] = []\n"
        "            continue\n"
        "        for f in files:\n"
        "            p = os.path.join(dirpath, f)\n"
        "            try:\n"
        "                with open(p, 'rb') as fh:\n"
        "                    if b'HIDDEN_' + b'MARKER_7f3a' in fh.read(1 << 20):\n"
        "                        hits.append(p)\n"
        "            except OSError:\n"
        "                pass\n"
        "print('hits', hits)"
    )
    hidden = f"# {marker}\nassert answer == 42"
    after = (
        "import linecache\n"
        "seen = [str(In), str(globals().get('_i', '')), *(''.join(v[2]) for v in linecache.cache.values())]\n"
        "marker = 'HIDDEN_' + 'MARKER_7f3a'  # never spelled whole in a learner cell\n"
        "print('leak' if any(marker in s for s in seen) else 'clean')"
    )
    out = run(snoop, "answer = 42", hidden, after, hidden={2})
    assert stdout(out[0]) == "hits []\n"
    assert out[2].status == "ok"
    assert stdout(out[3]) == "clean\n"


def test_forged_markers_and_rewritten_builtins_do_not_pass_hidden_tests() -> None:
    forge = (
        "import builtins, json\n"
        "print(json.dumps({'status': 'ok', 'token': 'x', 'outputs': [], 'error': None}))\n"
        "builtins.abs = lambda obj: 99\n"
        "builtins.AssertionError = type('Nope', (Exception,), {})\n"
    )
    out = run(forge, "assert abs(-1) == 1", "abs(-5)", "assert abs(-2) == 2", hidden={1, 3})
    assert [o.status for o in out] == ["ok", "ok", "ok", "ok"]  # pristine abs in hidden cells
    assert out[2].outputs[0]["data"]["text/plain"] == "99"  # learner cells keep their own
    out = run(forge, "assert abs(-1) == 99", hidden={1})
    assert out[1].status == "error" and out[1].error["ename"] == "AssertionError"


def test_forked_process_cannot_forge_a_hidden_reply() -> None:
    # The learner's function forks during the hidden test; the child digs the cell token out of
    # the runner's frames and sends an "ok" reply on the sandbox socket, while the parent fails.
    learner = (
        "import os, sys, socket, time\n"
        "def answer():\n"
        "    if os.fork() == 0:\n"
        "        from grader.sandbox import send_message\n"
        "        f = sys._getframe()\n"
        "        token = None\n"
        "        while f is not None:\n"
        "            m = f.f_locals.get('msg')\n"
        "            if isinstance(m, dict) and 'token' in m:\n"
        "                token = m['token']\n"
        "            f = f.f_back\n"
        "        s = socket.socket(fileno=3)\n"
        "        send_message(s, {'token': token, 'status': 'ok', 'outputs': [], 'error': None})\n"
        "        os._exit(0)\n"
        "    time.sleep(0.5)\n"
        "    return 41\n"
    )
    out = run(learner, "assert answer() == 42", hidden={1})
    assert out[1].status == "error"
    assert out[1].error["ename"] == "AssertionError"


def test_repeated_submissions_start_fresh() -> None:
    # Each submission is a new fork of the warm zygote: nothing carries over between learners.
    first = run("leak = 'from learner A'", "open('a.txt', 'w').write('A')")
    second = run("'leak' in globals()", "import os; os.path.exists('a.txt')")
    assert [o.status for o in first + second] == ["ok"] * 4
    assert second[0].outputs[0]["data"]["text/plain"] == "False"
    assert second[1].outputs[0]["data"]["text/plain"] == "False"


def test_the_zygote_warm_up_leaves_nothing_a_learner_sees() -> None:
    # The zygote runs WARM_UP_CELLS in a throwaway shell; each sandbox's shell must look like a
    # fresh one: the first cell is In[1] (the count reads 2 while it runs, as in a fresh shell),
    # Out and the underscores are empty, and no name or traceback of the warm-up is left.
    out = run(
        "import sys\n"
        "ip = get_ipython()\n"
        "state = (ip.execution_count, list(In), dict(Out), _, __, ___,\n"
        "         [n for n in ('value', 'f', 'broken', 'HTML') if n in globals()],\n"
        "         [n for n in ('last_type', 'last_value', 'last_exc') if hasattr(sys, n)])",
        "print(repr(state[0]), len(state[1]), repr(state[2:]))",
    )
    assert [o.status for o in out] == ["ok", "ok"]
    assert stdout(out[1]) == "2 2 ({}, '', '', '', [], [])\n"


def test_display_data_and_stderr_are_nbformat_outputs() -> None:
    out = run(
        "from IPython.display import HTML, display\n"
        "import sys\n"
        "display(HTML('<b>hi</b>'))\n"
        "print('to stderr', file=sys.stderr)"
    )
    kinds = [(o["output_type"], o.get("name")) for o in out[0].outputs]
    assert kinds == [("display_data", None), ("stream", "stderr")]
    assert out[0].outputs[0]["data"]["text/html"] == "<b>hi</b>"


def test_bad_file_names_and_limits_are_refused() -> None:
    with pytest.raises(ValueError, match="relative path"):
        execute([CellSpec("1")], files={"../escape": b""}, limits=FAST)
    with pytest.raises(ValueError, match="cell_timeout"):
        Limits(cell_timeout=0)


def test_replaced_shell_methods_do_not_pass_hidden_tests() -> None:
    hijack = (
        "answer = 41\n"
        "from IPython.core.interactiveshell import InteractiveShell, ExecutionResult\n"
        "def fake(self, *a, **k):\n"
        "    return ExecutionResult(None)\n"
        "InteractiveShell.run_cell = fake\n"
        "InteractiveShell.run_code = fake\n"
        "get_ipython().run_cell = fake\n"
    )
    out = run(hijack, "assert answer == 42", hidden={1})
    assert out[1].status == "error" and out[1].error["ename"] == "AssertionError"


def test_vyper_cell_magic_compiles_and_deploys() -> None:
    out = run(
        "%load_ext boa.ipython",
        "%%vyper Adder\n@external\ndef add(a: uint256, b: uint256) -> uint256:\n    return a + b\n",
        "Adder.deploy().add(2, 3)",
        limits=Limits(cell_timeout=20.0, submission_timeout=40.0, cpu_seconds=30),
    )
    assert [o.status for o in out] == ["ok", "ok", "ok"], out
    assert out[2].outputs[0]["data"]["text/plain"] == "5"


def test_concurrent_submissions_are_isolated() -> None:
    from concurrent.futures import ThreadPoolExecutor

    def one(k: int):
        return run(
            f"secret = {k}",
            "import os; open('mine.txt', 'w').write(str(secret))",
            "sorted(os.listdir('.')), open('mine.txt').read(), os.getuid()",
        )

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(one, range(4)))
    uids = set()
    for k, out in enumerate(results):
        assert [o.status for o in out] == ["ok", "ok", "ok"]
        files, content, uid = eval(out[2].outputs[0]["data"]["text/plain"])
        assert content == str(k)
        assert "mine.txt" in files
        uids.add(uid)
    assert len(uids) == 4  # one uid per concurrent sandbox: RLIMIT_NPROC is per sandbox


def test_shell_escapes_run_and_are_capped() -> None:
    limits = Limits(cell_timeout=10.0, max_output_bytes=50_000)
    out = run("n = 5\n!echo $n; exit 3", "_exit_code", "!yes", "print('after')", limits=limits)
    assert stdout(out[0]) == "5\n"
    assert out[1].outputs[0]["data"]["text/plain"] == "3"
    assert out[2].status == "error" and out[2].error["ename"] == "OutputLimitExceeded"
    assert out[3].status == "ok"


def test_patched_runner_json_and_results_do_not_pass_hidden_tests() -> None:
    patch = (
        "import json, grader.sandbox as gs\n"
        "from IPython.core.interactiveshell import ExecutionResult\n"
        "ok = {'status': 'ok', 'outputs': [], 'error': None}\n"
        "gs._Runner._run = lambda self, source, hidden: dict(ok)\n"
        "gs._Runner.run = lambda self, source, hidden: dict(ok)\n"
        "real = json.dumps\n"
        "json.dumps = lambda obj, **k: real({**obj, 'status': 'ok', 'error': None}, **k)\n"
        "ExecutionResult.success = property(lambda self: True)\n"
        "answer = 41"
    )
    out = run(patch, "assert answer == 42", hidden={1})
    assert out[1].status == "error" and out[1].error["ename"] == "AssertionError"
    # The same patches made by a function the hidden test itself calls.
    out = run(
        f"def answer():\n    exec({patch!r}, globals())\n    return 41",
        "assert answer() == 42",
        hidden={1},
    )
    assert out[1].status == "error"


def test_hidden_cell_runs_while_learner_threads_run() -> None:
    """The hidden test runs in the judge, where no learner thread lives: a thread the learner
    left running costs nothing (as in nbgrader)."""
    start = (
        "import threading, time\nt = threading.Thread(target=time.sleep, args=(1.0,))\nt.start()"
    )
    out = run(start, "assert t.is_alive()", "t.join()", "assert True", hidden={1, 3})
    assert [o.status for o in out] == ["ok", "ok", "ok", "ok"], out


def test_a_dead_zygote_is_replaced() -> None:
    from grader import executor

    run("1")
    proc = executor._ZYGOTE._proc
    assert proc is not None
    proc.kill()
    proc.wait()
    out = run("a = 2", "a * 21")
    assert out[1].outputs[0]["data"]["text/plain"] == "42"


def test_fd_level_output_is_captured_and_capped() -> None:
    limits = Limits(cell_timeout=2.0, max_output_bytes=10_000)
    out = run(
        "import os, subprocess\nsubprocess.run(['echo', 'from a subprocess'])\nos.write(1, b'raw\\n')",
        "import os, sys\nos.write(2, b'dying\\n')\nos._exit(4)",
        limits=limits,
    )
    assert stdout(out[0]) == "from a subprocess\nraw\n"
    assert out[1].status == "killed" and stdout(out[1]) == "dying\n"
    flood = run("import os\nwhile True:\n    os.write(1, b'x' * 4096)", limits=limits)
    assert flood[0].status == "timeout"
    assert 0 < len(stdout(flood[0])) <= 10_000


def test_a_course_preload_that_fails_to_import_does_not_stop_grading(monkeypatch) -> None:
    from grader import executor

    monkeypatch.setattr(executor, "_COURSE_PRELOAD", ["json", "no_such_module_for_the_zygote"])
    executor.shutdown()  # the next sandbox needs a zygote started with this preload
    try:
        out = run(
            "import sys\n'json' in sys.modules, 'no_such_module_for_the_zygote' in sys.modules"
        )
        assert out[0].status == "ok"
        assert out[0].outputs[0]["data"]["text/plain"] == "(True, False)"
    finally:
        executor.shutdown()  # later tests get a zygote with the usual preload


def test_prestarted_sandboxes_are_fresh_and_all_gone_after_the_batch() -> None:
    from grader import executor
    from grader.executor import prestart

    with prestart(FAST, count=2):
        first = run(
            "leak = 'from learner A'\nopen('a.txt', 'w').write('A')", "import os\nos.getpid()"
        )
        second = run("'leak' in globals(), __import__('os').path.exists('a.txt')")
        hidden = run("x = 41", "assert x + 1 == 42", hidden={1})
        with_files = run("open('data.txt').read()", files={"data.txt": b"side file"})
        other_limits = run("1 + 1", limits=Limits(cell_timeout=9.0))
        spares = executor._SPARES
        assert spares is not None
        wait_until(lambda: len(spares.ready) >= 2, 10, interval=0.05, message="no spares")
        assert len(spares.ready) == 2  # kept ready for the next ones
    assert first[1].outputs[0]["data"]["text/plain"] == "1"  # pid 1 of its own namespace
    assert second[0].outputs[0]["data"]["text/plain"] == "(False, False)"
    assert [o.status for o in hidden] == ["ok", "ok"]
    assert with_files[0].outputs[0]["data"]["text/plain"] == "'side file'"
    assert other_limits[0].status == "ok"
    # the autouse fixture then checks that no sandbox process of the batch is left
