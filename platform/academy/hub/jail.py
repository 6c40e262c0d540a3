"""Each learner's server and kernels in namespaces of their own, reaching only what they need.

In the embedded platform the hub, academy, every learner's server and every lab chain run on one
machine. Without a boundary a notebook cell could read any process's environment (other learners'
tokens and chain keys, academy's service token), the hub's secrets and databases, and reach every
chain and PostgreSQL on loopback. A jailed server instead runs:

- in a **pid namespace**: its /proc lists only its own processes;
- in a **mount namespace** built by bubblewrap: the machine read-only, the platform's state folder,
  /tmp, /run, /root and /home replaced by empty ones, and only the learner's own folder writable;
- as a **user of its own** (``uid_base + the hub's user id``), with no capabilities and
  ``no_new_privs``, so no file that is not world-readable opens and no setuid program helps;
- in a **network namespace** with only its own loopback. A relay (this module's :func:`jail`, the
  server's parent, outside every namespace of the learner) listens inside on exactly the
  loopback ports the server needs (the hub's API, the hub's public port where academy is, the
  RPC ports of the learner's own running chains, followed as they start, stop and change ports)
  and connects each to the same port on the machine; and it listens on the machine's loopback at
  the server's port, so the proxy reaches the server as before.

bubblewrap builds the namespaces (it holds them with an idle process as their pid 1). The server
joins them with ``setns`` instead of being started by bubblewrap, because it is forked from the
warm parent that already imported JupyterLab (a fresh interpreter costs seconds per login).

    python -m academy.hub.jail SPEC_JSON -- COMMAND...   (the same jail around a command)
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import functools
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

#: namespace types for setns(2)
_CLONE_NEWNS = 0x00020000
_CLONE_NEWUTS = 0x04000000
_CLONE_NEWIPC = 0x08000000
_CLONE_NEWNET = 0x40000000
_CLONE_NEWPID = 0x20000000
_PR_SET_NO_NEW_PRIVS = 38

#: folders no learner sees, whatever the state folder is: other programs' temporary files and
#: sockets (the warm parent's, PostgreSQL's), administrators' homes
HIDDEN = ("/tmp", "/run", "/var/tmp", "/root", "/home", "/dev/shm")


class JailError(RuntimeError):
    """The jail could not be built; the message says what is missing."""


@dataclass
class Jail:
    """What one learner's server may see and reach (sent to the warm parent as JSON)."""

    home: str
    """the learner's folder: the only platform folder inside, and the only writable one"""
    uid: int
    """the user the server and its kernels run as"""
    port: int
    """the server's port: the relay listens on it on the machine's loopback"""
    forward: list[list[Any]] = field(default_factory=list)
    """``[port, host]`` pairs: the relay listens on 127.0.0.1:port inside, connects to host:port"""
    hide: list[str] = field(default_factory=list)
    """folders replaced by empty ones inside (the platform's state folder), besides ``HIDDEN``"""
    expose: list[str] = field(default_factory=lambda: runtime_folders())
    """folders inside hidden ones that stay visible, read-only (what the server and kernels run)"""
    nproc: int = 1024
    """processes and threads the learner's user may have at once (a fork bomb stops there)"""
    learner: str = ""
    """whose lab chains the relay follows (with ``chains``)"""
    chains: str = ""
    """labs.sandbox state folder of the learners' chains: the relay forwards the ports of the
    learner's *running* chains there, as they start, stop and move to other ports"""

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Jail:
        values = json.loads(text)
        return cls(
            home=str(values["home"]),
            uid=int(values["uid"]),
            port=int(values["port"]),
            forward=[[int(p), str(h)] for p, h in values.get("forward", [])],
            hide=[str(h) for h in values.get("hide", [])],
            expose=[str(e) for e in values["expose"]] if "expose" in values else runtime_folders(),
            nproc=int(values.get("nproc", 1024)),
            learner=str(values.get("learner", "")),
            chains=str(values.get("chains", "")),
        )


def python_home() -> str:
    """The Python installation below the virtualenv (it may live in a hidden home folder)."""
    return str(Path(sys.base_prefix).resolve())


def runtime_folders() -> list[str]:
    """What a learner's server and kernels run, wherever the checkout lies (a clone under /tmp
    is inside a hidden folder): the Python installation, the virtualenv, the code of the
    packages an editable install points at, and the npm packages (solc for Solidity labs).
    Never the checkout as a whole: its state folder holds the platform's secrets."""
    return list(_runtime_folders())


