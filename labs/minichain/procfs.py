"""What Linux's /proc says of a process, for code that starts, watches and stops local processes
(validators, chain launchers, the hub's children)."""

from __future__ import annotations

from pathlib import Path


def stat(pid: int) -> tuple[str, int] | None:
    """The process's state letter (``R``, ``S``, ``T`` stopped, ``Z`` zombie, ...) and its
    parent's pid; None once it is gone. The fields are read after the last ``)``, because the
    command name before them may itself hold spaces and parentheses."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return fields[0], int(fields[1])
    except (OSError, IndexError, ValueError):
        return None
