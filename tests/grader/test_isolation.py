"""No channel between submissions: kernel objects, the warm parent's memory, CPU time.

Each test attacks from inside real sandboxes (root needed, as on the grading hosts): a syscall a
notebook never needs must fail with an error learner code can catch, nothing one submission
leaves in the kernel or in the zygote may reach a later one, and a CPU hog beside a cell must not
change that cell's verdict. Honest notebooks (threads, subprocesses, multiprocessing) still run.
"""

from __future__ import annotations

import base64
import hashlib
import os
import platform
import secrets
import threading
from collections.abc import Iterator

import pytest

from grader import cgroups
from grader.executor import SANDBOX_UIDS, CellSpec, Limits, execute, leftover_pids, uids_taken
from labs.minichain.waiting import wait_until

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="the grading sandbox needs root"),
    pytest.mark.skipif(platform.machine() != "x86_64", reason="syscall numbers are x86_64's"),
]

FAST = Limits(cell_timeout=10.0, submission_timeout=60.0, cpu_seconds=30)


@pytest.fixture(autouse=True)
def nothing_left_behind() -> Iterator[None]:
    yield
    assert leftover_pids(uids_taken()) == [], "a sandbox process survived its submission"
    cg = cgroups.host()
    groups = [os.path.join(p, f"uid-{u}") for p in (cg.v2, cg.v1_cpu) if p for u in uids_taken()]
    assert [g for g in groups if os.path.exists(g)] == [], "a sandbox's cgroup was left behind"


def run(*sources: str, limits: Limits = FAST, **kw):
    return execute([CellSpec(s) for s in sources], limits=limits, **kw)


def stdout(outcome) -> str:
    return "".join(o["text"] for o in outcome.outputs if o.get("name") == "stdout")


# A cell that calls raw syscalls through ctypes and prints "name errno" per call (0 = it worked).
PROBE = r"""
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
def call(name, nr, *args):
    ctypes.set_errno(0)
    rc = libc.syscall(nr, *args)
    print(name, 0 if rc >= 0 else ctypes.get_errno())
    return rc
"""


def results(outcome) -> dict[str, int]:
    found = {}
    for line in stdout(outcome).splitlines():
        name, _, err = line.rpartition(" ")
        if name and err.lstrip("-").isdigit():
            found[name] = int(err)
    return found


def test_keyring_calls_are_refused_and_no_key_reaches_a_later_submission() -> None:
    payload = secrets.token_hex(16)
    add = PROBE + (
        "KEY_SPEC_USER_KEYRING = ctypes.c_long(-4)\n"
        f"data = b'{payload}'\n"
        "call('add_key', 248, b'user', b'chainacademy-probe', data, len(data), "
        "KEY_SPEC_USER_KEYRING)\n"
        "call('add_key session', 248, b'user', b'chainacademy-probe', data, len(data), "
        "ctypes.c_long(-3))\n"
    )
    first = run(add)
    assert first[0].status == "ok", first[0].reason
    assert results(first[0]) == {"add_key": 1, "add_key session": 1}  # EPERM, never a key
    read = PROBE + (
        "buf = ctypes.create_string_buffer(256)\n"
        "key = call('keyctl search', 250, 10, ctypes.c_long(-4), b'user', "
        "b'chainacademy-probe', 0)\n"
        "if key > 0:\n"
        "    n = libc.syscall(250, 11, key, buf, 256)\n"
        "    print('payload', buf.raw[:n].decode())\n"
        "call('request_key', 249, b'user', b'chainacademy-probe', None, 0)\n"
    )
    second = run(read)
    assert second[0].status == "ok", second[0].reason
    assert payload not in stdout(second[0])
    assert results(second[0]) == {"keyctl search": 1, "request_key": 1}
    # and on the host side: no sandbox uid owns a key
    with open("/proc/key-users") as fh:
        owners = {int(line.split(":")[0]) for line in fh if line.strip()}
    assert not owners & set(uids_taken())