@functools.cache
def _runtime_folders() -> tuple[str, ...]:
    """Computed once per process: the hub builds a jail at every spawn (in its event loop), the
    warm parent checks each request before it forks, and none of these folders moves while a
    process runs."""
    import academy
    import grader
    import labs

    folders = [python_home(), str(Path(sys.prefix).resolve())]
    for package in (academy, grader, labs):
        folders += [str(Path(p).resolve()) for p in package.__path__]
    npm = Path(labs.__path__[0]).resolve().parent / "node_modules"
    if npm.is_dir():
        folders.append(str(npm.resolve()))
    return tuple(dict.fromkeys(folders))


def why_unavailable() -> str:
    """Why jails cannot be built here ("" when they can): bubblewrap missing, or not root."""
    if shutil.which("bwrap") is None:
        return "bubblewrap (bwrap) is not installed: deploy/bootstrap.sh installs it"
    if os.geteuid() != 0:
        return "the hub does not run as root: it cannot switch a server to a user of its own"
    return ""


def bwrap_argv(spec: Jail) -> list[str]:
    """bubblewrap holding the learner's namespaces: an idle pid 1 and the mounts set up."""
    argv = ["bwrap", "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts"]
    # the host's own name stays (a new UTS namespace keeps it): /etc/hosts names it, so name
    # lookups answer at once (a name only DNS knows takes 0.2 s and more to fail inside)
    argv += ["--die-with-parent", "--cap-drop", "ALL"]
    argv += ["--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
    for folder in (*HIDDEN, *spec.hide):
        if os.path.isdir(folder) and not os.path.islink(folder):
            argv += ["--tmpfs", folder]
    # put back inside the empty folders: what the server runs (read-only), the learner's folder
    for path, how in [*((p, "--ro-bind") for p in spec.expose), (spec.home, "--bind")]:
        for hidden in (*HIDDEN, *spec.hide):
            if Path(path).is_relative_to(hidden) and path != hidden:
                # the folders down to it are made inside the empty one: traversable by the learner
                for parent in reversed(Path(path).relative_to(hidden).parents[:-1]):
                    argv += ["--perms", "0755", "--dir", str(Path(hidden) / parent)]
        argv += [how, path, path]
    argv += ["--chdir", "/"]
    # ready once the mounts are done: the command runs only after bubblewrap set everything up
    return [*argv, "--", "sh", "-c", "echo ready; exec sleep infinity"]


def _libc() -> Any:
    return ctypes.CDLL(None, use_errno=True)


def _setns(fd: int, kind: int) -> None:
    if _libc().setns(fd, kind) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


@contextlib.contextmanager
def _inside(net_fd: int, home_fd: int) -> Iterator[None]:
    """Sockets created in this block belong to the learner's network namespace."""
    _setns(net_fd, _CLONE_NEWNET)
    try:
        yield
    finally:
        _setns(home_fd, _CLONE_NEWNET)


def _listener(port: int) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port))
    s.listen(128)
    s.setblocking(False)
    return s


def _own_folder(home: str, uid: int) -> None:
    """The learner's folder belongs to their user (once; later files are theirs already)."""
    os.makedirs(home, exist_ok=True)
    if os.stat(home).st_uid == uid:
        return
    for root, dirs, files in os.walk(home):
        for name in (*dirs, *files):
            with contextlib.suppress(FileNotFoundError):
                os.lchown(os.path.join(root, name), uid, uid)
    os.chown(home, uid, uid)


def _become_learner(holder: int, spec: Jail) -> None:
    """In the forked server: join the learner's namespaces, become their user, drop the rest."""
    fds = {
        kind: os.open(f"/proc/{holder}/ns/{name}", os.O_RDONLY)
        for name, kind in (
            ("ipc", _CLONE_NEWIPC),
            ("uts", _CLONE_NEWUTS),
            ("net", _CLONE_NEWNET),
            ("mnt", _CLONE_NEWNS),  # last: it changes what /proc and every path mean
        )
    }
    for kind, fd in fds.items():
        _setns(fd, kind)
        os.close(fd)
    os.chdir(spec.home)
    # counted per user: each learner has their own, so one learner's processes never starve another's
    resource.setrlimit(resource.RLIMIT_NPROC, (spec.nproc, spec.nproc))
    os.setgroups([])
    os.setresgid(spec.uid, spec.uid, spec.uid)
    os.setresuid(spec.uid, spec.uid, spec.uid)  # from root to another user: every capability goes
    if _libc().prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS)")
    os.closerange(3, 65536)  # nothing of the relay or the warm parent stays open


