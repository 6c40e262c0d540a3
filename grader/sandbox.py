"""The inside of the grading sandbox: a warm zygote that forks one jailed interpreter per submission.

Why a zygote: starting a Jupyter kernel costs about a second per submission, and even a cold
``import IPython`` costs a few hundred milliseconds. The zygote imports IPython and builds an
``InteractiveShell`` once; every submission is a ``fork()`` of that warm process, so a sandbox is
ready in milliseconds.

Process tree for one submission (created by the zygote, which runs as root)::

    zygote (forks with a fresh pid namespace for the child; reaps it and reports its exit status)
      └─ C2 = pid 1 of the new pid namespace: new session, new net/mount/ipc/uts namespaces; jails
         itself (chroot into a read-only tmpfs view, private size-capped scratch tmpfs, fresh
         /proc), says ready, takes the submission's files from the supervisor, sets rlimits,
         drops to an unprivileged uid, loads the seccomp filter (grader.syscall_filter), then
         runs cells sent by the supervisor with IPython semantics.

No channel between submissions: the zygote never holds a submission's data (files come to C2
over its own socket after the fork, so no later fork inherits them in its memory); the filter
refuses the kernel objects and interfaces a uid shares across sandboxes (keyrings, ptrace, new
namespaces, ...); the supervisor puts C2 into a cgroup of its own (grader.cgroups) before it
runs learner code, so every process it forks is accounted to it.

One fork per sandbox: the zygote unshares only its pid namespace *for children* before forking
(and sets it back after), so no intermediate process is needed to become the namespace's parent.

Killing C2 tears down the whole pid namespace (the kernel kills every process in it), so nothing the
learner forks can outlive the submission. The supervisor (grader.executor) is the only judge of a
cell's status; see that module for the trust model. This module never decides a grade.

Wire format on the cell socket (AF_UNIX SOCK_SEQPACKET, so message boundaries cannot be spoofed by
writing partial frames): each message is one or more packets; byte 0 is ``M`` (more follows) or ``E``
(end), ``S`` (start: drop anything buffered) or ``F`` (a whole message in one packet); the rest is a
slice of a UTF-8 JSON document. Because a message always starts with ``S``/``F``, a partial frame
written earlier by learner code cannot swallow the runner's real reply.
"""

from __future__ import annotations

import base64
import builtins
import contextlib
import ctypes
import gc
import json
import linecache
import os
import resource
import secrets
import select
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from typing import TYPE_CHECKING, Any, cast

from grader import syscall_filter
from grader.remote import LearnerObjects

if TYPE_CHECKING:
    import io

CHUNK = 32 * 1024
# Inside a sandbox /tmp is its scratch folder, so /tmp/sandbox-home is private and writable there;
# the zygote uses the same path on the host while preloading libraries that pick cache folders
# from HOME at import time, so those paths stay valid after the fork.
SANDBOX_HOME = "/tmp/chainacademy-sandbox-home"
SANDBOX_ENV = {
    "HOME": SANDBOX_HOME,
    "TMPDIR": "/tmp",
    "PATH": "/usr/local/bin:/usr/bin:/bin",
    "LANG": "C.UTF-8",
}
ZYGOTE_FD_ENV = "CHAINACADEMY_ZYGOTE_FD"

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_REMOUNT = 32
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
PR_SET_PDEATHSIG = 1
PR_SET_NO_NEW_PRIVS = 38

_libc = ctypes.CDLL(None, use_errno=True)
_libc.setns.argtypes = [ctypes.c_int, ctypes.c_int]
_libc.mount.argtypes = [
    ctypes.c_char_p,
    ctypes.c_char_p,
    ctypes.c_char_p,
    ctypes.c_ulong,
    ctypes.c_char_p,
]


class SandboxSetupError(RuntimeError):
    """The sandbox could not be built (not a learner fault: the host lacks a needed capability)."""


class OutputLimitExceeded(BaseException):  # noqa: N818 - mirrors KeyboardInterrupt's naming
    """Raised into learner code when it writes more than the output cap.

    A BaseException so that ``except Exception`` in learner code does not swallow it.
    """


def _check(rc: int, what: str) -> None:
    if rc != 0:
        err = ctypes.get_errno()
        raise SandboxSetupError(f"{what} failed: {os.strerror(err)}")