def test_namespace_debug_and_kernel_calls_are_refused_with_eperm() -> None:
    cell = PROBE + (
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    import time\n"
        "    time.sleep(30)\n"
        "    os._exit(0)\n"
        "call('ptrace attach', 101, 16, pid, 0, 0)\n"
        "buf = ctypes.create_string_buffer(8)\n"
        "class IoVec(ctypes.Structure):\n"
        "    _fields_ = [('base', ctypes.c_void_p), ('len', ctypes.c_size_t)]\n"
        "local = IoVec(ctypes.addressof(buf), 8)\n"
        "remote = IoVec(id(buf), 8)\n"
        "call('process_vm_readv', 310, pid, ctypes.byref(local), 1, ctypes.byref(remote), 1, 0)\n"
        "os.kill(pid, 9)\n"
        "os.waitpid(pid, 0)\n"
        "call('unshare user', 272, 0x10000000)\n"
        "call('unshare net', 272, 0x40000000)\n"
        "call('setns', 308, 0, 0)\n"
        "call('mount', 165, b'none', b'/scratch', b'tmpfs', 0, None)\n"
        "call('umount2', 166, b'/proc', 2)\n"
        "call('pivot_root', 155, b'/', b'/')\n"
        "call('bpf', 321, 0, None, 0)\n"
        "call('perf_event_open', 298, None, 0, -1, -1, 0)\n"
        "call('userfaultfd', 323, 0)\n"
        "call('kexec_load', 246, 0, 0, None, 0)\n"
        "call('init_module', 175, None, 0, b'')\n"
        "call('clone newns', 56, 0x00020000 | 17, None, None, None, None)\n"
        "call('clone3', 435, None, 0)\n"
        "print(open('/proc/self/status').read())\n"
    )
    out = run(cell)
    assert out[0].status == "ok", out[0].reason
    got = results(out[0])
    eperm = {
        "ptrace attach",
        "process_vm_readv",
        "unshare user",
        "unshare net",
        "setns",
        "mount",
        "umount2",
        "pivot_root",
        "bpf",
        "perf_event_open",
        "userfaultfd",
        "kexec_load",
        "init_module",
        "clone newns",
    }
    assert {name: got.get(name) for name in eperm} == dict.fromkeys(eperm, 1)
    assert got["clone3"] == 38  # ENOSYS: C libraries then fall back to clone, which is checked
    status = stdout(out[0])
    assert "\nSeccomp:\t2\n" in status
    assert "\nNoNewPrivs:\t1\n" in status


def test_honest_notebooks_still_run_under_the_filter() -> None:
    out = run(
        "import hashlib\nprint(hashlib.sha256(b'abc').hexdigest()[:8])",
        "import threading\nbox = []\n"
        "ts = [threading.Thread(target=box.append, args=(i,)) for i in range(4)]\n"
        "[t.start() for t in ts]\n[t.join() for t in ts]\nprint(sorted(box))",
        "import subprocess\nprint(subprocess.run(['echo', 'child'], capture_output=True, "
        "text=True).stdout.strip())",
        "!echo shell",
        "import multiprocessing as mp\n"
        "with mp.get_context('fork').Pool(2) as pool:\n"
        "    print(pool.map(abs, [-1, -2, -3]))",
        "from concurrent.futures import ProcessPoolExecutor\n"
        "with ProcessPoolExecutor(2) as ex:\n"
        "    print(list(ex.map(len, ['ab', 'cde'])))",
        "import os\nprint(os.getpid(), os.listdir('.'))",
    )
    assert [o.status for o in out] == ["ok"] * 7, [o.reason for o in out]
    texts = [stdout(o).strip() for o in out]
    assert texts[0] == "ba7816bf"
    assert texts[1] == "[0, 1, 2, 3]"
    assert texts[2] == "child"
    assert texts[3] == "shell"
    assert texts[4] == "[1, 2, 3]"
    assert texts[5] == "[2, 3]"
    assert texts[6].startswith("1 ")  # pid 1 of its own namespace