def _start_holder(spec: Jail) -> tuple[subprocess.Popen, int]:
    """Start bubblewrap; return it and the pid (as seen here) of the namespaces' pid 1."""
    info_r, info_w = os.pipe()
    argv = bwrap_argv(spec)
    argv.insert(1, "--info-fd")
    argv.insert(2, str(info_w))
    holder = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, pass_fds=(info_w,)
    )
    os.close(info_w)
    assert holder.stdout is not None
    ready = holder.stdout.readline()
    with os.fdopen(info_r) as info:
        text = info.read(4096) if ready else ""
    if ready.strip() != b"ready":
        holder.kill()
        raise JailError(
            f"bubblewrap did not set the learner's namespaces up (exit {holder.wait()})"
        )
    return holder, int(json.loads(text)["child-pid"])


def jail(spec: Jail, server: Callable[[], int]) -> int:
    """Run ``server()`` in the learner's jail and relay for it until it exits; its exit code.

    Called in a process of its own (the warm parent's child): it becomes the relay, outside the
    learner's namespaces, and its child becomes the server. SIGTERM and SIGINT reach the server.
    """
    _own_folder(spec.home, spec.uid)
    holder, pid1 = _start_holder(spec)
    home_net = os.open("/proc/self/ns/net", os.O_RDONLY)
    jail_net = os.open(f"/proc/{pid1}/ns/net", os.O_RDONLY)
    try:
        with _inside(jail_net, home_net):
            outward = [(_listener(port), host, port) for port, host in spec.forward]
        # the server (the child forked next) is born in the learner's pid namespace
        pid_ns = os.open(f"/proc/{pid1}/ns/pid", os.O_RDONLY)
        _setns(pid_ns, _CLONE_NEWPID)
        os.close(pid_ns)
        child = os.fork()
        if child == 0:
            code = 1
            try:
                for s, _host, _port in outward:
                    s.close()
                # a session of its own, as an unjailed server has: a signal to the relay's
                # process group reaches the server once, through the relay, not twice
                os.setsid()
                _become_learner(pid1, spec)
                code = server()
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 1
            except BaseException as exc:
                with contextlib.suppress(Exception):
                    print(f"jailed server: {exc!r}", file=sys.stderr, flush=True)
            finally:
                os._exit(code)
        return asyncio.run(_Relay(spec, child, jail_net, home_net, outward).run())
    finally:
        holder.kill()
        holder.wait()


