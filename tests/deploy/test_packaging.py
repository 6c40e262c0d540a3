"""The built wheel holds every module and data file of the source tree.

Tests and `make up` run from an editable install, which finds any file in the tree; the images
(deploy/images.sh) install the wheel, where a package missing from pyproject.toml's list or a data
file outside its package-data patterns is simply absent. Seen: academy.pages and the learner's
jupyter_server_config.json, which only the production images lacked.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCES = {
    "academy": ROOT / "platform" / "academy",
    "labs": ROOT / "labs",
    "grader": ROOT / "grader",
}
SKIP_PARTS = {"__pycache__", "node_modules", "labext"}  # labext: built into the images separately


def _tree_files() -> set[str]:
    files = set()
    for package, folder in SOURCES.items():
        for path in folder.rglob("*"):
            rel = path.relative_to(folder)
            if path.is_dir() or SKIP_PARTS & set(rel.parts) or path.suffix == ".pyc":
                continue
            if path.name == "README.md":
                continue
            files.add(f"{package}/{rel.as_posix()}")
    return files


def test_wheel_holds_every_module_and_data_file(tmp_path: Path) -> None:
    # from a copy: setuptools' build/ folder in the tree would hand back files of an older build
    src = tmp_path / "src"
    ignore = shutil.ignore_patterns("__pycache__", "node_modules", "labext", "*.egg-info")
    for name in ("platform", "labs", "grader"):
        shutil.copytree(ROOT / name, src / name, ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path), str(src)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stderr[-2000:]
    (wheel,) = tmp_path.glob("chainacademy-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    missing = sorted(_tree_files() - names)
    assert not missing, f"not in the wheel (add to pyproject.toml packages/package-data): {missing}"
