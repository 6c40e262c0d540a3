"""The seccomp filter a sandbox installs before learner code runs: refuse what notebooks never need.

Namespaces, chroot and an unprivileged uid already keep a submission away from the host's files and
network. What they leave open are kernel objects and kernel interfaces shared by every process of a
uid or of the host: a key added to a uid's keyring outlives the sandbox and a later submission
under the same uid reads it; ptrace and process_vm_readv reach other processes of that uid; bpf,
perf_event_open and userfaultfd are large kernel attack surfaces; a new user namespace hands out
capabilities again. The list follows the container engines' default profiles (Docker, podman)
minus what only root could use anyway, plus the keyring calls.

Every refused call fails with EPERM, never a kill, so honest code that happens to try one (a
library probing for io_uring, say) gets an ordinary Python exception. ``clone3`` is the one
exception: its flags sit in memory the filter cannot read, so it fails with ENOSYS, which makes
the C library fall back to ``clone``, whose namespace flags the filter does check.

The filter is built and compiled to BPF once, with libseccomp (its ctypes binding ``pyseccomp``),
in the warm parent; each sandbox loads that program after it dropped privileges, with
``PR_SET_NO_NEW_PRIVS`` set (compiling it again in every sandbox would cost more than the rest of
its setup's syscalls together). Syscalls of another ABI (i386 ``int 0x80``, x32) are refused as a
whole, since the list names native ones.
"""

from __future__ import annotations

import ctypes
import errno
import os
import tempfile
from typing import Any

import pyseccomp

DENIED = (
    # kernel keyrings: per-uid objects that outlive a sandbox
    "add_key",
    "request_key",
    "keyctl",
    # other processes' memory and state
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "process_madvise",
    "kcmp",
    "pidfd_getfd",
    "migrate_pages",
    "move_pages",
    # large kernel interfaces
    "bpf",
    "perf_event_open",
    "userfaultfd",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "fanotify_init",
    "lookup_dcookie",
    "syslog",
    # namespaces and the filesystem view
    "unshare",
    "setns",
    "mount",
    "umount",
    "umount2",
    "pivot_root",
    "chroot",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "move_mount",
    "open_tree",
    "mount_setattr",
    "name_to_handle_at",
    "open_by_handle_at",
    "quotactl",
    "quotactl_fd",
    # kernel modules, kexec, the machine itself
    "init_module",
    "finit_module",
    "delete_module",
    "create_module",
    "query_module",
    "get_kernel_syms",
    "kexec_load",
    "kexec_file_load",
    "reboot",
    "swapon",
    "swapoff",
    "acct",
    "iopl",
    "ioperm",
    "vhangup",
    "nfsservctl",
    "uselib",
    "ustat",
    "sysfs",
    "_sysctl",
    "vm86",
    "vm86old",
    # the clocks every process shares
    "settimeofday",
    "stime",
    "clock_settime",
    "clock_adjtime",
)
"""Refused with EPERM outright (names libseccomp does not know on this host are left out)."""

CLONE_NAMESPACE_FLAGS = (
    0x00020000,  # CLONE_NEWNS
    0x02000000,  # CLONE_NEWCGROUP
    0x04000000,  # CLONE_NEWUTS
    0x08000000,  # CLONE_NEWIPC
    0x10000000,  # CLONE_NEWUSER
    0x20000000,  # CLONE_NEWPID
    0x40000000,  # CLONE_NEWNET
)
"""``clone`` with any of these is refused; threads and forks (no namespace flag) go through."""


def build() -> Any:
    """The filter, ready to load (libseccomp only compiles it to BPF when it is loaded)."""
    refuse = pyseccomp.ERRNO(errno.EPERM)
    flt = pyseccomp.SyscallFilter(pyseccomp.ALLOW)
    flt.set_attr(pyseccomp.Attr.ACT_BADARCH, refuse)
    flt.set_attr(pyseccomp.Attr.CTL_NNP, 1)
    for name in DENIED:
        if pyseccomp.resolve_syscall(pyseccomp.Arch.NATIVE, name) == -1:
            continue  # newer than this libseccomp: it cannot name it
        flt.add_rule(refuse, name)
    for flag in CLONE_NAMESPACE_FLAGS:
        flt.add_rule(refuse, "clone", pyseccomp.Arg(0, pyseccomp.MASKED_EQ, flag, flag))
    flt.add_rule(pyseccomp.ERRNO(errno.ENOSYS), "clone3")
    return flt


def compile_bpf(flt: Any) -> bytes:
    """The BPF program libseccomp makes of ``flt`` (what its own load would hand the kernel)."""
    with tempfile.TemporaryFile() as fh:
        flt.export_bpf(fh)
        fh.seek(0)
        return fh.read()


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2
_prctl = ctypes.CDLL(None, use_errno=True).prctl


def install(bpf: bytes) -> None:
    """Load the program into this thread for good (the sandbox's only thread when it calls this;
    ``PR_SET_NO_NEW_PRIVS`` must be set, or the process must be privileged)."""
    if not bpf or len(bpf) % 8:
        raise OSError(errno.EINVAL, "not a BPF program")
    code = ctypes.create_string_buffer(bpf, len(bpf))
    prog = _SockFprog(len(bpf) // 8, ctypes.addressof(code))
    rc = _prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(prog), 0, 0)
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"loading the seccomp filter failed: {os.strerror(err)}")