class _Relay:
    """The server's parent: forwards connections across the namespace boundary, both ways."""

    def __init__(
        self,
        spec: Jail,
        child: int,
        jail_net: int,
        home_net: int,
        outward: list[tuple[socket.socket, str, int]],
    ) -> None:
        self.spec, self.child = spec, child
        self.jail_net, self.home_net = jail_net, home_net
        self.outward = outward
        self.exited: asyncio.Future[int] | None = None
        self.let_in: asyncio.Event | None = None
        self._sandbox: Any = None

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        self.exited = loop.create_future()
        self.let_in = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._forward, sig)
        loop.add_signal_handler(signal.SIGCHLD, self._reap)
        self._reap()  # it may have ended before the handler was there
        for s, host, port in self.outward:
            await asyncio.start_server(self._outward(host, port), sock=s)
        tasks = [asyncio.ensure_future(self._serve_inward())]
        if self.spec.chains:
            tasks.append(asyncio.ensure_future(self._follow_chains()))
        code = await self.exited
        for task in tasks:
            task.cancel()
        print(f"jail: the server in {self.spec.home} exited ({code})", file=sys.stderr, flush=True)
        return code

    def _chain_ports(self) -> dict[int, str]:
        """``{port: host}`` of the learner's running chains now (read from labs.sandbox)."""
        from urllib.parse import urlsplit

        from labs.sandbox.env import learner_slug
        from labs.sandbox.manager import SandboxManager

        if self._sandbox is None:
            self._sandbox = SandboxManager(state_dir=self.spec.chains)
        ports: dict[int, str] = {}
        envs = Path(self.spec.chains) / "envs"
        for record in envs.glob(f"{learner_slug(self.spec.learner)}-*.json"):
            try:
                values = json.loads(record.read_text())
            except (OSError, ValueError):
                continue
            if values.get("learner") != self.spec.learner:
                continue
            env = self._sandbox.status(self.spec.learner, str(values.get("lab_id")))
            for url in env.rpc_urls if env.status == "running" else []:
                parts = urlsplit(url)
                if parts.port and parts.hostname:
                    ports[parts.port] = parts.hostname
        return ports

    async def _follow_chains(self, every: float = 0.5) -> None:
        """Listen inside on the ports of the learner's running chains, and on no others.

        From the moment the server is let in: the scan blocks the relay's loop (no thread can
        start here, the relay's children belong to the learner's pid namespace), and before then
        the loop has the server's first connection to notice; no kernel can run before it."""
        assert self.let_in is not None
        await self.let_in.wait()
        open_: dict[int, asyncio.Server] = {}
        while True:
            try:
                wanted = self._chain_ports()
            except Exception as exc:  # a record half written, a chain folder being deleted
                print(f"jail: reading the learner's chains: {exc!r}", file=sys.stderr, flush=True)
                wanted = {port: "" for port in open_}
            for port in set(open_) - set(wanted):
                open_.pop(port).close()
            for port, host in wanted.items():
                if port in open_ or not host:
                    continue
                try:
                    with _inside(self.jail_net, self.home_net):
                        listener = _listener(port)
                except OSError:  # the learner listens on that port inside: theirs to keep
                    continue
                open_[port] = await asyncio.start_server(self._to_chain(host, port), sock=listener)
            await asyncio.sleep(every)

    def _to_chain(self, host: str, port: int) -> Any:
        forward = self._outward(host, port)

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            # checked again at each connection: a stopped chain's port may be another's by now
            if self._chain_ports().get(port) != host:
                writer.close()
                return
            await forward(reader, writer)

        return handle

    def _forward(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.child, sig)

    def _reap(self) -> None:
        with contextlib.suppress(ChildProcessError):
            pid, status = os.waitpid(self.child, os.WNOHANG)
            if pid and self.exited is not None and not self.exited.done():
                self.exited.set_result(os.waitstatus_to_exitcode(status))

    def _jail_socket(self) -> socket.socket:
        with _inside(self.jail_net, self.home_net):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        return s

    async def _serve_inward(self) -> None:
        """Listen on the machine's loopback once the server listens inside (so the hub's check
        that the server is up sees the relay only when a connection would reach the server)."""
        loop = asyncio.get_running_loop()
        while True:
            probe = self._jail_socket()
            try:
                await loop.sock_connect(probe, ("127.0.0.1", self.spec.port))
                break
            except OSError:
                # the hub waits for this: a probe costs ~0.1 ms, 10 ms late costs every login
                await asyncio.sleep(0.01)
            finally:
                probe.close()
        try:
            listener = _listener(self.spec.port)
        except OSError as exc:  # someone took the port meanwhile: the spawner draws another
            print(f"jail: port {self.spec.port} is taken ({exc})", file=sys.stderr, flush=True)
            self._forward(signal.SIGTERM)
            return
        server = await asyncio.start_server(self._inward, sock=listener)
        assert self.let_in is not None
        self.let_in.set()
        async with server:
            await server.serve_forever()

    async def _inward(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _splice(reader, writer, self._jail_socket(), ("127.0.0.1", self.spec.port))

    def _outward(self, host: str, port: int) -> Any:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            await _splice(reader, writer, s, (host, port))

        return handle


async def _splice(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    sock: socket.socket,
    address: tuple[str, int],
) -> None:
    """Connect ``sock`` to ``address`` and copy both ways until both sides are done (or the
    relay stops: then the connection just ends)."""
    try:
        await asyncio.get_running_loop().sock_connect(sock, address)
    except OSError:
        sock.close()
        writer.close()
        return
    except asyncio.CancelledError:
        sock.close()
        return
    far_reader, far_writer = await asyncio.open_connection(sock=sock)
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.gather(_copy(reader, far_writer), _copy(far_reader, writer))
    for w in (writer, far_writer):
        with contextlib.suppress(Exception):
            w.close()


async def _copy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(1 << 16):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except (OSError, RuntimeError):
        with contextlib.suppress(Exception):
            writer.close()


def main(argv: list[str] | None = None) -> int:
    """The jail around a command (the spawner's way when no warm parent answers)."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) < 3 or args[1] != "--":
        print("usage: python -m academy.hub.jail SPEC_JSON -- COMMAND...", file=sys.stderr)
        return 2
    spec, command = Jail.from_json(args[0]), args[2:]

    def server() -> int:
        os.execvp(command[0], command)

    return jail(spec, server)


if __name__ == "__main__":
    sys.exit(main())
