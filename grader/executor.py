"""Run one submission's cells in a fresh sandbox, with no Jupyter kernel start.

Design (measured in bench/executor_start.py): a warm zygote process (grader.sandbox) has imported
IPython and built an InteractiveShell once; each submission is a fork of it, jailed in new
namespaces under an unprivileged uid with rlimits and a seccomp filter (grader.syscall_filter),
in a cgroup of its own (grader.cgroups). This process is the *supervisor*: it hands the
submission's files to the sandbox itself (never through the zygote), sends one cell at a time,
enforces wall time per cell and per submission and the sandbox's total CPU time, caps what it
reads, and decides every cell's status from what it observes itself:

* ``ok``/``error`` only from a well-formed reply carrying that cell's fresh random token, received
  before the deadline on a SOCK_SEQPACKET socket whose kernel-attested sender pid (SO_PASSCRED)
  is the sandbox's main process. Forked learner processes and partial frames cannot forge it;
  learner stdout is never parsed.
* ``killed`` when the sandbox process dies (os._exit, CPU limit, crash) before replying, or floods.
* ``timeout`` when a deadline passes. The cell is interrupted first (SIGINT, as nbgrader interrupts
  the kernel) and later cells go on in the same interpreter; a cell that ignores the interrupt
  gets its pid namespace killed, like a cell that killed its sandbox. Time the sandbox spent
  waiting for a CPU does not count (up to ``Limits.wall_factor``), so a busy neighbour cannot
  change a verdict.
* After a sandbox ended that way, a fresh one re-runs the earlier cells (their outcomes stay as
  first observed), skips the offending cell and goes on, so every cell that can be scored is.
  An earlier cell that had failed and does not finish when re-run is left out of the re-runs
  too; one that had completed and does not finish stops the grading of the cells after it.
* ``not_run`` only for cells after the submission's wall time, MAX_RESTARTS, or such a completed
  cell, saying why.

Hidden tests are judged outside the learner's interpreter. The BEGIN/END HIDDEN TESTS blocks of a
hidden test cell (the whole cell when it has no markers) go to a *judge*: a second fork of the
zygote, jailed the same way under another uid, started at the submission's first hidden test, that
never runs learner code. The visible lines of the cell run in the learner's sandbox, as the
released notebook shows them. Names a hidden block reads without defining it resolve in the
learner's sandbox: the judge asks, this process relays the request (on the judge's cell token) to
the learner's sandbox and its answer back, as JSON (see grader.remote: plain values cross as
copies, other learner objects as handles). So the hidden source and expected values never enter a
process where learner code ran; what learner code changed in its interpreter (IPython
transformers, event callbacks, exception handlers, trace and audit hooks, threads) does not run
where the verdict is made; and a learner thread left running costs nothing. The judge reports
only the instructor's messages (an assert's, a checker's) and an exception type for anything
else, never a traceback. Scoring then gives points only to an ``ok`` status.

Residual risks, stated honestly: a hidden test that calls a name bound in the learner's namespace
(a checker imported in a visible cell) runs what the learner bound there; results computed in the
learner's sandbox (a consensus simulation beside a learner engine class) are data the learner
could fake, re-verified by the checker where it can. Memory is capped per process (RLIMIT_AS;
the sandbox's cgroup accounts CPU only), so a sandbox may use up to max_processes x memory_bytes plus its scratch
tmpfs: keep max_processes small.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import fcntl
import json
import os
import secrets
import select
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from grader.cgroups import SandboxCpu
from grader.limits import Limits
from grader.sandbox import CHUNK, ZYGOTE_FD_ENV, send_message

HIDDEN_BEGIN = "BEGIN HIDDEN TESTS"
HIDDEN_END = "END HIDDEN TESTS"

__all__ = [
    "SANDBOX_UIDS",
    "CellOutcome",
    "CellSpec",
    "Limits",
    "SandboxError",
    "execute",
    "prestart",
    "shutdown",
    "uids_taken",
]

Status = Literal["ok", "error", "timeout", "killed", "not_run"]
_OUTPUT_TYPES = {"stream", "execute_result", "display_data", "error"}
_SIGNAL_HINT: dict[int, str] = {  # by number: a wait status gives one
    signal.SIGXCPU: "CPU time limit reached",
    signal.SIGKILL: "killed",
    signal.SIGSEGV: "segmentation fault",
    signal.SIGXFSZ: "file size limit reached",
}


class SandboxError(RuntimeError):
    """The sandbox could not be started on this host (an operator problem, not a learner's)."""


@dataclass(frozen=True)
class CellSpec:
    """One code cell to run; a ``hidden`` cell's hidden blocks run in the judge (see above)."""

    source: str
    hidden: bool = False


@dataclass
class CellOutcome:
    """What the supervisor observed for one cell; ``reason`` is always a one-line explanation."""

    status: Status
    outputs: list[dict[str, Any]] = field(default_factory=list)
    error: dict[str, Any] | None = None
    reason: str = ""


class _Zygote:
    """The warm parent: started once per supervising process, restarted if it dies."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._ctl: socket.socket | None = None
        self._ready = False

    def _start(self) -> None:
        """Launch the zygote process; it says ``R`` on the control socket once it is warm."""
        if os.geteuid() != 0:
            raise SandboxError("the grading sandbox needs root (namespaces, chroot, setuid)")
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        env = dict(os.environ, **{ZYGOTE_FD_ENV: str(theirs.fileno())})
        env.pop("COVERAGE_PROCESS_START", None)
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "grader.sandbox", *preload_modules()],
            pass_fds=[theirs.fileno()],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
        )
        theirs.close()
        self._ctl = mine
        self._ready = False

    def _ensure(self, block: bool = True) -> None:
        """Start the zygote unless it runs and, with ``block``, wait until it is warm (call with
        ``_lock`` held)."""
        if self._proc is None or self._proc.poll() is not None:
            if self._ctl is not None:  # a zygote that died (OOM killer, operator): replace it
                self._ctl.close()
                self._ctl = None
            self._start()
        if block and not self._ready:
            assert self._ctl is not None
            self._ctl.settimeout(60)
            try:
                if self._ctl.recv(1) != b"R":
                    raise SandboxError("the sandbox zygote failed to start")
            finally:
                self._ctl.settimeout(None)
            self._ready = True

    def warm(self, block: bool = True) -> None:
        with self._lock:
            self._ensure(block)

    def spawn(self, request: dict[str, Any], fds: list[int]) -> tuple[int, int]:
        """Fork a sandbox: (pid that reports its exit, i.e. the zygote's; the sandbox's pid)."""
        with self._lock:
            self._ensure()
            assert self._ctl is not None
            raw = json.dumps(request).encode()
            socket.send_fds(self._ctl, [struct.pack("!I", len(raw)) + raw], fds)
            head = _recv_exact(self._ctl, 4)
            answer = json.loads(_recv_exact(self._ctl, struct.unpack("!I", head)[0]))
        if "error" in answer:
            raise SandboxError(answer["error"])
        return int(answer["reporter"]), int(answer["pid"])

    def stop(self) -> None:
        with self._lock:
            if self._ctl is not None:
                self._ctl.close()
                self._ctl = None
            if self._proc is not None:
                try:
                    self._proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    self._proc.kill()
                    self._proc.wait()
                self._proc = None


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        more = sock.recv(n - len(buf))
        if not more:
            raise SandboxError("the sandbox zygote exited")
        buf += more
    return bytes(buf)


# Modules the zygote imports once, so each sandbox has them warm, and so the hidden cells get them
# back pristine (grader.sandbox restores what the zygote imported): the checkers always, plus
# CHAINACADEMY_SANDBOX_PRELOAD (comma-separated), e.g. "boa,boa.ipython" for %%vyper labs or
# "web3,eth_tester" for contract labs. Read when the zygote starts.
DEFAULT_PRELOAD = ["grader.checks.hashing", "grader.checks.consensus", "grader.checks.contracts"]

LAB_PRELOAD = (
    "web3,eth_account,labs.minichain.execution,labs.minichain.rpc,labs.client,"
    "vyper,labs.minichain.contracts"
)
"""What the course labs' notebooks import (web3, the in-process chain of ``labs.client``, the
Vyper compiler): a grader of course labs sets ``CHAINACADEMY_SANDBOX_PRELOAD`` to this (see
:func:`use_lab_preload`) so no submission pays for importing them in its sandbox."""


_COURSE_PRELOAD: list[str] = []


def preload_modules() -> list[str]:
    """The zygote's imports: the checkers, ``CHAINACADEMY_SANDBOX_PRELOAD`` as it is now and what
    :func:`preload_for` added."""
    extra = os.environ.get("CHAINACADEMY_SANDBOX_PRELOAD", "")
    mods = DEFAULT_PRELOAD + [m.strip() for m in extra.split(",") if m.strip()]
    return mods + [m for m in _COURSE_PRELOAD if m not in mods]


def preload_for(modules: Collection[str]) -> list[str]:
    """Add to the preload the ``modules`` a course's notebooks import (see
    ``grader.assignment.imported_modules``) that a sandbox could import itself: from the
    interpreter's own installation or the read-only paths it sees, never from the course folder
    or the working directory. Takes effect when the zygote (re)starts; returns what was added.

    Found with ``importlib.util.find_spec`` on the top-level name, which runs no module code in
    this process; the zygote imports them before it forks, so no submission pays for it again.
    """
    import importlib.util

    from grader.sandbox import default_ro_paths

    allowed = tuple(os.path.realpath(p) + os.sep for p in default_ro_paths())
    added = []
    for name in modules:
        top = name.partition(".")[0]
        if name in _COURSE_PRELOAD or not top.isidentifier():
            continue
        try:
            spec = importlib.util.find_spec(top)
        except (ImportError, ValueError):
            continue
        origin = spec.origin if spec is not None else None
        if origin is None:
            continue
        if origin not in ("built-in", "frozen") and not os.path.realpath(origin).startswith(
            allowed
        ):
            continue
        _COURSE_PRELOAD.append(name)
        added.append(name)
    return added


def use_lab_preload() -> None:
    """Preload :data:`LAB_PRELOAD` in zygotes started from now on, unless the operator chose
    ``CHAINACADEMY_SANDBOX_PRELOAD`` (an empty value included) already."""
    os.environ.setdefault("CHAINACADEMY_SANDBOX_PRELOAD", LAB_PRELOAD)


_ZYGOTE = _Zygote()
# Sandbox uids, shared by every grader process on the host: a uid is taken by holding an
# exclusive flock on its lock file, so two graders never hand out the same uid (RLIMIT_NPROC and
# the end-of-submission sweep are per uid).
_UID_BASE = int(os.environ.get("CHAINACADEMY_SANDBOX_UID_BASE", "200000"))
SANDBOX_UIDS = range(_UID_BASE, _UID_BASE + 1024)
_UID_LOCK_DIR = "/run/chainacademy-sandbox-uids"
_TAKEN: set[int] = set()


def uids_taken() -> frozenset[int]:
    """Every sandbox uid this process has used so far (to look for leftovers of our own
    sandboxes only: other grader processes on the host lease uids from the same range)."""
    return frozenset(_TAKEN)


def _try_lock(uid: int) -> int | None:
    """The fd holding ``uid``'s lock, or None when another holder has it."""
    os.makedirs(_UID_LOCK_DIR, mode=0o700, exist_ok=True)
    fd = os.open(f"{_UID_LOCK_DIR}/{uid}", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def _take_uid() -> tuple[int, int]:
    """Lock a free sandbox uid; returns (uid, lock fd). Sweeps leftovers of a crashed grader."""
    for uid in SANDBOX_UIDS:
        fd = _try_lock(uid)
        if fd is None:
            continue
        # The lock file says whether the last holder closed its sandbox cleanly ("0": its pid
        # namespace is gone, so no process of the uid can be left). Otherwise (a grader that
        # crashed, a new file) sweep the uid first.
        if os.pread(fd, 1, 0) != b"0":
            _kill_uid(uid)
        os.pwrite(fd, b"1", 0)
        _TAKEN.add(uid)
        return uid, fd
    raise SandboxError(f"all {len(SANDBOX_UIDS)} sandbox uids are in use on this host")


def warm(block: bool = True) -> None:
    """Start the warm zygote now (it imports the preload), so the first submission graded in this
    process does not wait for it; a no-op when it runs. ``block=False`` returns at once and lets
    it warm up on another core while the caller prepares its batch (the first sandbox then waits
    for it if it is not ready yet)."""
    _ZYGOTE.warm(block)


def shutdown() -> None:
    """Stop the warm zygote (it also exits by itself when this process exits)."""
    _ZYGOTE.stop()


class _Sandbox:
    """Supervisor-side handle of one running sandbox."""

    def __init__(self, limits: Limits, judge: bool = False) -> None:
        self.limits = limits
        self.files: dict[str, bytes] | None = None  # the submission's, kept for its judge
        self.set_up = False  # it holds its files and dropped its privileges (see setup)
        self.judge: _Sandbox | None = None  # the hidden tests' judge, started at the first one
        self.judge_linked = False  # the judge and this sandbox hold their socket pair
        # A judge's learner sandbox: the hidden test waits while learner code runs there
        self.serving: _Sandbox | None = None
        self.uid, self.uid_lock = _take_uid()
        self.sock, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        # No submission data here: the zygote forks from this request, and whatever it reads
        # stays in the memory every later sandbox inherits. Files go in setup(), to the sandbox.
        request = {"uid": self.uid, "limits": dataclasses.asdict(limits), "judge": judge}
        self.pidfd = -1
        self.cpu: SandboxCpu | None = None
        self._joining: threading.Thread | None = None
        self.out_r, out_w = os.pipe()
        os.set_blocking(self.out_r, False)
        self.native = bytearray()  # fd 1/2 output of the current cell
        self.native_used = 0
        try:
            self.reporter, self.pid = _ZYGOTE.spawn(request, [theirs.fileno(), out_w])
            self.pidfd = os.pidfd_open(self.pid)
            # Into its cgroups before any learner code (setup() waits for this), so every
            # process it forks is in them too. Moving a process waits a few milliseconds for
            # the kernel (see grader.cgroups): on a thread, while the sandbox builds its jail.
            self._joining = threading.Thread(target=self._join_cgroups, daemon=True)
            self._joining.start()
        except BaseException:
            theirs.close()
            os.close(out_w)
            self.close()
            raise
        theirs.close()
        os.close(out_w)
        self.ready = False  # said hello (a prestarted sandbox)
        self.exit_status: int | None = None
        self.cpu_used = 0.0
        self.cpu_over = False  # killed for using the submission's CPU time (all processes)
        self.buffers: dict[int, bytearray] = {}
        self._stretch_for: tuple[float, float] = (-1.0, 0.0)  # (deadline, stall when first seen)
        self._cpu_checked = time.monotonic()

    def _join_cgroups(self) -> None:
        with contextlib.suppress(OSError):  # gone already: it reports that itself
            self.cpu = SandboxCpu(f"uid-{self.uid}", self.pid)

    def setup(self, files: dict[str, bytes] | None, deadline: float) -> None:
        """Hand the submission's files to the sandbox; it then drops its privileges and loads
        its syscall filter, and says so before any cell is sent."""
        if self._joining is not None:
            self._joining.join()
        self.files = files
        encoded = {k: base64.b64encode(v).decode() for k, v in (files or {}).items()}
        try:
            self.sock.settimeout(max(0.0, deadline - time.monotonic()))
            send_message(self.sock, {"files": encoded})
            self.sock.settimeout(None)
        except OSError as exc:
            raise SandboxError(f"the sandbox could not take the submission's files: {exc}") from exc
        kind, reply = self.receive(deadline, 64 * 1024)
        if kind != "msg" or not isinstance(reply, dict) or reply.get("setup") is not True:
            detail = reply.get("error") if isinstance(reply, dict) else kind
            raise SandboxError(f"the sandbox could not be set up: {detail}")
        self.set_up = True

    def _stretched(self, deadline: float, now: float) -> float:
        """``deadline`` moved back by the time the sandbox has waited for a CPU since it was
        first asked for (see grader.cgroups), at most to ``Limits.wall_factor`` cell times.
        The stall clock is read when a deadline is first seen and once it has passed."""
        if self.cpu is None:
            return deadline
        seen, base = self._stretch_for
        if seen != deadline:
            self._stretch_for = (deadline, self.stalled())
            return deadline
        if now < deadline:
            return deadline
        room = self.limits.cell_timeout * (self.limits.wall_factor - 1)
        return deadline + min(room, max(0.0, self.stalled() - base))

    def stalled(self) -> float:
        """Seconds this sandbox waited for a CPU; for a judge, plus those of the learner's
        sandbox it calls into: a hidden test's learner calls run there, and a judge blocked on
        their answers is not runnable, so its own clock alone would not see a busy host."""
        own = self.cpu.stalled() if self.cpu is not None else 0.0
        serving = self.serving
        if serving is not None and serving.cpu is not None:
            own += serving.cpu.stalled()
        return own

    def _over_cpu(self, now: float) -> bool:
        """Kill the sandbox once all its processes together used the submission's CPU time
        (looked at once a second: RLIMIT_CPU still stops each process at that limit)."""
        if self.cpu is None or self.cpu_over or now < self._cpu_checked + 1.0:
            return False
        self._cpu_checked = now
        if self.cpu.cpu_seconds() < self.limits.cpu_seconds:
            return False
        self.cpu_over = True
        with contextlib.suppress(ProcessLookupError):
            signal.pidfd_send_signal(self.pidfd, signal.SIGKILL)
        return True

    def receive(self, deadline: float, cap: int) -> tuple[str, Any]:
        """Wait for the next complete message from the sandbox (or the zygote's exit report).

        Returns ("msg", obj), ("died", None), ("timeout", None) or ("flood", None).
        """
        received = 0
        died_at: float | None = None
        while True:
            now = time.monotonic()
            if died_at is not None and now - died_at > 0.5:
                return "died", None
            wait = self._stretched(deadline, now) - now if died_at is None else 0.05
            if wait <= 0:
                return "timeout", None
            self._over_cpu(now)
            wait = min(wait, 1.0)  # look at the stall clock and the CPU time every second
            fds: list[socket.socket | int]
            fds = [self.sock] if died_at is not None else [self.sock, self.pidfd]
            if self.out_r >= 0:
                fds.append(self.out_r)
            ready, _, _ = select.select(fds, [], [], wait)
            if self.out_r in ready:
                self.drain_native()
            if self.pidfd in ready:
                died_at = time.monotonic()
            if self.sock not in ready:
                continue
            data, anc, _flags, _addr = self.sock.recvmsg(CHUNK + 1, socket.CMSG_SPACE(12))
            if not data:
                return "died", None
            sender = -1
            for level, kind, payload in anc:
                if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                    sender = struct.unpack("3i", payload[:12])[0]
            received += len(data)
            if received > cap:
                return "flood", None
            if sender not in (self.reporter, self.pid):
                continue  # a forked learner process: never trusted
            buf = self.buffers.setdefault(sender, bytearray())
            if data[:1] in (b"S", b"F"):
                buf.clear()
            buf += data[1:]
            if data[:1] not in (b"E", b"F"):
                continue
            raw = bytes(buf)
            buf.clear()
            try:
                obj = json.loads(raw)
            except ValueError:
                continue
            if sender == self.reporter:
                if isinstance(obj, dict) and isinstance(obj.get("exit_status"), int):
                    self.exit_status = obj["exit_status"]
                    self.cpu_used = float(obj.get("cpu_seconds", 0.0))
                    if died_at is not None:
                        return "died", None
                continue
            return "msg", obj

    def drain_native(self) -> None:
        """Read what is waiting on the sandbox's fd 1/2 pipe; keep it up to the output cap."""
        while self.out_r >= 0:
            try:
                data = os.read(self.out_r, 65536)
            except BlockingIOError:
                return
            if not data:
                os.close(self.out_r)
                self.out_r = -1
                return
            room = self.limits.max_output_bytes - self.native_used
            if room > 0:
                self.native += data[:room]
                self.native_used += min(room, len(data))

    def take_native(self) -> list[dict[str, Any]]:
        """The current cell's fd-level output as one nbformat stream output (if any)."""
        self.drain_native()
        text = self.native.decode("utf-8", "replace")
        self.native.clear()
        return [{"output_type": "stream", "name": "stdout", "text": text}] if text else []

    def interrupt(self) -> bool:
        """SIGINT to the sandbox's interpreter (KeyboardInterrupt, like a kernel interrupt)."""
        if self.pidfd < 0:
            return False
        try:
            signal.pidfd_send_signal(self.pidfd, signal.SIGINT)
        except ProcessLookupError:
            return False
        return True

    def close(self) -> None:
        """Kill the pid namespace, wait until it is gone, sweep the uid."""
        if self.judge is not None:
            self.judge.close()
            self.judge = None
        gone = False
        if self.pidfd >= 0:
            with contextlib.suppress(ProcessLookupError):
                signal.pidfd_send_signal(self.pidfd, signal.SIGKILL)
            ready, _, _ = select.select([self.pidfd], [], [], 5.0)
            gone = bool(ready) and self._reaped(time.monotonic() + 2.0)
            os.close(self.pidfd)
            self.pidfd = -1
        if gone:
            # The namespace's init (C2) has exited, and the kernel reaps every other process of
            # the namespace before that exit is reported: nothing of this uid is left.
            os.pwrite(self.uid_lock, b"0", 0)
        else:
            _kill_uid(self.uid)
        if self._joining is not None:
            self._joining.join()
        if self.cpu is not None:
            self.cpu.remove()
        self.sock.close()
        if self.out_r >= 0:
            os.close(self.out_r)
            self.out_r = -1
        os.close(self.uid_lock)  # releases the uid's flock

    def _reaped(self, deadline: float) -> bool:
        """Wait until the zygote has reaped the dead sandbox: it closes its end of the socket
        only then, so EOF (a read with no data and no credentials) means no zombie is left."""
        while (wait := deadline - time.monotonic()) > 0:
            if not select.select([self.sock], [], [], wait)[0]:
                continue
            try:
                data, anc, _flags, _addr = self.sock.recvmsg(CHUNK + 1, socket.CMSG_SPACE(12))
            except OSError:
                return True
            if not data and not anc:
                return True
        return False

    def death_reason(self) -> str:
        st = self.exit_status
        if st is None:
            return "the sandbox process died during the cell"
        if self.cpu is not None:
            self.cpu_used = max(self.cpu_used, self.cpu.cpu_seconds())
        if self.cpu_over or self.cpu_used >= self.limits.cpu_seconds:
            return f"the sandbox used its {self.limits.cpu_seconds} s CPU time limit and was killed"
        if os.WIFSIGNALED(st):
            sig = os.WTERMSIG(st)
            name = signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else sig
            hint = _SIGNAL_HINT.get(sig, "")
            return f"the sandbox process was killed by {name}" + (f" ({hint})" if hint else "")
        return f"the sandbox process exited with status {os.WEXITSTATUS(st)} during the cell"


def leftover_pids(uids: Collection[int]) -> list[int]:
    """Pids of processes a finished sandbox left behind among ``uids``.

    A uid whose lock another grader holds right now is skipped: its processes belong to that
    grader's live sandbox, not to a leftover (graders on one host lease uids from one range, so a
    uid this process used earlier may be someone else's by now). The lock is held while looking,
    so no sandbox can start under the uid meanwhile.
    """
    free = []
    fds = []
    try:
        for uid in uids:
            fd = _try_lock(uid)
            if fd is not None:
                fds.append(fd)
                free.append(uid)
        return pids_of_uids(free)
    finally:
        for fd in fds:
            os.close(fd)


def pids_of_uids(uids: Collection[int]) -> list[int]:
    """Pids of live processes whose real uid is one of ``uids`` (sandbox uids are never reused
    by anything else, so this finds everything a sandbox left behind)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/status") as fh:
                for line in fh:
                    if line.startswith("Uid:"):
                        if int(line.split()[1]) in uids:
                            found.append(int(entry))
                        break
        except (OSError, ValueError):
            continue
    return found


def _kill_uid(uid: int) -> None:
    """Safety net: no process of the sandbox uid may survive the submission."""
    for _ in range(50):
        pids = pids_of_uids({uid})
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.02)


def _clean_reply(obj: Any, token: str) -> tuple[Status, list[dict[str, Any]], dict | None] | None:
    if not isinstance(obj, dict) or obj.get("token") != token:
        return None
    status = obj.get("status")
    outputs = obj.get("outputs")
    error = obj.get("error")
    if status not in ("ok", "error") or not isinstance(outputs, list):
        return None
    outputs = [o for o in outputs if isinstance(o, dict) and o.get("output_type") in _OUTPUT_TYPES]
    if error is not None and not (isinstance(error, dict) and "ename" in error):
        return None
    if status == "error" and error is None:
        error = {"ename": "Error", "evalue": "cell failed", "traceback": []}
    return status, outputs, error


def _check_files(files: dict[str, bytes] | None) -> None:
    for name in files or {}:
        parts = name.split("/")
        if not name or name.startswith("/") or ".." in parts or "" in parts:
            raise ValueError(
                f"file name must be a relative path inside the scratch folder: {name!r}"
            )


MAX_RESTARTS = 3
"""Fresh sandboxes one submission may get after cells that hung or killed theirs."""
INTERRUPT_GRACE = 2.0
"""Seconds a timed-out cell gets to stop after SIGINT (KeyboardInterrupt), as Jupyter's interrupt."""


def execute(
    cells: list[CellSpec], *, files: dict[str, bytes] | None = None, limits: Limits
) -> list[CellOutcome]:
    """Run ``cells`` in order in one sandboxed interpreter and report each cell's outcome.

    A cell over its wall time is interrupted (KeyboardInterrupt, as nbgrader interrupts the
    kernel) and the next cells go on in the same interpreter. A cell that ignores the interrupt,
    or kills its sandbox (os._exit, CPU limit, crash, output flood), is skipped: a fresh sandbox
    re-runs the cells before it (their outcomes stay as first observed) and grading goes on after
    it, up to MAX_RESTARTS times and within the submission's wall time. Every cell that still
    cannot run says why. ``files`` are placed in the sandbox's private scratch folder (its working
    directory). Raises SandboxError only for host problems; learner behaviour ends in outcomes.
    """
    _check_files(files)
    start = time.monotonic()
    sub_deadline = start + limits.submission_timeout
    outcomes: list[CellOutcome] = []
    skipped: set[int] = set()  # cells that hung or killed a sandbox: never run again
    restarts = 0
    while len(outcomes) < len(cells):
        if restarts > MAX_RESTARTS:
            _rest_not_run(
                outcomes, cells, f"not run: the sandbox was restarted {MAX_RESTARTS} times"
            )
            break
        if time.monotonic() >= sub_deadline:
            secs = limits.submission_timeout
            _rest_not_run(outcomes, cells, f"not run: the submission used its {secs:g} s wall time")
            break
        spares = _SPARES
        box = spares.take(limits) if spares is not None else None
        if box is None:
            box = _Sandbox(limits)
        try:
            if not box.ready:
                _hello(box, start)
            box.setup(files, time.monotonic() + 30.0)
            failed = _replay(box, cells, outcomes, skipped, sub_deadline)
            if failed is None:
                _run_cells(box, cells, outcomes, skipped, sub_deadline)
            elif outcomes[failed].status == "ok":
                # its state is what later cells were graded against: without it they would be
                # graded against something else, so they are not graded at all
                _rest_not_run(
                    outcomes,
                    cells,
                    f"not run: after cell {len(outcomes) - 1} ended its sandbox, cell {failed}, "
                    "which had completed, did not finish when re-run in a fresh one",
                )
                break
            else:
                # it had failed (raised, or was interrupted) and failed again: how far a failing
                # cell gets depends on the host's load (a recursion bomb raises just inside its
                # time or runs past it), so a learner's score must not hang on it. It is left out
                # of later re-runs, as a cell that hung or killed its sandbox is; its outcome
                # stays as first observed
                skipped.add(failed)
                first = outcomes[failed]
                first.reason += "; left out when the cells before a later crash were re-run"
        finally:
            if spares is None or not spares.close_later(box):
                box.close()
        restarts += 1
    return outcomes


class _Spares:
    """Sandboxes started ahead of need for a batch, and used ones closed, on a thread of their
    own (see :func:`prestart`): a grading worker then spends its time running cells, while the
    zygote's fork, the namespaces, the jail and the teardown of the last sandbox overlap it."""

    def __init__(self, limits: Limits, count: int) -> None:
        self.limits = limits
        self.count = count
        self.ready: list[_Sandbox] = []
        self.used: list[_Sandbox] = []
        self.cond = threading.Condition()
        self.stopping = False
        self.thread = threading.Thread(target=self._loop, name="sandbox-spares", daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        while True:
            with self.cond:
                while not self.stopping and not self.used and len(self.ready) >= self.count:
                    self.cond.wait()
                if self.stopping:
                    return
                used, self.used = self.used, []
                wanted = len(self.ready) < self.count
            for box in used:
                box.close()
            if not wanted:
                continue
            try:
                box = _Sandbox(self.limits)
            except SandboxError:
                return  # a host problem: execute() starts its own sandboxes and reports it
            try:
                _hello(box, time.monotonic())
                # its judge too: most assignments have hidden tests, and starting one costs
                # as much as the sandbox itself
                box.judge = _Sandbox(self.limits, judge=True)
                _hello(box.judge, time.monotonic())
                box.judge.ready = True
            except SandboxError:
                box.close()
                return
            box.ready = True
            with self.cond:
                keep = not self.stopping
                if keep:
                    self.ready.append(box)
            if not keep:
                box.close()
                return

    def take(self, limits: Limits) -> _Sandbox | None:
        """A started sandbox for these limits (its files come after, see _Sandbox.setup)."""
        if limits != self.limits:
            return None
        with self.cond:
            box = self.ready.pop(0) if self.ready else None
            self.cond.notify_all()
        return box

    def close_later(self, box: _Sandbox) -> bool:
        with self.cond:
            if self.stopping:
                return False
            self.used.append(box)
            self.cond.notify_all()
        return True

    def stop(self) -> None:
        with self.cond:
            self.stopping = True
            self.cond.notify_all()
        self.thread.join()
        for box in self.ready + self.used:
            box.close()


_SPARES: _Spares | None = None
_SPARES_LOCK = threading.Lock()


@contextlib.contextmanager
def prestart(limits: Limits, count: int = 2) -> Iterator[None]:
    """Within this block, :func:`execute` calls for ``limits`` get a sandbox that was started
    ahead (the submission's files go to it when it is taken), and used sandboxes are torn down
    in the background; ``count`` are kept ready (one per grading worker). Each is still a fresh
    fork, jailed before any learner code, used for one notebook only. On leaving, every sandbox of the block is gone. Only one block
    is active per process at a time (a nested or concurrent one runs without spares)."""
    global _SPARES
    with _SPARES_LOCK:
        mine = _Spares(limits, count) if _SPARES is None else None
        if mine is not None:
            _SPARES = mine
    try:
        yield
    finally:
        if mine is not None:
            with _SPARES_LOCK:
                _SPARES = None
            mine.stop()


def _hello(box: _Sandbox, start: float) -> None:
    kind, hello = box.receive(time.monotonic() + 30.0, 64 * 1024)
    if kind != "msg" or not isinstance(hello, dict) or hello.get("ready") is not True:
        detail = hello.get("error") if isinstance(hello, dict) else kind
        raise SandboxError(f"the sandbox could not be set up: {detail}")


def _rest_not_run(outcomes: list[CellOutcome], cells: list[CellSpec], reason: str) -> None:
    while len(outcomes) < len(cells):
        outcomes.append(CellOutcome("not_run", reason=reason))


def _send_cell(box: _Sandbox, cell: CellSpec, deadline: float) -> tuple[str, Any, str]:
    """Send one cell and wait for its reply; (kind, reply, token) with kind as in receive()."""
    if cell.hidden:
        return _send_hidden(box, cell, deadline)
    cap = box.limits.max_output_bytes * 6 + 256 * 1024  # JSON escapes control chars 6 to 1
    token = secrets.token_hex(16)
    try:
        box.sock.settimeout(max(0.0, deadline - time.monotonic()))
        send_message(box.sock, {"token": token, "source": cell.source})
        box.sock.settimeout(None)
        kind, obj = box.receive(deadline, cap)
    except TimeoutError:
        kind, obj = "timeout", None
    except OSError:
        kind, obj = "died", None
    while kind == "msg" and _clean_reply(obj, token) is None:
        kind, obj = box.receive(deadline, cap)  # stale or malformed: not this cell's reply
    return kind, obj, token


def _parts(source: str) -> list[tuple[bool, str]]:
    """A hidden test cell as (hidden, text) runs in order: what the released notebook shows runs
    with the learner's cells, each BEGIN/END HIDDEN TESTS block in the judge. A cell without the
    markers is hidden as a whole."""
    if HIDDEN_BEGIN not in source:
        return [(True, source)]
    parts: list[tuple[bool, str]] = []
    hidden, lines = False, list[str]()
    for line in source.splitlines(keepends=True):
        marker = HIDDEN_BEGIN if not hidden else HIDDEN_END
        if marker in line:
            parts.append((hidden, "".join(lines)))
            hidden, lines = not hidden, []
            continue
        lines.append(line)
    parts.append((hidden, "".join(lines)))
    return [(h, text) for h, text in parts if text.strip()]


def _send_hidden(box: _Sandbox, cell: CellSpec, deadline: float) -> tuple[str, Any, str]:
    """Run a hidden test cell: its visible parts in the learner's sandbox, its hidden parts in
    the judge, relaying the judge's requests for learner names to the learner's sandbox. Returns
    as _send_cell, with one combined reply; ``"hidden-timeout"`` when the cell ran out of time
    and both sandboxes are ready for the next cell."""
    token = secrets.token_hex(16)
    outputs: list[dict[str, Any]] = []
    for hidden, text in _parts(cell.source):
        if not hidden:
            kind, obj, part_token = _send_cell(box, CellSpec(text), deadline)
            if kind != "msg":
                return kind, obj, part_token
            reply = _clean_reply(obj, part_token)
            assert reply is not None
            status, outs, error = reply
            outputs += box.take_native() + outs
            if status != "ok":
                return (
                    "msg",
                    {"token": token, "status": status, "outputs": outputs, "error": error},
                    token,
                )
            continue
        kind, reply_or_none = _judge(box, text, deadline)
        if kind != "msg":
            return kind, None, token
        assert reply_or_none is not None
        status, outs, error = reply_or_none
        outputs += outs
        if status != "ok":
            return (
                "msg",
                {"token": token, "status": status, "outputs": outputs, "error": error},
                token,
            )
    return "msg", {"token": token, "status": "ok", "outputs": outputs, "error": None}, token


def _judge(
    box: _Sandbox, source: str, deadline: float
) -> tuple[str, tuple[Status, list[dict[str, Any]], dict | None] | None]:
    """One hidden block in the judge; (kind, (status, outputs, error)) with kind "msg", or how
    it ended otherwise ("hidden-timeout" and "judge-died" leave the learner's sandbox usable).

    The judge and the learner's sandbox talk over a socket pair of their own (handed to each
    when the judge starts): the learner's sandbox serves the judge's requests until the judge
    says it is done. This process only starts both and watches the clock and the processes."""
    cap = box.limits.max_output_bytes * 6 + 256 * 1024
    handover: list[socket.socket] = []
    if box.judge is None:
        box.judge = _Sandbox(box.limits, judge=True)
        box.judge_linked = False
    box.judge.serving = box  # a prestarted judge too: its deadlines count this box's waits
    if not box.judge.ready:
        _hello(box.judge, time.monotonic())
        box.judge.ready = True
    if not box.judge.set_up:
        try:  # hidden tests may read the submission's side files too
            box.judge.setup(box.files, deadline)
        except SandboxError:
            return _judge_lost(box, None, cap, "died")
    if not box.judge_linked:
        handover = list(socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET))
        box.judge_linked = True
    judge = box.judge
    token, serve_token = secrets.token_hex(16), secrets.token_hex(16)
    try:
        box.sock.settimeout(max(0.0, deadline - time.monotonic()))
        judge.sock.settimeout(max(0.0, deadline - time.monotonic()))
        learner_end = [handover[1].fileno()] if handover else None
        send_message(box.sock, {"serve": True, "token": serve_token}, learner_end)
        judge_end = [handover[0].fileno()] if handover else None
        send_message(judge.sock, {"token": token, "source": source}, judge_end)
        box.sock.settimeout(None)
        judge.sock.settimeout(None)
    except TimeoutError:
        return _judge_lost(box, serve_token, cap, "timeout")
    except OSError:
        return _judge_lost(box, serve_token, cap, "died")
    finally:
        for end in handover:
            end.close()
    while True:
        kind, obj = judge.receive(deadline, cap)
        if kind != "msg":
            return _judge_lost(box, serve_token, cap, kind)
        if isinstance(obj, dict) and obj.get("token") == token and obj.get("final") is True:
            break
    reply = _clean_reply(obj, token)
    # the judge said it is done: the learner's sandbox goes back to waiting for cells
    kind, served = box.receive(max(deadline, time.monotonic() + INTERRUPT_GRACE), cap)
    while kind == "msg" and not (isinstance(served, dict) and served.get("token") == serve_token):
        kind, served = box.receive(max(deadline, time.monotonic() + INTERRUPT_GRACE), cap)
    if kind != "msg":
        return kind, None
    if reply is None:
        return _judge_lost(box, None, cap, "died")
    status, outs, error = reply
    outs = [o for o in outs if o.get("output_type") in _OUTPUT_TYPES]
    return "msg", (status, outs, error)


def _judge_lost(box: _Sandbox, serve_token: str | None, cap: int, kind: str) -> tuple[str, None]:
    """The judge ran out of time or failed: it is replaced at the next hidden test. The
    learner's sandbox, serving it, sees its end of the channel close (interrupted, if a learner
    call was running) and goes back to waiting for cells; when it does not, its own kind of
    ending is returned, for the caller to handle as for any cell."""
    if box.judge is not None:
        box.judge.close()
        box.judge = None
    if serve_token is not None:
        grace = time.monotonic() + INTERRUPT_GRACE
        served, obj = box.receive(grace, cap)
        if served == "timeout" and box.interrupt():
            served, obj = box.receive(time.monotonic() + INTERRUPT_GRACE, cap)
        while served == "msg" and not (isinstance(obj, dict) and obj.get("token") == serve_token):
            served, obj = box.receive(time.monotonic() + INTERRUPT_GRACE, cap)
        if served != "msg":
            return served, None
    return ("hidden-timeout" if kind == "timeout" else "judge-died"), None


def _replay(
    box: _Sandbox,
    cells: list[CellSpec],
    outcomes: list[CellOutcome],
    skipped: set[int],
    sub_deadline: float,
) -> int | None:
    """Re-run the cells already graded (except skipped ones) to rebuild state; the index of
    the cell whose re-run did not finish, or None when all did. A cell that did not finish
    normally the first time (it ran out of time, or raised) is interrupted when it runs out of
    time now: a recursion bomb before a crashing cell must not cost the cells after the crash,
    and whether it raises RecursionError just inside its time or runs just past it depends on
    the host's load."""
    cap = box.limits.max_output_bytes * 6 + 256 * 1024
    for index in range(len(outcomes)):
        if index in skipped:
            continue
        deadline = min(time.monotonic() + box.limits.cell_timeout, sub_deadline)
        kind, _obj, token = _send_cell(box, cells[index], deadline)
        if kind == "timeout" and outcomes[index].status in ("timeout", "error") and box.interrupt():
            kind, _obj = _await_interrupted(box, token, cap)
        box.take_native()
        if kind not in ("msg", "hidden-timeout", "judge-died"):
            return index
    return None


def _await_interrupted(box: _Sandbox, token: str, cap: int) -> tuple[str, Any]:
    """After SIGINT, wait INTERRUPT_GRACE for the cell's own reply (kind, reply)."""
    grace = time.monotonic() + INTERRUPT_GRACE
    kind, obj = box.receive(grace, cap)
    while kind == "msg" and _clean_reply(obj, token) is None:
        kind, obj = box.receive(grace, cap)
    return kind, obj


def _run_cells(
    box: _Sandbox,
    cells: list[CellSpec],
    outcomes: list[CellOutcome],
    skipped: set[int],
    sub_deadline: float,
) -> None:
    """Run cells from len(outcomes) on in this sandbox until done or the sandbox must go."""
    limits = box.limits
    cap = limits.max_output_bytes * 6 + 256 * 1024
    while len(outcomes) < len(cells):
        index = len(outcomes)
        per_cell = time.monotonic() + limits.cell_timeout
        deadline = min(per_cell, sub_deadline)
        kind, obj, token = _send_cell(box, cells[index], deadline)
        if kind == "msg":
            reply = _clean_reply(obj, token)
            assert reply is not None  # _send_cell gives "msg" only with this cell's clean reply
            status, outputs, error = reply
            outputs = box.take_native() + outputs
            reason = "completed" if status == "ok" else _one_line(error)
            outcomes.append(CellOutcome(status, outputs, error, reason))
            continue
        if kind == "hidden-timeout":
            secs = limits.cell_timeout
            reason = f"cell exceeded its {secs:g} s wall-time limit; interrupted"
            outcomes.append(CellOutcome("timeout", box.take_native(), reason=reason))
            continue
        if kind == "judge-died":
            reason = "the hidden test could not be judged: its judge process ended"
            outcomes.append(CellOutcome("killed", box.take_native(), reason=reason))
            continue
        if kind == "timeout":
            which = "cell" if per_cell <= sub_deadline else "submission"
            secs = limits.cell_timeout if which == "cell" else limits.submission_timeout
            reason = f"{which} exceeded its {secs:g} s wall-time limit"
            if which == "cell" and box.interrupt():
                kind, obj = _await_interrupted(box, token, cap)
                if kind == "msg":  # interrupted, as nbgrader does: go on in this interpreter
                    reply = _clean_reply(obj, token)
                    assert reply is not None  # as from _send_cell: "msg" is a clean reply
                    _status, outputs, error = reply
                    outputs = box.take_native() + outputs
                    outcomes.append(
                        CellOutcome("timeout", outputs, error, reason + "; interrupted")
                    )
                    continue
                reason += "; it ignored the interrupt"
            if which == "submission":
                outcomes.append(CellOutcome("timeout", box.take_native(), reason=reason))
                _rest_not_run(outcomes, cells, f"not run: {reason}")
                return
            reason += (
                "; skipped: the cells before it were re-run in a fresh sandbox"
                if index + 1 < len(cells)
                else ""
            )
            outcomes.append(CellOutcome("timeout", box.take_native(), reason=reason))
        elif kind == "flood":
            reason = "the cell sent more than the output cap; its sandbox was replaced"
            outcomes.append(CellOutcome("killed", box.take_native(), reason=reason))
        else:
            box.receive(time.monotonic() + 0.5, cap)  # give the zygote time to report the status
            outcomes.append(CellOutcome("killed", box.take_native(), reason=box.death_reason()))
        skipped.add(index)
        return


def _one_line(error: dict[str, Any] | None) -> str:
    if not error:
        return "cell failed"
    text = f"{error.get('ename')}: {error.get('evalue')}"
    return text.splitlines()[0][:300] if text else "cell failed"
