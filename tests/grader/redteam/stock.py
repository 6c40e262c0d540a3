"""Stock ``nbgrader autograde`` on hostile submissions, kept from harming the host.

nbgrader runs each notebook in a plain Jupyter kernel as the user who runs it: root, here. A
red-team case that kills every process it can see, writes /etc/passwd or fills /tmp would do it to
this machine. So nbgrader itself is unchanged, but it runs as a deployment that cares would run
it: in fresh pid, mount, IPC and network namespaces (loopback only, for the kernel's own
sockets; a private /tmp, /var/tmp and /dev/shm), and its kernels start through a launcher that
drops to an unprivileged uid with rlimits, in a pid namespace of its own (so nothing a notebook
forks outlives its kernel and eats the next kernel's process limit), before ``ipykernel`` starts. None of this changes how
nbgrader scores a cell; a case that breaks out of it is still graded however nbgrader grades it.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Collection, Iterator
from pathlib import Path

from tests.grader.coursegen import NBGRADER, write_config

REPO = Path(__file__).resolve().parents[3]

LAUNCHER = """\
import ctypes, os, resource, shutil, signal, sys
uid = int(sys.argv[1])
conn = sys.argv[2]
home = os.path.join(os.path.dirname(conn), "home-" + os.path.basename(conn))
os.makedirs(home, exist_ok=True)
mine = os.path.join(home, "connection.json")
shutil.copy(conn, mine)
for path in (home, mine):
    os.chown(path, uid, uid)
libc = ctypes.CDLL(None, use_errno=True)
if libc.unshare(0x20000000) != 0:  # CLONE_NEWPID: what the kernel forks dies with it
    raise OSError(ctypes.get_errno(), "unshare")
child = os.fork()
if child:
    signal.signal(signal.SIGTERM, lambda *a: os.kill(child, signal.SIGKILL))
    _, status = os.waitpid(child, 0)
    os._exit(os.waitstatus_to_exitcode(status) & 0xFF)
limits = {
    resource.RLIMIT_NPROC: 256,
    resource.RLIMIT_AS: 3 * 1024**3,
    resource.RLIMIT_FSIZE: 64 * 1024**2,
    resource.RLIMIT_CPU: 120,
    resource.RLIMIT_NOFILE: 1024,
}
for what, value in limits.items():
    resource.setrlimit(what, (value, value))
os.setgroups([])
os.setgid(uid)
os.setuid(uid)
libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG, after setuid (which clears it)
os.environ.update(HOME=home, IPYTHONDIR=os.path.join(home, ".ipython"))
os.execv(sys.executable, [sys.executable, "-m", "ipykernel_launcher", "-f", mine])
"""

INSIDE = """\
set -e
ip link set lo up
mount --make-rprivate /
mount --bind "$COURSE_HOST" "$COURSE"
# the checkout and its venv may lie under /tmp (a CI workspace): hold them across the private /tmp
i=0; for keep in $(echo "$KEEP" | tr ':' ' '); do
  case "$keep" in /tmp/*|/var/tmp/*|/dev/shm/*)
    i=$((i+1)); mkdir -p "$HOLD/$i" && mount --bind "$keep" "$HOLD/$i";;
  esac
done
for dir in /tmp /var/tmp /dev/shm; do mount -t tmpfs -o size=256m,mode=1777 tmpfs "$dir"; done
i=0; for keep in $(echo "$KEEP" | tr ':' ' '); do
  case "$keep" in /tmp/*|/var/tmp/*|/dev/shm/*)
    i=$((i+1)); mkdir -p "$keep" && mount --move "$HOLD/$i" "$keep";;
  esac
done
mkdir -p /tmp/runtime && chmod 755 /tmp/runtime
case "$PYHOME" in /root/*)  # the interpreter lives in root's home: let the kernel's uid reach it
  mkdir /tmp/pyhome && mount --bind "$PYHOME" /tmp/pyhome
  mount -t tmpfs -o size=1m,mode=755 tmpfs /root
  mkdir -p "$PYHOME" && mount --move /tmp/pyhome "$PYHOME";;
esac
cd "$COURSE"
"$NBGRADER" generate_assignment "$ASSIGNMENT" --force
exec "$NBGRADER" autograde "$ASSIGNMENT" --force
"""


class StockRun:
    """A stock nbgrader run in progress; :meth:`wait` returns its log."""

    def __init__(self, proc: subprocess.Popen[bytes], log: Path) -> None:
        self.proc = proc
        self.log = log

    def wait(self, timeout: float) -> str:
        self.proc.wait(timeout=timeout)
        return self.log.read_text(errors="replace")


@contextlib.contextmanager
def start_stock_autograde(
    course: Path,
    assignment: str,
    uid: int,
    cell_timeout: int = 20,
    exclude: Collection[str] = (),
) -> Iterator[StockRun]:
    """Start ``nbgrader generate_assignment``, then ``nbgrader autograde`` over every submission
    of ``course`` but the ``exclude`` students in one run (the gradebook is
    ``course/gradebook.db``), each cell given ``cell_timeout`` seconds; it runs beside the
    caller, and is ended (its namespace with it) when the block is left."""
    mount_point = Path(tempfile.mkdtemp(prefix="redteam-stock-", dir="/run"))
    mount_point.chmod(0o755)
    kernels = Path(tempfile.mkdtemp(prefix="redteam-kernels-", dir="/run"))
    kernels.chmod(0o755)
    proc = None
    try:
        (kernels / "launcher.py").write_text(LAUNCHER)
        spec = kernels / "kernels" / "python3"
        spec.mkdir(parents=True)
        argv = [sys.executable, str(kernels / "launcher.py"), str(uid), "{connection_file}"]
        # the kernel is pid 1 of its own namespace, where SIGINT has no default action: Jupyter
        # interrupts it with a message instead
        kernel = {
            "argv": argv,
            "display_name": "Python 3",
            "language": "python",
            "interrupt_mode": "message",
        }
        (spec / "kernel.json").write_text(json.dumps(kernel))
        # nbgrader's config names the course root: the path it has inside the namespaces
        write_config(course)
        config = (course / "nbgrader_config.py").read_text()
        config = config.replace(str(course), str(mount_point))
        config += f"c.Execute.timeout = {int(cell_timeout)}\n"
        config += f"c.CourseDirectory.student_id_exclude = {','.join(exclude)!r}\n"
        (course / "nbgrader_config.py").write_text(config)
        course.chmod(0o755)
        env = dict(
            os.environ,
            COURSE_HOST=str(course),
            COURSE=str(mount_point),
            NBGRADER=str(NBGRADER),
            ASSIGNMENT=assignment,
            PYHOME=sys.base_prefix,
            KEEP=f"{REPO}:{sys.prefix}",
            HOLD=str(kernels / "hold"),
            JUPYTER_PATH=str(kernels),
            JUPYTER_RUNTIME_DIR="/tmp/runtime",
            PATH=f"{NBGRADER.parent}{os.pathsep}{os.environ.get('PATH', '')}",
        )
        env.pop("JUPYTER_CONFIG_DIR", None)
        cmd = ["unshare", "--pid", "--fork", "--kill-child", "--mount-proc", "--mount", "--net"]
        log = course.parent / "nbgrader.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [*cmd, "--ipc", "--uts", "sh", "-c", INSIDE],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        yield StockRun(proc, log)
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        shutil.rmtree(kernels, ignore_errors=True)
        mount_point.rmdir()
