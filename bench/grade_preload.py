"""Grading time of a course lab's submission with the lab preload, beside the bare zygote anchor.

A course lab notebook imports web3 and ``labs.client`` (py-evm behind an in-process chain). The
anchor grades the lab's reference notebook with a zygote that preloads only the checkers
(``CHAINACADEMY_SANDBOX_PRELOAD=""``), so every sandbox imports those itself; the other run uses
``grader.executor.LAB_PRELOAD``, as academy's grading pool and ``academy course check`` do. Each
configuration runs in its own process, alternating, and only warm grades (after the first) count.

    .venv/bin/python bench/grade_preload.py [--lab crypto-foundations/merkle] [--rounds 2] [--grades 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = """
import json, sys, time
from pathlib import Path
from grader.assignment import read_node
from grader.jobs import grade_notebook, side_files
from grader.executor import warm
folder, lab, n = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
src = read_node(folder / f"{lab}.ipynb")
files = side_files(folder)
warm()
times = []
for _ in range(n):
    t = time.perf_counter()
    res = grade_notebook(src, src, lab, files=files)
    times.append(time.perf_counter() - t)
    assert all((r.points or 0) == r.max_points for r in res.values()), res
print(json.dumps(times))
"""


def grades(folder: Path, lab: str, n: int, preload: str) -> list[float]:
    env = dict(os.environ, CHAINACADEMY_SANDBOX_PRELOAD=preload)
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(folder), lab, str(n)],
        env=env,
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])[1:]  # warm grades only


def main() -> None:
    from grader.executor import LAB_PRELOAD

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lab", default="crypto-foundations/merkle", help="course/lab")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--grades", type=int, default=3, help="per process; the first is dropped")
    args = parser.parse_args()
    course, lab = args.lab.split("/")
    folder = ROOT / "courses" / course / "source" / lab
    bare: list[float] = []
    lab_preload: list[float] = []
    for _ in range(args.rounds):
        bare += grades(folder, lab, args.grades, "")
        lab_preload += grades(folder, lab, args.grades, LAB_PRELOAD)
    b, p = statistics.median(bare), statistics.median(lab_preload)
    print(f"{args.lab}: warm grade, checkers-only zygote (anchor) median {b:.2f}s")
    print(f"{args.lab}: warm grade, lab preload              median {p:.2f}s")
    print(f"lab preload grades in {p / b:.2f}x the anchor's time ({b / p:.1f}x faster)")


if __name__ == "__main__":
    main()
