"""The commit-msg hook that bootstrap installs holds commits to a short subject and a body."""

import subprocess
from pathlib import Path

import pytest

HOOK = Path(__file__).resolve().parents[2] / "deploy" / "git-hooks" / "commit-msg"


def run_hook(tmp_path: Path, message: str) -> subprocess.CompletedProcess[str]:
    msg = tmp_path / "COMMIT_EDITMSG"
    msg.write_text(message)
    return subprocess.run(["bash", str(HOOK), str(msg)], capture_output=True, text=True)


@pytest.mark.parametrize(
    "message",
    [
        "Grader: keep hidden tests apart\n\nWhy: they must never reach learner code.\n",
        "x" * 72 + "\n",
        "Subject only\n# a comment git strips\n",
        "Merge branch 'types' into main\nwith a body on line two\n",
    ],
)
def test_accepts(tmp_path: Path, message: str) -> None:
    result = run_hook(tmp_path, message)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    ("message", "complaint"),
    [
        ("x" * 73 + "\n\nbody\n", "73 characters"),
        ("Subject\nbody glued to it\n", "blank line"),
        ("\n\nbody\n", "empty"),
    ],
)
def test_refuses(tmp_path: Path, message: str, complaint: str) -> None:
    result = run_hook(tmp_path, message)
    assert result.returncode == 1
    assert complaint in result.stderr
