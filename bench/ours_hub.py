"""The platform's own hub for bench/time_to_lab.py: ``academy up``'s JupyterHub with a per-learner
4-validator chain from labs.sandbox (process backend), and a warm pool of chains filled before the
clock starts (the issue allows pre-started servers and chains). With ``isolate`` (the default, as
``academy up`` runs) each learner's server runs in its jail (academy.hub.jail); without, it runs
as the hub's user: the two side by side give the jail's cost."""

from __future__ import annotations

import os
from pathlib import Path

from bench.measuring import children_running, learner_tree, pss_mib, server_pids
from labs.minichain.jsonrpc import call
from labs.minichain.ports import free_port
from labs.sandbox import SandboxManager
from labs.sandbox.process import ProcessBackend

LAB = '[lab]\nid = "time-to-lab"\n\n[chain]\nvalidators = 4\nconsensus = "tbft"\n'


class OursHub:
    def __init__(self, state: Path, learners: int, isolate: bool = True) -> None:
        from academy.db import make_engine
        from academy.hub.launcher import start_hub
        from academy.services.seed import seed_demo
        from academy.settings import Settings

        lab = state / "lab" / "lab.toml"
        lab.parent.mkdir(parents=True)
        lab.write_text(LAB)
        (state / "courses").mkdir()
        self.settings = Settings(
            state_dir=state / "state",
            courses_dir=state / "courses",
            seed_demo=True,
            hub_port=free_port(),
            hub_api_port=free_port(),
            hub_proxy_api_port=free_port(),
            port=free_port(),
            hub_lab=lab,
            hub_chain_rpc_urls="",
            hub_isolate=isolate,
        )
        # the hub's spawner builds its own SandboxManager on STATE/sandbox: give it the same pool
        os.environ["ACADEMY_SANDBOX_POOL_SIZE"] = str(learners)
        self.sandbox = SandboxManager(state_dir=str((state / "state" / "sandbox").resolve()))
        self.sandbox.warm(block=True)  # pre-started chains, before the clock starts
        self.idle_chain_mib = self._idle_chain_mib()  # the pool's chains are all idle now
        # hold the pool's fill lock while measuring: refills would compete with the logins for CPU
        import fcntl

        self._lock = open(state / "state" / "sandbox" / "chains" / "_pool" / "fill.lock", "w")  # noqa: SIM115
        fcntl.flock(self._lock, fcntl.LOCK_EX)
        self.run = start_hub(self.settings)
        seed_demo(self.settings, make_engine(self.settings), learners=100)
        self.url = self.run.url

    def learner(self, i: int) -> tuple[str, str]:
        n = i + 1 if i < 1000 else i - 1000 + 51
        return f"learner{n}", f"learner{n}-demo"

    def chain_answers(self, user: str) -> bool:
        env = self.sandbox.status(user, "time-to-lab")
        if env.status != "running" or len(env.rpc_urls) != 4:
            return False
        return all(call(url, "eth_blockNumber", timeout=5.0, pooled=False) for url in env.rpc_urls)

    def learner_pids(self, user: str) -> list[int]:
        home = Path(self.settings.state_dir).resolve() / "hub" / "users" / user
        env = self.sandbox.status(user, "time-to-lab")
        parents = children_running(self.run.proc.pid, "academy.hub.forkserver")
        pids = learner_tree(server_pids(self.run.proc.pid, home), parents)
        return pids + self._process_backend().pids(env.env_id)

    def _idle_chain_mib(self) -> float:
        """PSS of one unclaimed pool chain (the pages the pool's chains share with each other and
        the zygote are divided among all of them)."""
        slots = sorted((self.sandbox.backend.state_path / "_pool").glob("slot-*/ready"))
        self._pool_count = len(slots)
        if not slots:
            return 0.0
        return pss_mib(self._process_backend().pids(f"_pool/{slots[0].parent.name}"))

    def pooled_mib(self) -> dict[str, float]:
        """PSS of what is kept warm for learners to come: the server parent, the chain zygote, the
        pool chains nobody claimed (and one pool chain as it idled before the logins)."""
        parents = children_running(self.run.proc.pid, "academy.hub.forkserver")
        backend = self._process_backend()
        chains = []
        slots = backend.state_path / "_pool"
        unclaimed = [s for s in slots.glob("slot-*") if (s / "ready").exists()]
        for slot in unclaimed:
            chains.extend(backend.pids(f"_pool/{slot.name}"))
        return {
            f"one idle pool chain, before the logins (of {self._pool_count})": self.idle_chain_mib,
            "server parent (1)": pss_mib(parents),
            "chain zygote (1)": pss_mib(backend.zygote_pids()),
            f"unclaimed pool chains ({len(unclaimed)})": pss_mib(chains),
        }

    def _process_backend(self) -> ProcessBackend:
        """The sandbox's backend: the process one, whose chains' pids this benchmark measures."""
        backend = self.sandbox.backend
        assert isinstance(backend, ProcessBackend), "the benchmark measures the process backend"
        return backend

    def stop(self) -> None:
        self._lock.close()
        self.run.stop()
        for env in self.sandbox.list():
            self.sandbox.stop(env.learner)
        self.sandbox.close(drain=True)
        os.environ.pop("ACADEMY_SANDBOX_POOL_SIZE", None)