def _mount(src: str | None, dst: str, fstype: str | None, flags: int, data: str | None) -> None:
    enc = [None if v is None else v.encode() for v in (src, dst, fstype)]
    _check(
        _libc.mount(enc[0], enc[1], enc[2], flags, None if data is None else data.encode()),
        f"mount {dst}",
    )


def _prctl(option: int, arg: int) -> None:
    _check(_libc.prctl(option, ctypes.c_ulong(arg), 0, 0, 0), f"prctl({option})")


# ---------------------------------------------------------------- packet framing (both sides)


def send_message(sock: socket.socket, obj: Any, fds: list[int] | None = None) -> None:
    """Send one JSON document as SEQPACKET chunks (``M``... then ``E``); ``fds`` ride along
    with the first chunk."""
    data = json.dumps(obj, default=_json_default).encode()
    parts = [data[i : i + CHUNK] for i in range(0, len(data), CHUNK)] or [b""]
    last = len(parts) - 1
    for i, part in enumerate(parts):
        kind = (b"F" if last == 0 else b"S") if i == 0 else (b"E" if i == last else b"M")
        if i == 0 and fds:
            socket.send_fds(sock, [kind + part], fds)
        else:
            sock.sendall(kind + part)


def recv_message(sock: socket.socket, limit: int, fds: list[int] | None = None) -> Any:
    """Receive one JSON document; ``None`` on EOF. Used by the sandbox side only. With ``fds``,
    descriptors sent along are appended to it (otherwise the kernel closes them)."""
    buf = bytearray()
    while True:
        if fds is None:
            pkt = sock.recv(CHUNK + 1)
        else:
            pkt, got, _flags, _addr = socket.recv_fds(sock, CHUNK + 1, 1)
            fds += got
        if not pkt:
            return None
        if pkt[:1] in (b"S", b"F"):
            buf.clear()
        buf += pkt[1:]
        if len(buf) > limit:
            raise SandboxSetupError("message larger than the limit")
        if pkt[:1] in (b"E", b"F"):
            return json.loads(buf)


def _json_default(obj: Any) -> Any:
    if isinstance(obj, bytes | bytearray):
        return base64.b64encode(bytes(obj)).decode()
    return repr(obj)


# ---------------------------------------------------------------- the warm shell


WARM_UP_CELLS = (
    "import hashlib\nvalue = 1",
    "value",
    "1 / 0",
    "assert False, 'message'",
    "import sys\nprint('out')\nprint('err', file=sys.stderr)",
    "def f():\n    return [1, 'a', {'b': 2.0}]\nf()",
    "%time value",
    "from IPython.display import HTML, display\ndisplay(HTML('<b>x</b>'))",
    "def broken(:",
)
"""Fixed cells a throwaway shell runs in the zygote: showing a value, a traceback, an assert,
both streams, a magic, rich display and a syntax error each import modules and fill caches on
first use (several milliseconds each), which every sandbox would otherwise pay again."""


def make_shell() -> Any:
    """Build the InteractiveShell once in the zygote; forked children inherit it warm.

    History is disabled: the history manager keeps an SQLite connection and a writer thread, and
    neither survives ``fork()``. A first shell runs WARM_UP_CELLS and is dropped; the shell the
    sandboxes get is a fresh instance built after it, so nothing of the warm-up (execution
    count, In/Out, ``_``) is visible to learner code, while what IPython imported and cached at
    module level stays warm.
    """
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    cfg = Config()
    cfg.HistoryManager.enabled = False
    cfg.InteractiveShell.colors = "nocolor"
    cfg.InteractiveShell.xmode = "Plain"
    _warm_up(InteractiveShell.instance(config=cfg))
    InteractiveShell.clear_instance()
    shell = InteractiveShell.instance(config=cfg)
    formatter = shell.display_formatter
    if formatter is None:  # the shell sets one when it starts; the trait is typed optional
        raise RuntimeError("the IPython shell has no display formatter")
    for value in (1, "text", [1.5, None], {"key": (1, 2)}):
        formatter.format(value)  # per-instance formatter lookups, no history
    return shell


