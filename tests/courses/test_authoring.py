"""Follow docs/authoring.md's walkthrough word for word: its files, then its commands.

The files and commands are read from the document itself (fences marked ``file=PATH`` and
``sh run``), so the walkthrough cannot drift from what works.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "authoring.md"
FENCE = re.compile(r"^(`{3,})(\w+) (file=\S+|run)\n(.*?)^\1$", re.M | re.S)


def test_walkthrough_builds_and_checks_a_new_lab(tmp_path: Path) -> None:
    files, commands = {}, []
    for _, _lang, what, body in FENCE.findall(DOC.read_text()):
        if what == "run":
            commands += [line for line in body.splitlines() if line.strip()]
        else:
            files[what.removeprefix("file=")] = body
    assert {Path(p).name for p in files} == {
        "course.toml",
        "lab.toml",
        "README.md",
        "content-address.txt",
    }
    for rel, body in files.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(body)
    outputs = []
    for command in commands:
        argv = shlex.split(command)
        assert argv[0] == ".venv/bin/academy", command
        proc = subprocess.run(
            [sys.executable, "-m", "academy.cli", *argv[1:]],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert proc.returncode == 0, f"{command}\n{proc.stdout}\n{proc.stderr}"
        outputs.append(proc.stdout)
    notebook = tmp_path / "courses/hash-basics/source/content-address/content-address.ipynb"
    assert notebook.is_file()
    check = outputs[-1]
    assert (
        "ok   hash-basics/content-address: solution 3/3, starter 0/3, languages en, chain 1xsolo up"
        in check
    )
    assert "1 lab(s), 3 autograded points, languages en 1, zh-CN 0: 1 ok, 0 failed" in check
