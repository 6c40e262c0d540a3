"""Lab environments: one container per network vs one container per validator vs local processes,
and one container per network claimed from the pool of pre-started chains (``docker-pooled``).

For a 4-validator TBFT chain, in the same run: time for ``ensure`` from nothing (create + start +
every validator answering), for a second ``ensure`` (already running), ``stop``, ``ensure`` after
stop, and the memory (PSS, summed over every process of the environment) once running. Figures are
printed beside the process backend measured in the same run (the anchor): these machines are
shared, so absolute times drift and ratios do not.

    .venv/bin/python bench/sandbox_topologies.py [--engine unix:///path/podman.sock] [--rounds 1]
        [--backends process,docker-network,docker-validator,docker-pooled]

Needs a Docker-API engine (``deploy/podman-engine.sh setup && deploy/podman-engine.sh service``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.measuring import pss_mib  # noqa: E402
from labs.sandbox import LabSpec, SandboxManager  # noqa: E402


def per_learner_pss(manager: SandboxManager, pids_of, extra_pids, learners: int) -> float:
    """PSS of every process of ``learners`` running chains (plus shared helpers) / learners."""
    spec = LabSpec.simple("bench", validators=4)
    envs = [manager.ensure(f"many{i}", spec) for i in range(learners)]
    time.sleep(2)
    pids = [p for e in envs for p in pids_of(e.env_id)] + extra_pids()
    value = pss_mib(pids) / learners
    for i in range(learners):
        manager.destroy(f"many{i}", "bench")
    return value


def measure(manager: SandboxManager, pids_of, learner: str) -> dict[str, float]:
    spec = LabSpec.simple("bench", validators=4)
    out = {}
    t = time.perf_counter()
    env = manager.ensure(learner, spec)
    out["ensure_cold_s"] = time.perf_counter() - t
    t = time.perf_counter()
    manager.ensure(learner, spec)
    out["ensure_running_s"] = time.perf_counter() - t
    time.sleep(2)
    out["pss_mib"] = pss_mib(pids_of(env.env_id))
    t = time.perf_counter()
    manager.stop(learner)
    out["stop_s"] = time.perf_counter() - t
    t = time.perf_counter()
    manager.ensure(learner, spec)
    out["ensure_after_stop_s"] = time.perf_counter() - t
    manager.destroy(learner, "bench")
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", default=f"unix://{ROOT / '.state' / 'engine' / 'podman.sock'}")
    parser.add_argument("--image", default="localhost/chainacademy-node:latest")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument(
        "--learners", type=int, default=4, help="chains running at once for the per-learner PSS"
    )
    parser.add_argument(
        "--backends",
        default="process,docker-network,docker-validator,docker-pooled",
        help="comma-separated; process (the anchor) is always measured",
    )
    args = parser.parse_args()
    names = ["process", *(n for n in args.backends.split(",") if n and n != "process")]
    results: dict[str, list[dict[str, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            backend = "process" if name == "process" else "docker"
            m = SandboxManager(state_dir=f"{tmp}/{name}", backend_class=backend)
            if backend == "docker":
                m.backend.base_url = args.engine
                m.backend.image = args.image
                m.backend.topology = "validator" if name == "docker-validator" else "network"
                m.backend.pool_size = 1 if name == "docker-pooled" else 0
                pids_of = m.backend.container_pids
                extra = list
            else:
                pids_of = m.backend.pids
                extra = m.backend.zygote_pids
            for r in range(args.rounds):
                m.warm(block=True)  # the pool (when kept) is full before a learner arrives
                row = measure(m, pids_of, f"bench{r}")
                if name != "docker-pooled":  # the same containers as docker-network
                    row["pss_per_learner_mib"] = per_learner_pss(m, pids_of, extra, args.learners)
                results.setdefault(name, []).append(row)
            if backend == "docker":
                for learner in [
                    *(f"bench{r}" for r in range(args.rounds)),
                    *(f"many{i}" for i in range(args.learners)),
                ]:
                    m.backend.remove_network(learner)
            m.close(drain=True)
    summary = {
        name: {k: statistics.median(r[k] for r in rows) for k in rows[0]}
        for name, rows in results.items()
    }
    anchor = summary["process"]
    print(f"{'':18}" + "".join(f"{k:>22}" for k in anchor))
    for name, row in summary.items():
        cells = "".join(
            f"{row[k]:>12.2f} ({row[k] / anchor[k]:4.2f}x)" if anchor[k] else f"{row[k]:>22.2f}"
            for k in anchor
            if k in row
        )
        print(f"{name:18}{cells}")
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