def _warm_up(shell: Any) -> None:
    streams = sys.stdout, sys.stderr, sys.displayhook
    cached = set(linecache.cache)
    runner = _Runner(shell, 1024**2)
    runner.install()
    try:
        for source in WARM_UP_CELLS:
            runner.run(source)
    finally:
        sys.stdout, sys.stderr, sys.displayhook = streams
        for key in set(linecache.cache) - cached:
            linecache.cache.pop(key, None)
        for name in ("last_type", "last_value", "last_traceback", "last_exc"):
            sys.__dict__.pop(name, None)


class _Capture:
    """A text stream that turns writes into nbformat ``stream`` outputs, capped in bytes."""

    def __init__(self, runner: _Runner, name: str) -> None:
        self._runner = runner
        self.name = name
        self.encoding = "utf-8"
        self.errors = "replace"

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            text = str(text)
        self._runner.add_stream(self.name, text)
        return len(text)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        return None

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        raise OSError("captured stream has no file descriptor")

    def writable(self) -> bool:
        return True

    def readable(self) -> bool:
        return False


class _Runner:
    """Runs cells in the shell and turns everything it shows into nbformat v4 outputs."""

    def __init__(self, shell: Any, max_output_bytes: int) -> None:
        self.shell = shell
        self.max_output = max_output_bytes
        self.used = 0
        self.truncated = False
        self.outputs: list[dict[str, Any]] = []
        self.error: dict[str, Any] | None = None
        self.count = 0
        self.stdout = _Capture(self, "stdout")
        self.stderr = _Capture(self, "stderr")
        self.pristine_builtins = dict(builtins.__dict__)
        self.learner_builtins: dict[str, Any] | None = None
        self.pristine_run_cell = type(shell).run_cell

    def install(self) -> None:
        """(Re)install the capture hooks: when the sandbox starts (and for the zygote's warm-up)."""
        sh = self.shell
        sys.stdout, sys.stderr = self.stdout, self.stderr
        dh = sh.displayhook
        dh.write_output_prompt = lambda: None
        dh.finish_displayhook = lambda: None
        dh.write_format_data = self._execute_result
        sys.displayhook = dh
        sh.display_pub.publish = self._display
        sh._showtraceback = self._traceback
        sh.system = self._system

    def _charge(self, n: int) -> bool:
        if self.truncated:
            return False
        self.used += n
        if self.used > self.max_output:
            self.truncated = True
            self.outputs.append(
                {
                    "output_type": "stream",
                    "name": "stderr",
                    "text": f"\n[output truncated: more than {self.max_output} bytes]\n",
                }
            )
            raise OutputLimitExceeded(f"output exceeded {self.max_output} bytes")
        return True

    def add_stream(self, name: str, text: str) -> None:
        if not text or not self._charge(len(text.encode("utf-8", "replace"))):
            return
        last = self.outputs[-1] if self.outputs else None
        if last and last["output_type"] == "stream" and last["name"] == name:
            last["text"] += text
        else:
            self.outputs.append({"output_type": "stream", "name": name, "text": text})

    def _execute_result(self, format_dict: dict[str, Any], md_dict: Any = None) -> None:
        size = len(json.dumps(format_dict, default=_json_default))
        if self._charge(size):
            self.outputs.append(
                {
                    "output_type": "execute_result",
                    "execution_count": self.count,
                    "data": format_dict,
                    "metadata": md_dict or {},
                }
            )

    def _display(self, data: dict[str, Any], metadata: Any = None, *a: Any, **kw: Any) -> None:
        if self._charge(len(json.dumps(data, default=_json_default))):
            self.outputs.append(
                {"output_type": "display_data", "data": data, "metadata": metadata or {}}
            )

    def _system(self, cmd: str) -> None:
        """``!cmd`` through pipes, as ipykernel does: the sandbox has no ptys for pexpect."""
        with subprocess.Popen(
            self.shell.var_expand(cmd, depth=1),
            shell=True,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        ) as proc:
            assert proc.stdout is not None
            # cast: a pipe with default buffering is a BufferedReader (typeshed: IO[bytes]).
            stdout = cast("io.BufferedReader", proc.stdout)
            try:  # streamed, so the output cap stops an endless command early
                for chunk in iter(lambda: stdout.read1(65536), b""):
                    self.add_stream("stdout", chunk.decode("utf-8", "replace"))
            except BaseException:
                proc.kill()
                raise
        self.shell.user_ns["_exit_code"] = proc.returncode

    def _traceback(self, etype: type, evalue: BaseException, stb: list[str]) -> None:
        self.error = {
            "ename": getattr(etype, "__name__", str(etype)),
            "evalue": str(evalue),
            "traceback": [str(s) for s in stb],
        }
        self.outputs.append({"output_type": "error", **self.error})

    def _set_builtins(self, values: dict[str, Any]) -> None:
        builtins.__dict__.clear()
        builtins.__dict__.update(values)

    def run(self, source: str) -> dict[str, Any]:
        """Run one cell. Learner changes to builtins live on in later learner cells, but the
        runner itself always works with the pristine builtins."""
        if self.learner_builtins is not None:
            self._set_builtins(self.learner_builtins)
        try:
            return self._run(source)
        finally:
            self.learner_builtins = dict(builtins.__dict__)
            self._set_builtins(self.pristine_builtins)
            sys.stdout, sys.stderr = self.stdout, self.stderr

    def _run(self, source: str) -> dict[str, Any]:
        self.outputs, self.error = [], None
        self.count = self.shell.execution_count
        exc: BaseException | None = None
        try:
            result = self.pristine_run_cell(self.shell, source, store_history=True)
            ok = bool(result.success) and self.error is None
            exc = result.error_before_exec or result.error_in_exec
        except OutputLimitExceeded as limit_exc:
            ok = False
            exc = limit_exc
        if not ok and self.error is None:
            self.error = {
                "ename": type(exc).__name__ if exc is not None else "Error",
                "evalue": str(exc) if exc is not None else "cell failed",
                "traceback": [],
            }
        return {"status": "ok" if ok else "error", "outputs": self.outputs, "error": self.error}