SCAN = r"""
import ctypes, hashlib
def scan(prefix, digest, size):
    hits = 0
    with open('/proc/self/maps') as fh:
        regions = [line.split() for line in fh]
    for fields in regions:
        # the heap and anonymous mappings: where an inherited copy of someone's data would be
        if not fields[1].startswith('r') or (len(fields) > 5 and fields[5] != '[heap]'):
            continue
        lo, hi = (int(v, 16) for v in fields[0].split('-'))
        data = ctypes.string_at(lo, hi - lo)
        at = data.find(prefix)
        while at >= 0:
            if hashlib.sha256(data[at:at + size]).hexdigest() == digest:
                hits += 1
            at = data.find(prefix, at + 1)
    return hits
"""


def _needle_args(needle: bytes) -> str:
    """Arguments that let a scan find ``needle`` without the cell's source containing it."""
    return f"bytes.fromhex('{needle[:6].hex()}'), '{hashlib.sha256(needle).hexdigest()}', {len(needle)}"


def _zygote_pid() -> int:
    """The warm parent this test process started (a child running ``grader.sandbox``)."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{entry}/cmdline", "rb") as fh:
                argv = fh.read().split(b"\0")
        except OSError:
            continue
        if ppid == os.getpid() and b"grader.sandbox" in argv:
            return int(entry)
    raise AssertionError("no zygote runs for this process")


def _copies_in(pid: int, needle: bytes) -> int:
    """How often ``needle`` is in the readable memory of process ``pid`` (read as root)."""
    hits = 0
    with open(f"/proc/{pid}/maps") as fh:
        regions = [line.split() for line in fh]
    with open(f"/proc/{pid}/mem", "rb", buffering=0) as mem:
        for fields in regions:
            if not fields[1].startswith("r") or fields[-1] in ("[vvar]", "[vsyscall]"):
                continue
            lo, hi = (int(v, 16) for v in fields[0].split("-"))
            try:
                mem.seek(lo)
                hits += mem.read(hi - lo).count(needle)
            except (OSError, ValueError, OverflowError):
                continue
    return hits


@pytest.mark.parametrize("size", [4000, 100_000])
def test_a_submissions_files_never_reach_a_later_sandbox_through_the_warm_parent(size) -> None:
    secret = secrets.token_hex(24).encode()  # 48 bytes: its base64 is aligned inside the file's
    body = bytearray(os.urandom(size).hex().encode()[:size])
    body[999 : 999 + len(secret)] = secret
    first = run("print(len(open('notes.txt', 'rb').read()))", files={"notes.txt": bytes(body)})
    assert first[0].status == "ok" and stdout(first[0]).strip() == str(size), first[0].reason
    encoded = base64.b64encode(bytes(body))
    b64_secret = base64.b64encode(secret)
    assert encoded[1332 : 1332 + len(b64_secret)] == b64_secret
    # the warm parent never read them, in any form
    zygote = _zygote_pid()
    assert _copies_in(zygote, secret) == 0
    assert _copies_in(zygote, b64_secret) == 0
    scan = run(
        SCAN,
        f"print('raw', scan({_needle_args(secret)}))",
        f"print('b64', scan({_needle_args(b64_secret)}))",
        limits=Limits(cell_timeout=60.0, submission_timeout=180.0, cpu_seconds=120),
    )
    assert [o.status for o in scan] == ["ok"] * 3, [o.reason for o in scan]
    assert stdout(scan[1]).strip() == "raw 0"
    assert stdout(scan[2]).strip() == "b64 0"


def test_the_scan_finds_a_secret_its_own_sandbox_holds() -> None:
    """The control for the test above: the same scan does find data its sandbox was given."""
    secret = secrets.token_hex(24).encode()
    out = run(
        SCAN,
        "data = open('notes.txt', 'rb').read()",
        f"print('raw', scan({_needle_args(secret)}) > 0)",
        files={"notes.txt": secret},
        limits=Limits(cell_timeout=60.0, submission_timeout=180.0, cpu_seconds=120),
    )
    assert [o.status for o in out] == ["ok"] * 3, [o.reason for o in out]
    assert stdout(out[2]).strip() == "raw True"


# A cell whose work is a fixed amount of CPU (hashing), far below the cell's time alone.
WORK = (
    "import hashlib\nblock = b'x' * 1_000_000\nfor _ in range(1500):\n    hashlib.sha256(block)\n"
)
HOG_CELL = (
    "import os\n"
    "for _ in range(24):\n"
    "    if os.fork() == 0:\n"
    "        os.setsid()  # a session of its own: where the kernel groups by session, a group\n"
    "        while not os.path.exists('/scratch/stop'):\n"
    "            pass\n"
    "        os._exit(0)\n"
)
HOG_WAIT = "import os, time\nwhile not os.path.exists('/scratch/stop'):\n    time.sleep(0.05)\n"


def _busy_hog_pids() -> list[int]:
    """Pids of running (state R) processes of this test's sandbox uids (only the hog's, then)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/status") as fh:
                text = fh.read()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
        uid = int(fields["Uid"].split()[0])
        if uid in SANDBOX_UIDS and fields["State"].strip()[0] == "R":
            found.append(int(entry))
    return found


