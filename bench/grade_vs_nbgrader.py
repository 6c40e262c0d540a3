"""Grade the same submissions with stock nbgrader and with ours, side by side in one run.

Prints both wall times, the throughput ratio, and whether every per-cell score matched nbgrader's
gradebook. Goal (issue 3): >= 50x nbgrader's throughput with identical scores.

    .venv/bin/python bench/grade_vs_nbgrader.py [--submissions 200] [--workers 2] [--ours-only]

``--ours-only`` times our grader alone on the same course (for quick iterations; no ratio).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from grader.autograde import autograde  # noqa: E402
from grader.limits import Limits  # noqa: E402
from tests.grader import coursegen as cg  # noqa: E402


def nbgrader(root: Path, *args: str) -> float:
    started = time.perf_counter()
    done = cg.nbgrader_cli(root, *args, timeout=3600)
    if done.returncode != 0:
        raise SystemExit(f"nbgrader {args[0]} failed: {done.stderr[-2000:]}")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--submissions", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--ours-only", action="store_true", help="skip stock nbgrader autograde")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        cg.write_source(root)
        cg.write_config(root)
        nbgrader(root, "generate_assignment", cg.ASSIGNMENT, "--force")
        students = cg.write_mixed_submissions(root, args.submissions)
        print(f"{len(students)} submissions of {len(cg.NOTEBOOKS)} notebooks each", flush=True)

        if not args.ours_only:
            stock = nbgrader(root, "autograde", cg.ASSIGNMENT, "--force")
            print(f"stock nbgrader autograde: {stock:8.1f} s", flush=True)
        started = time.perf_counter()
        ours = autograde(root, cg.ASSIGNMENT, workers=args.workers, limits=Limits())
        mine = time.perf_counter() - started
        print(f"ours ({args.workers} workers):      {mine:8.1f} s", flush=True)
        if args.ours_only:
            print(f"{mine / len(students) * 1000:.1f} ms per submission", flush=True)
            return

        compared, mismatched = 0, 0
        for student, name, grade in cg.stock_grades(root, students):
            got = ours[student].notebooks[name][grade.name]
            compared += 1
            mismatched += (got.points, got.max_points) != (grade.auto_score, grade.max_score)
    ratio = stock / mine
    print(
        f"throughput ratio: {ratio:.1f}x nbgrader (goal >= 50x); per-cell scores: "
        f"{compared - mismatched}/{compared} identical {'OK' if not mismatched else 'MISMATCH'}"
    )


if __name__ == "__main__":
    main()