# ---------------------------------------------------------------- the jail (runs in C2)


def _bind_ro(src: str, root: str, device: bool = False) -> None:
    dst = root + src
    if os.path.isdir(src):
        os.makedirs(dst, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        open(dst, "a").close()  # noqa: SIM115 - a mount point, closed at once
    _mount(src, dst, None, MS_BIND | MS_REC, None)
    flags = MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | (0 if device else MS_NODEV)
    _mount(None, dst, None, flags, None)


def _jail(req: dict[str, Any]) -> str:
    """Build the filesystem view and chroot into it; returns the sandbox's TMPDIR. Runs as root
    in C2."""
    root = req["mount_point"]
    uid = int(req["uid"])
    lim = req["limits"]
    _mount(None, "/", None, MS_REC | MS_PRIVATE, None)
    _mount("tmpfs", root, "tmpfs", MS_NOSUID | MS_NODEV, "size=4m,mode=755")
    done: list[str] = []
    for path in sorted(set(req["ro_paths"]), key=len):
        if any(path == d or path.startswith(d + "/") for d in done):
            continue
        if os.path.islink(path):
            os.makedirs(os.path.dirname(root + path), exist_ok=True)
            os.symlink(os.readlink(path), root + path)
        elif os.path.exists(path):
            _bind_ro(path, root)
            done.append(path)
    os.makedirs(root + "/dev", exist_ok=True)
    for dev in ("null", "zero", "random", "urandom"):
        _bind_ro("/dev/" + dev, root, device=True)  # read-only still allows writing to a device
    os.makedirs(root + "/scratch")
    _mount(
        "tmpfs",
        root + "/scratch",
        "tmpfs",
        MS_NOSUID | MS_NODEV,
        # nr_inodes: inodes cost kernel memory the size cap does not count (an inode filler)
        f"size={int(lim['scratch_bytes'])},nr_inodes={max(1024, int(lim['scratch_bytes']) // 4096)},"
        f"mode=700,uid={uid},gid={uid}",
    )
    home = root + "/scratch/" + os.path.basename(SANDBOX_HOME)
    os.makedirs(home)
    # POSIX semaphores and shared memory (multiprocessing's locks and queues) live in /dev/shm:
    # a folder of the scratch tmpfs, so its size cap covers them and they die with the sandbox
    os.makedirs(home + "/.shm")
    os.makedirs(root + "/dev/shm")
    _mount(home + "/.shm", root + "/dev/shm", None, MS_BIND, None)
    tmpdir = "/tmp"
    if os.path.isdir(root + "/tmp"):
        # A read-only path lives under /tmp (say the repository was cloned there): keep /tmp as
        # that view and mount just the sandbox's home into it from the scratch tmpfs; temporary
        # files then go to a folder inside that home, since /tmp itself is read-only.
        os.makedirs(root + SANDBOX_HOME, exist_ok=True)
        _mount(home, root + SANDBOX_HOME, None, MS_BIND, None)
        os.makedirs(home + "/tmp")
        tmpdir = SANDBOX_HOME + "/tmp"
    else:
        os.symlink("/scratch", root + "/tmp")
    os.makedirs(root + "/proc")
    _mount("proc", root + "/proc", "proc", MS_NOSUID | MS_NODEV, None)
    for dirpath, _dirs, _files in os.walk(root + "/scratch"):
        os.chown(dirpath, uid, uid)
    _mount(None, root, None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, None)
    os.chroot(root)
    os.chdir("/scratch")
    _libc.sethostname(b"sandbox", 7)
    return tmpdir


def _place_files(files: dict[str, str], uid: int) -> None:
    """Write the submission's files into the scratch folder (as root, inside the chroot, before
    the rlimits: a data file may be larger than what learner code may write).

    They come from the supervisor over this sandbox's own socket, after the fork: the warm parent
    never holds a submission's data, so no later fork can find it in inherited memory.
    """
    for name, b64 in files.items():
        parts = name.split("/")
        if not name or name.startswith("/") or ".." in parts or "" in parts:
            raise SandboxSetupError(f"file name outside the scratch folder: {name!r}")
        dst = "/scratch/" + name
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
        with open(fd, "wb") as fh:
            fh.write(base64.b64decode(b64))
    for dirpath, dirs, names in os.walk("/scratch"):
        for entry in [dirpath] + [os.path.join(dirpath, n) for n in dirs + names]:
            os.chown(entry, uid, uid, follow_symlinks=False)


def _drop_privileges(req: dict[str, Any], tmpdir: str, syscalls: bytes) -> None:
    """Set the rlimits, become the sandbox uid and load the syscall filter: the last step
    before learner code, after which nothing the sandbox does can undo any of it."""
    uid = int(req["uid"])
    lim = req["limits"]
    cpu = int(lim["cpu_seconds"])
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    resource.setrlimit(resource.RLIMIT_AS, (int(lim["memory_bytes"]),) * 2)
    resource.setrlimit(resource.RLIMIT_NPROC, (int(lim["max_processes"]),) * 2)
    resource.setrlimit(resource.RLIMIT_FSIZE, (int(lim["max_file_bytes"]),) * 2)
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))
    os.setgroups([])
    os.setgid(uid)
    os.setuid(uid)
    _prctl(PR_SET_NO_NEW_PRIVS, 1)
    syscall_filter.install(syscalls)
    # where solc-js lies, when configured: the sandbox's read-only view holds that folder (see
    # default_ro_paths), and grader.checks.contracts must look there, not beside the package
    node_modules = os.environ.get("ACADEMY_NODE_MODULES")
    os.environ.clear()
    os.environ.update(SANDBOX_ENV)
    os.environ["TMPDIR"] = tmpdir
    if node_modules:
        os.environ["ACADEMY_NODE_MODULES"] = node_modules
    # libraries preloaded in the zygote may already have asked tempfile (it caches the answer)
    tempfile.tempdir = tmpdir