def test_a_cpu_hog_beside_a_cell_does_not_change_its_verdict() -> None:
    # about a second of CPU per run of WORK: far inside its 5 s even on a busy host, as long as
    # the host's load cannot push a cell past its limit (the guarantee under test)
    limits = Limits(cell_timeout=5.0, submission_timeout=200.0, cpu_seconds=60, wall_factor=8)
    cells = [CellSpec(WORK + "print('done')"), CellSpec("while True:\n    pass")]
    alone = execute(cells, limits=limits)
    assert [o.status for o in alone] == ["ok", "timeout"], [o.reason for o in alone]

    hog_done: list[object] = []
    hog = threading.Thread(
        target=lambda: hog_done.append(
            execute(
                [CellSpec(HOG_CELL), CellSpec(HOG_WAIT)],
                limits=Limits(cell_timeout=100.0, submission_timeout=110.0, max_processes=32),
            )
        )
    )
    hog.start()
    hog_pids: list[int] = []
    try:

        def hog_busy() -> bool:
            hog_pids[:] = _busy_hog_pids()
            return len(hog_pids) >= 20

        wait_until(hog_busy, timeout=60)
        beside = execute(cells, limits=limits)
    finally:
        for pid in hog_pids:  # any of its processes shows the hog's own root
            try:
                with open(f"/proc/{pid}/root/scratch/stop", "w"):
                    break
            except OSError:
                continue
        hog.join()
    assert [o.status for o in beside] == [o.status for o in alone], [o.reason for o in beside]
    assert stdout(beside[0]).strip() == "done"


def test_the_cpu_time_limit_holds_for_all_of_a_sandboxs_processes_together() -> None:
    """Four busy children under a 3 s limit: each alone stays under its own RLIMIT_CPU for long
    after the four together have used 3 s, which is where the sandbox must end."""
    limits = Limits(cell_timeout=60.0, submission_timeout=120.0, cpu_seconds=3)
    cell = (
        "import os, time\n"
        "for _ in range(4):\n"
        "    if os.fork() == 0:\n"
        "        while True:\n"
        "            pass\n"
        "time.sleep(100)\n"
    )
    out = execute([CellSpec(cell), CellSpec("print('after')")], limits=limits)
    assert out[0].status == "killed", out[0].reason
    assert "CPU time" in out[0].reason
    assert out[1].status == "ok" and stdout(out[1]).strip() == "after"


def test_files_larger_than_learner_writes_are_placed_and_prestarted_sandboxes_take_them() -> None:
    from grader.executor import prestart

    limits = Limits(cell_timeout=10.0, submission_timeout=60.0, max_file_bytes=1000)
    data = os.urandom(5000)
    digest = hashlib.sha256(data).hexdigest()
    cell = "import hashlib\nprint(hashlib.sha256(open('sub/data.bin', 'rb').read()).hexdigest())"
    with prestart(limits, count=1):
        outs = [execute([CellSpec(cell)], files={"sub/data.bin": data}, limits=limits)]
        outs.append(execute([CellSpec(cell)], files={"sub/data.bin": data}, limits=limits))
    for out in outs:
        assert out[0].status == "ok", out[0].reason
        assert stdout(out[0]).strip() == digest