def _c2_main(
    req: dict[str, Any], sock: socket.socket, out_fd: int, runner: _Runner, syscalls: bytes
) -> None:
    """pid 1 of the sandbox: jail, say ready, take the submission's files, drop privileges, then
    run cells until the supervisor hangs up.

    ``runner`` and the ``syscalls`` filter were built in the zygote before any learner code (see
    zygote_main), so each sandbox only sets its output cap, installs the capture hooks and loads
    the filter. Saying ready before the files come lets a sandbox be started ahead of the
    submission it will run (grader.executor.prestart). A judge (``req["judge"]``) runs hidden
    tests instead and never runs a learner cell.
    """
    os.setsid()
    _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    null = os.open("/dev/null", os.O_RDWR)
    os.dup2(null, 0)
    # fd 1/2 (C-level writes, subprocesses) go to a pipe the supervisor drains under its own cap.
    os.dup2(out_fd, 1)
    os.dup2(out_fd, 2)
    # The reply socket is always fd 3, whatever number the zygote got it as; nothing else of the
    # zygote's (its control socket, other sandboxes' sockets) stays open.
    if sock.fileno() != 3:
        os.dup2(sock.fileno(), 3, inheritable=False)
        os.close(sock.detach())
        sock = socket.socket(fileno=3)
    os.closerange(4, 4096)
    try:
        _check(_libc.unshare(CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS), "unshare")
        tmpdir = _jail(req)
    except Exception as exc:  # report to the supervisor as an infrastructure failure
        send_message(sock, {"ready": False, "error": f"{type(exc).__name__}: {exc}"})
        os._exit(71)
    send_message(sock, {"ready": True})
    # base64 in JSON: 4/3 of the scratch folder's size at most, plus the envelope
    setup = recv_message(sock, int(req["limits"]["scratch_bytes"]) * 3 // 2 + 1024**2)
    if setup is None:
        os._exit(0)  # a prestarted sandbox that was never used
    try:
        _place_files(dict(setup.get("files") or {}), int(req["uid"]))
        del setup
        _drop_privileges(req, tmpdir, syscalls)
    except Exception as exc:  # noqa: BLE001 - a full scratch folder, say: the supervisor says so
        send_message(sock, {"setup": False, "error": f"{type(exc).__name__}: {exc}"})
        os._exit(71)
    runner.max_output = int(req["limits"]["max_output_bytes"])
    runner.install()
    send, recv, exit_now = send_message, recv_message, os._exit  # bound before learner code runs
    send(sock, {"setup": True})
    if req.get("judge") is True:
        _judge_loop(sock)
    objects = LearnerObjects(runner.shell.user_ns)
    limit = 64 * 1024**2
    fds: list[int] = []
    channel: socket.socket | None = None
    while True:
        try:
            msg = recv(sock, limit, fds)
        except KeyboardInterrupt:  # an interrupt that came just after its cell finished
            continue
        if msg is None:
            exit_now(0)
        if fds:  # a new judge's channel (the last judge was replaced)
            if channel is not None:
                channel.close()
            channel = socket.socket(fileno=fds.pop())
        for extra in fds:
            os.close(extra)
        fds.clear()
        if msg.get("serve") is True and channel is not None:
            _serve_judge(channel, objects, runner)
            reply = {"served": True}
        else:
            reply = runner.run(str(msg.get("source", "")))
        reply["token"] = msg["token"]
        sys.stdout, sys.stderr = runner.stdout, runner.stderr
        send(sock, reply)


def _serve_judge(channel: socket.socket, objects: LearnerObjects, runner: _Runner) -> None:
    """Answer a hidden test's requests for learner names and calls, straight from the judge (no
    hop through the supervisor), until it says it is done, hangs up or the cell is interrupted."""
    limit = 64 * 1024**2
    while True:
        try:
            request = recv_message(channel, limit)
        except KeyboardInterrupt:
            return
        if not isinstance(request, dict) or request.get("done") is True:
            return
        runner.outputs, runner.error = [], None
        try:
            answer = objects.handle(request)
        except BaseException:  # noqa: BLE001 - an interrupt between the learner's call and here
            answer = {"raise": ["KeyboardInterrupt"]}
        answer["outputs"] = runner.outputs
        answer["id"] = request.get("id")
        sys.stdout, sys.stderr = runner.stdout, runner.stderr
        try:
            send_message(channel, answer)
        except (OSError, KeyboardInterrupt):
            return


def _judge_loop(sock: socket.socket) -> None:
    """The judge: runs hidden tests, never learner code (see grader.remote). Learner names are
    asked for through the supervisor, on this cell's token; the answer comes back on it."""
    from grader.remote import (
        Channel,
        LearnerNamespace,
        judge_sys_path,
        learner_files,
        place_learner_files,
        run_hidden,
    )

    limit = 64 * 1024**2
    fds: list[int] = []
    link: list[socket.socket] = []
    learner_outputs: list[dict[str, Any]] = []

    def ask(request: dict[str, Any]) -> dict[str, Any]:
        if not link:
            raise RuntimeError("no channel to the learner's sandbox")
        ident = secrets.token_hex(8)
        send_message(link[0], {**request, "id": ident})
        while True:
            answer = recv_message(link[0], limit)
            if answer is None:
                raise RuntimeError("the learner's sandbox hung up")
            if isinstance(answer, dict) and answer.get("id") == ident:
                outs = answer.get("outputs")
                if isinstance(outs, list):
                    learner_outputs.extend(o for o in outs if isinstance(o, dict))
                return cast("dict[str, Any]", answer)

    namespace = LearnerNamespace(Channel(ask))
    judge_sys_path()
    pristine = set(learner_files("."))  # the source's side files, placed at setup
    placed: set[str] = set()
    while True:
        try:
            msg = recv_message(sock, limit, fds)
        except KeyboardInterrupt:
            continue
        if msg is None:
            os._exit(0)
        if fds:
            for old in link:
                old.close()
            link[:] = [socket.socket(fileno=fds.pop())]
        for extra in fds:
            os.close(extra)
        fds.clear()
        learner_outputs.clear()
        try:
            if link:  # what the learner's cells wrote (a contract's source, say), as data
                with contextlib.suppress(RuntimeError, OSError):
                    place_learner_files(ask({"op": "files"}).get("value"), pristine, placed)
            learner_outputs.clear()
            ok, outputs, error = run_hidden(str(msg["source"]), namespace)
        except KeyboardInterrupt:
            ok, outputs = False, []
            error = {"ename": "KeyboardInterrupt", "evalue": "", "traceback": []}
        if link:
            with contextlib.suppress(OSError):
                send_message(link[0], {"done": True})
        reply = {"status": "ok" if ok else "error", "outputs": learner_outputs + outputs}
        send_message(sock, {**reply, "error": error, "token": msg.get("token"), "final": True})


def default_ro_paths() -> list[str]:
    """What a sandbox may read: the OS, the interpreter, the venv and the grader/labs packages.

    Never the course folders, the gradebook, other submissions or the repository as a whole.
    """
    paths = ["/usr", "/etc", "/bin", "/sbin", "/lib", "/lib64", "/lib32", "/libx32"]
    paths += [sys.prefix, sys.base_prefix, os.path.dirname(os.path.realpath(sys.executable))]
    import grader

    paths += list(grader.__path__)
    try:
        import labs

        paths += list(labs.__path__)
    except ImportError:
        pass
    try:  # solc-js, so grader.checks.contracts can compile learner Solidity inside the sandbox
        from labs.minichain.contracts import find_solc

        paths.append(str(find_solc().parent))
    except Exception:  # noqa: BLE001 - no solc-js installed: Solidity checks say so themselves
        pass
    return [os.path.realpath(p) if not os.path.islink(p) else p for p in paths]


def _recv_request(ctl: socket.socket) -> tuple[dict[str, Any], list[int]] | None:
    msg, fds, _flags, _addr = socket.recv_fds(ctl, 65536, 2)
    if not msg:
        return None
    (size,) = struct.unpack("!I", msg[:4])
    buf = bytearray(msg[4:])
    while len(buf) < size:
        more = ctl.recv(min(1 << 20, size - len(buf)))
        if not more:
            return None
        buf += more
    return json.loads(buf), fds


def _exit_report(status: int, usage: resource.struct_rusage) -> bytes:
    """C2's exit, as one ``F`` packet for its supervisor (which trusts it by the zygote's pid)."""
    cpu = usage.ru_utime + usage.ru_stime
    return b"F" + json.dumps({"exit_status": status, "cpu_seconds": cpu}).encode()


def _send_report(sock: socket.socket, packet: bytes) -> bool:
    """Try once, without blocking (a full socket must never stall the zygote); True when done."""
    try:
        sock.send(packet, socket.MSG_DONTWAIT)
    except BlockingIOError:
        return False
    except OSError:
        pass  # the supervisor has closed the sandbox already: nobody to tell
    sock.close()
    return True


def _fork_sandbox(
    req: dict[str, Any], fd: int, out_fd: int, own_pid_ns: int, warm: tuple[_Runner, bytes]
) -> int:
    """Fork C2 as pid 1 of a fresh pid namespace; returns its pid (in the zygote's namespace)."""
    _check(_libc.unshare(CLONE_NEWPID), "unshare")
    try:
        pid = os.fork()
    except OSError:
        _check(_libc.setns(own_pid_ns, CLONE_NEWPID), "setns")
        raise
    if pid == 0:
        try:
            _c2_main(req, socket.socket(fileno=fd), out_fd, *warm)
        finally:
            os._exit(70)
    # the next fork needs the zygote's own namespace back as its children's
    _check(_libc.setns(own_pid_ns, CLONE_NEWPID), "setns")
    return pid


def zygote_main(ctl_fd: int, preload: list[str]) -> None:
    """Serve fork requests from one supervisor until it closes the control socket.

    No PDEATHSIG here: that fires when the *thread* that started us exits (a pool thread, say);
    the control socket's EOF is the supervisor process's death, and our own exit takes every
    sandbox with it through their PDEATHSIG. Between requests the zygote reaps the sandboxes
    that ended and sends each one's exit status and CPU time to its supervisor.
    """
    # Preloaded libraries compute cache folders from these at import; point them where a sandbox
    # can write (its scratch folder), not at root's home.
    os.environ.update(SANDBOX_ENV)
    os.makedirs(SANDBOX_HOME, mode=0o700, exist_ok=True)
    for mod in preload:
        try:
            __import__(mod)
        except Exception as exc:  # noqa: BLE001 - a module a course imports may fail: the sandbox says so
            print(
                f"sandbox zygote: cannot preload {mod}: {type(exc).__name__}: {exc}",
                file=sys.stderr,
            )
    shell = make_shell()
    runner = _Runner(shell, 1)  # each sandbox sets its own output cap
    warm = runner, syscall_filter.compile_bpf(syscall_filter.build())
    ro_paths = default_ro_paths()
    mount_point = tempfile.mkdtemp(prefix="chainacademy-sandbox-root-")
    own_pid_ns = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
    ctl = socket.socket(fileno=ctl_fd)
    poller = select.poll()
    poller.register(ctl_fd, select.POLLIN)
    live: dict[int, tuple[int, socket.socket]] = {}  # pidfd -> (C2's pid, its report socket)
    unsent: list[tuple[socket.socket, bytes, float]] = []  # exit reports to retry
    # Everything above lives for the zygote's lifetime: move it out of the collector's reach, or
    # a collection in each sandbox would touch (and so copy, page by page) the whole inherited
    # heap. Objects a sandbox creates are collected as usual.
    gc.collect()
    gc.freeze()
    ctl.sendall(b"R")  # warm and ready
    while True:
        events = dict(poller.poll(10 if unsent else None))
        for pidfd in [fd for fd in events if fd in live]:
            poller.unregister(pidfd)
            os.close(pidfd)
            pid, report = live.pop(pidfd)
            _, status, usage = os.wait4(pid, 0)
            unsent.append((report, _exit_report(status, usage), time.monotonic() + 2.0))
        now = time.monotonic()
        unsent = [u for u in unsent if not _send_report(u[0], u[1]) and now < u[2]]
        if ctl_fd not in events:
            continue
        got = _recv_request(ctl)
        if got is None:
            os.rmdir(mount_point)
            os._exit(0)
        req, (fd, out_fd) = got
        req["ro_paths"] = ro_paths + list(req.get("extra_ro_paths", []))
        req["mount_point"] = mount_point
        try:
            pid = _fork_sandbox(req, fd, out_fd, own_pid_ns, warm)
        except (OSError, SandboxSetupError) as exc:
            os.close(fd)
            answer: dict[str, Any] = {"error": f"sandbox could not start ({exc}): is this root?"}
        else:
            pidfd = os.pidfd_open(pid)
            live[pidfd] = (pid, socket.socket(fileno=fd))
            poller.register(pidfd, select.POLLIN)
            answer = {"pid": pid, "reporter": os.getpid()}
        os.close(out_fd)
        raw = json.dumps(answer).encode()
        ctl.sendall(struct.pack("!I", len(raw)) + raw)


if __name__ == "__main__":
    # Run from the imported module, not this __main__ copy: IPython takes over sys.modules
    # ["__main__"] for the user namespace, and learner code must see (and be undone in) the one
    # grader.sandbox module that actually runs the cells.
    from grader.sandbox import zygote_main as _zygote_main

    _zygote_main(int(os.environ[ZYGOTE_FD_ENV]), [m for m in sys.argv[1:] if m])
