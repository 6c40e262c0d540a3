"""The container backend: a learner's validators in containers, through the docker SDK.

Runs unchanged against Docker Engine and against podman's Docker-compatible API service
(``deploy/podman-engine.sh``); only ``base_url`` differs. What every learner gets:

- an internal network of their own (``ca-net-<learner>``, ``internal=True``: no gateway, no route
  out). Their chains and their single-user server join it, nothing else does, so nothing of another
  learner and nothing outside answers from inside it;
- per lab, a volume (``ca-<env_id>``) holding the chain's state at ``/data``, so a stopped or even
  removed environment restarts with its contracts and balances;
- containers that run as a non-root user, with a read-only root filesystem, every capability
  dropped, ``no-new-privileges``, and CPU, memory (no swap beyond it) and pids limits.

Two topologies (``topology``), both measured (``docs/scaling.md``):

- ``network`` (default): one container runs the whole network; the validators are processes forked
  after the imports, so they share those pages. RPC URLs: ``http://ca-<env_id>:8545`` + i.
- ``validator``: one container per validator (``ca-<env_id>-v<i>``), peers reach each other by
  container name on the learner's network; a one-off init container creates the chain first.

A pool (``pool_size``, network topology only) keeps chains of the pool's shape started ahead,
paused, on a network of their own (``ca-net-pool``). A learner's first ``ensure`` of a lab of that
shape claims one: it leaves the pool network, joins the learner's, and resumes, in well under a
second instead of a cold start. Container and volume names and labels cannot change, so a claim
is a file (``claims/<env_id>.json`` in ``state_dir``, under a lock shared by every process that
uses the folder) naming the container and volume the environment now owns, and a mark
(``claims/containers/<name>``) that takes the container out of the pool.

Containers are never created with ``remove=True`` (unreliable on podman 4.3): stop keeps them,
``destroy`` removes them explicitly.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import threading
import time
from pathlib import Path
from typing import Any

from traitlets import Bool, Dict, Enum, Float, Int, Unicode

from labs.minichain.waiting import wait_until

from . import launcher
from .backend import Backend, BackendError
from .env import learner_slug
from .spec import LabSpec

LABEL = "org.chainacademy.sandbox"
UID = "10001:10001"


class DockerBackend(Backend):
    """Chains in containers (see the module docstring)."""

    name = "docker"

    base_url = Unicode(
        "",
        help="Engine URL (unix:///var/run/docker.sock, unix:///.../podman.sock); "
        "empty: DOCKER_HOST or the SDK's default.",
    ).tag(config=True)
    image = Unicode("localhost/chainacademy-node:latest", help="The node image.").tag(config=True)
    topology = Enum(
        ["network", "validator"],
        "network",
        help="One container for the whole network, or one container per validator.",
    ).tag(config=True)
    mem_limit = Unicode("512m", help="Memory limit of one container (swap included).").tag(
        config=True
    )
    cpus = Float(1.0, help="CPUs one container may use.").tag(config=True)
    pids_limit = Int(128, help="Processes and threads one container may hold.").tag(config=True)
    tmpfs_size = Unicode("16m", help="Size of the writable /tmp.").tag(config=True)
    start_timeout = Float(90.0, help="Seconds to wait for every validator to answer.").tag(
        config=True
    )
    network_prefix = Unicode("ca-net-", help="Prefix of the per-learner network names.").tag(
        config=True
    )
    extra_labels = Dict(help="Labels added to everything this backend creates.").tag(config=True)
    internal = Bool(True, help="Learner networks have no route out (keep True in production).").tag(
        config=True
    )

    _client: Any = None

    # -- engine ----------------------------------------------------------------------------------
    @property
    def client(self) -> Any:
        if self._client is None:
            import docker

            if self.base_url:
                self._client = docker.DockerClient(base_url=self.base_url, timeout=120)
            else:
                self._client = docker.from_env(timeout=120)
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def _labels(self, **more: str) -> dict[str, str]:
        return {LABEL: "1", **self.extra_labels, **more}

    # -- names -----------------------------------------------------------------------------------
    def network_name(self, learner: str) -> str:
        return self.network_prefix + learner_slug(learner)

    def _names(self, env_id: str, validators: int) -> list[str]:
        if self.topology == "network":
            return [self._claim_of(env_id).get("container", f"ca-{env_id}")]
        return [f"ca-{env_id}-v{i}" for i in range(validators)]

    def _volume_name(self, env_id: str) -> str:
        return self._claim_of(env_id).get("volume", f"ca-{env_id}")

    def _containers(self, env_id: str) -> list[Any]:
        import docker.errors

        found = self.client.containers.list(all=True, filters={"label": [f"{LABEL}.env={env_id}"]})
        claimed = self._claim_of(env_id).get("container")
        if claimed and claimed not in {ct.name for ct in found}:
            with contextlib.suppress(docker.errors.NotFound):
                found.append(self.client.containers.get(claimed))
        return found

    # -- lifecycle -------------------------------------------------------------------------------
    def _ensure_network(self, learner: str) -> Any:
        import docker.errors

        name = self.network_name(learner)
        with contextlib.suppress(docker.errors.NotFound):
            return self.client.networks.get(name)
        try:
            return self.client.networks.create(
                name,
                driver="bridge",
                internal=self.internal,
                labels=self._labels(**{f"{LABEL}.learner": learner_slug(learner)}),
            )
        except docker.errors.APIError:  # created meanwhile by a concurrent ensure
            return self.client.networks.get(name)

    def _ensure_volume(self, env_id: str) -> str:
        import docker.errors

        name = self._volume_name(env_id)
        try:
            self.client.volumes.get(name)
        except docker.errors.NotFound:
            self.client.volumes.create(name, labels=self._labels(**{f"{LABEL}.env": env_id}))
        return name

    def _run_kwargs(
        self, env_id: str, learner: str, volume: str, network: str, validators: int
    ) -> dict[str, Any]:
        return {
            "image": self.image,
            "detach": True,
            "init": True,
            "user": UID,
            "read_only": True,
            "tmpfs": {"/tmp": f"rw,nosuid,nodev,noexec,size={self.tmpfs_size}"},
            "cap_drop": ["ALL"],
            "security_opt": ["no-new-privileges"],
            "mem_limit": self.mem_limit,
            "memswap_limit": self.mem_limit,
            "nano_cpus": int(self.cpus * 1e9),
            "pids_limit": self.pids_limit,
            "volumes": {volume: {"bind": "/data", "mode": "rw"}},
            "network": network,
            "labels": self._labels(
                **{
                    f"{LABEL}.env": env_id,
                    f"{LABEL}.learner": learner_slug(learner),
                    f"{LABEL}.validators": str(validators),
                }
            ),
        }

    def start(self, env_id: str, learner: str, spec: LabSpec) -> list[str]:
        import docker.errors

        if spec.chain is None:
            raise BackendError(f"lab {spec.id} has no [chain] table: it needs no environment")
        c = spec.chain
        network = self._ensure_network(learner).name
        if (
            self.topology == "network"
            and not self.exists(env_id)
            and self._claim(env_id, network, spec)
        ):
            return self._urls(env_id, c.validators)
        volume = self._ensure_volume(env_id)
        names = self._names(env_id, c.validators)
        existing = {ct.name: ct for ct in self._containers(env_id)}
        chain_args = ["--validators", str(c.validators), "--consensus", c.consensus]
        chain_args += ["--identity", c.identity]
        for name, value in sorted(c.params.items()):
            chain_args += ["--param", f"{name}={json.dumps(value)}"]
        kwargs = self._run_kwargs(env_id, learner, volume, network, c.validators)
        if self.topology == "validator":
            # The validators share one volume, so they must share one uid mapping: podman's
            # per-container user namespaces (userns=auto) would make each one's files unreadable
            # to the others. Docker Engine has no per-container namespaces; "host" is its default.
            kwargs["userns_mode"] = "host"
        if self.topology == "validator" and not all(n in existing for n in names):
            self._run_once(env_id, ["init", *chain_args], {**kwargs, "name": f"ca-{env_id}-init"})
        marks: dict[str, int] = {}
        for i, name in enumerate(names):
            ct = existing.get(name)
            if ct is not None and ct.status == "running":
                continue
            if self.topology == "network":
                command = ["network", *chain_args]
            else:
                command = ["validator", "--index", str(i), "--peer-host-format"]
                command.append(f"ca-{env_id}-v{{i}}")
            marks[name] = self._ready_marks(ct)
            try:
                if ct is None:
                    self.client.containers.run(command=command, name=name, **kwargs)
                else:
                    ct.start()
            except docker.errors.APIError as exc:
                raise BackendError(
                    f"{env_id}: the engine refused {name}: {exc.explanation}"
                ) from None
        self._wait_ready(env_id, marks)
        return self._urls(env_id, c.validators)

    def _urls(self, env_id: str, validators: int) -> list[str]:
        names = self._names(env_id, validators)
        if self.topology == "network":
            return [f"http://{names[0]}:{launcher.RPC_PORT + i}" for i in range(validators)]
        return [f"http://{n}:{launcher.RPC_PORT + i}" for i, n in enumerate(names)]

    def _ready_text(self) -> bytes:
        return b'{"ready": true}' if self.topology == "network" else b"up: rpc"

    def _ready_marks(self, ct: Any) -> int:
        if ct is None:
            return 0
        with contextlib.suppress(Exception):
            return ct.logs().count(self._ready_text())
        return 0

    def _wait_ready(self, env_id: str, marks: dict[str, int]) -> None:
        """Wait until each (re)started container logs its ready line once more than before."""
        pending = dict(marks)

        def all_ready() -> bool:
            for name, before in list(pending.items()):
                ct = self.client.containers.get(name)
                if ct.status not in ("running", "created"):
                    tail = ct.logs(tail=5).decode(errors="replace").strip().replace("\n", " | ")
                    raise BackendError(f"{name} stopped while starting ({ct.status}): {tail}")
                if ct.logs().count(self._ready_text()) > before:
                    del pending[name]
            return not pending

        try:
            wait_until(all_ready, self.start_timeout)
        except TimeoutError:
            raise BackendError(
                f"{env_id}: {sorted(pending)} not ready after {self.start_timeout:.0f} s"
            ) from None

    def _run_once(self, env_id: str, command: list[str], kwargs: dict[str, Any]) -> str:
        """Run a one-off container to completion: detach, wait, read logs, remove (with retries)."""
        import docker.errors

        with contextlib.suppress(docker.errors.NotFound):
            self.client.containers.get(kwargs["name"]).remove(force=True)
        ct = self.client.containers.run(command=command, **kwargs)
        try:
            result = ct.wait(timeout=self.start_timeout)
            out = ct.logs(stdout=True, stderr=True).decode(errors="replace")
        finally:
            self._remove(ct)
        if result.get("StatusCode") != 0:
            raise BackendError(f"{env_id}: {' '.join(command[:1])} failed: {out.strip()[-300:]}")
        return out

    @staticmethod
    def _remove(ct: Any) -> None:
        import docker.errors

        for attempt in range(5):
            try:
                ct.remove(force=True, v=True)
                return
            except docker.errors.NotFound:
                return
            except docker.errors.APIError:
                time.sleep(0.2 * (attempt + 1))

    def _exec(self, env_id: str, args: list[str]) -> Any:
        """Run a launcher subcommand inside the environment (the first validator's container).

        The manager may run where it has no route to learner networks (that is the point of
        them), so it reaches a chain through the engine's exec, never over the network.
        """
        running = [ct for ct in self._containers(env_id) if ct.status == "running"]
        if not running:
            raise BackendError(f"{env_id} is not running: call ensure first")
        ct = sorted(running, key=lambda c: c.name)[0]
        validators = int(ct.labels.get(f"{LABEL}.validators", "1"))
        urls = ",".join(self._inner_urls(env_id, validators))
        code, output = ct.exec_run(
            ["python3", "-m", "labs.sandbox.launcher", args[0], "--urls", urls, *args[1:]],
            user=UID,
            demux=True,
        )
        stdout, stderr = output
        if code != 0:
            text = (stderr or stdout or b"").decode(errors="replace").strip().splitlines()
            raise BackendError(f"{env_id}: {text[-1] if text else f'exit {code}'}")
        return json.loads(stdout)

    def _inner_urls(self, env_id: str, validators: int) -> list[str]:
        """RPC URLs as seen from inside the first container (loopback for the network topology)."""
        if self.topology == "network":
            return [f"http://127.0.0.1:{launcher.RPC_PORT + i}" for i in range(validators)]
        return self._urls(env_id, validators)

    def info(self, env_id: str) -> dict[str, Any]:
        return self._exec(env_id, ["info"])

    def preload(self, env_id: str, items: list[dict[str, Any]]) -> dict[str, Any]:
        payload = launcher.encode_payload(items)
        if len(payload) > 120_000:
            raise BackendError(
                f"{env_id}: the preload contracts are {len(payload)} bytes compressed, over "
                "120 kB: preload fewer or smaller contracts"
            )
        return self._exec(env_id, ["preload", payload])

    def exists(self, env_id: str) -> bool:
        import docker.errors

        try:
            self.client.volumes.get(self._volume_name(env_id))
            return True
        except docker.errors.NotFound:
            return False

    def is_running(self, env_id: str) -> bool:
        cts = self._containers(env_id)
        return bool(cts) and all(ct.status == "running" for ct in cts)

    def stop(self, env_id: str) -> bool:
        running = [ct for ct in self._containers(env_id) if ct.status == "running"]
        for ct in running:
            ct.stop(timeout=5)
        return bool(running)

    def destroy(self, env_id: str) -> None:
        import docker.errors

        for ct in self._containers(env_id):
            self._remove(ct)
        with contextlib.suppress(docker.errors.NotFound):
            self.client.volumes.get(self._volume_name(env_id)).remove(force=True)
        claimed = self._claim_of(env_id).get("container")
        if claimed:
            self._claimed_mark(claimed).unlink(missing_ok=True)
        self._claim_path(env_id).unlink(missing_ok=True)

    # -- the pool of pre-started chains ----------------------------------------------------------
    _draining = False

    def _claim_path(self, env_id: str) -> Path:
        return self.state_path / "claims" / f"{env_id}.json"

    def _claim_of(self, env_id: str) -> dict[str, str]:
        try:
            return json.loads(self._claim_path(env_id).read_text())
        except (OSError, ValueError):
            return {}

    @contextlib.contextmanager
    def _pool_lock(self) -> Any:
        """One claimer or filler at a time across every process using this state folder (the
        hub and academy share it)."""
        self.state_path.mkdir(parents=True, exist_ok=True)
        with open(self.state_path / "pool.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def _pool_network(self) -> str:
        import docker.errors

        name = self.network_prefix + "pool"
        with contextlib.suppress(docker.errors.NotFound):
            return self.client.networks.get(name).name
        with contextlib.suppress(docker.errors.APIError):  # created meanwhile
            self.client.networks.create(
                name, driver="bridge", internal=self.internal, labels=self._labels()
            )
        return name

    def _claimed_mark(self, container: str) -> Path:
        return self.state_path / "claims" / "containers" / container

    def _pool_chains(self) -> list[Any]:
        """This pool's unclaimed containers (a pool is its network's: another deployment on the
        same engine keeps its own; a claimed one is marked in the claims folder)."""
        flt = {"label": [f"{LABEL}.pool={self.network_prefix}pool"]}
        cts = self.client.containers.list(all=True, filters=flt)
        return [ct for ct in cts if not self._claimed_mark(ct.name).exists()]

    def _claim(self, env_id: str, network: str, spec: LabSpec) -> bool:
        """Hand a paused pool chain to this environment; refill the pool in the background."""
        import docker.errors

        if not self._pool_fits(spec):
            return False
        claimed = False
        with self._pool_lock():
            for ct in sorted(self._pool_chains(), key=lambda c: c.name):
                if ct.status != "paused":  # still starting, or broken
                    continue
                try:
                    ct.unpause()
                    self.client.networks.get(network).connect(ct)
                    self.client.networks.get(self._pool_network()).disconnect(ct)
                except docker.errors.APIError as exc:
                    self.log.warning("pool chain %s could not be claimed: %s", ct.name, exc)
                    self._remove(ct)
                    continue
                volume = _data_volume(ct)
                mark = self._claimed_mark(ct.name)
                mark.parent.mkdir(parents=True, exist_ok=True)
                mark.write_text(env_id)
                self._claim_path(env_id).write_text(
                    json.dumps({"container": ct.name, "volume": volume})
                )
                claimed = True
                break
        threading.Thread(target=self.fill_pool, name="sandbox-pool", daemon=True).start()
        return claimed

    def fill_pool(self) -> int:
        """Start pool chains until ``pool_size`` wait paused; returns how many were started."""
        if self.pool_size <= 0 or self.topology != "network":
            return 0
        spec = LabSpec.simple("pool", self.pool_validators, self.pool_consensus)
        assert spec.chain is not None
        c = spec.chain
        started = 0
        while not self._draining:
            with self._pool_lock():
                if len(self._pool_chains()) >= self.pool_size:
                    return started
                name = f"ca-pool-{time.time_ns():x}"
                pool = {f"{LABEL}.pool": self.network_prefix + "pool"}
                self.client.volumes.create(name, labels=self._labels(**pool))
                kwargs = self._run_kwargs(name, "pool", name, self._pool_network(), c.validators)
                kwargs["labels"] = self._labels(
                    **pool, **{f"{LABEL}.validators": str(c.validators)}
                )
                command = ["network", "--validators", str(c.validators)]
                command += ["--consensus", c.consensus, "--identity", c.identity]
                self.client.containers.run(command=command, name=name, **kwargs)
            try:
                self._wait_ready(name, {name: 0})
                # paused until claimed: memory but no CPU (the validators would keep voting)
                self.client.containers.get(name).pause()
                started += 1
            except Exception as exc:  # noqa: BLE001 - a broken pool chain must not stop the filler
                self.log.warning("pool chain %s failed to start: %s", name, exc)
                with contextlib.suppress(Exception):
                    self._remove(self.client.containers.get(name))
                return started
        return started

    def drain_pool(self) -> None:
        """Remove every unclaimed pool chain and its volume."""
        import docker.errors

        self._draining = True
        with self._pool_lock():
            for ct in self._pool_chains():
                volume = _data_volume(ct)
                self._remove(ct)
                if volume:
                    with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
                        self.client.volumes.get(volume).remove(force=True)
            with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
                self.client.networks.get(self.network_prefix + "pool").remove()

    def remove_network(self, learner: str) -> None:
        """Remove a learner's network once nothing is attached to it."""
        import docker.errors

        with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
            self.client.networks.get(self.network_name(learner)).remove()

    def container_pids(self, env_id: str) -> list[int]:
        """Host pids of every process of this environment (for memory measurements; needs the
        engine on this host)."""
        pids: list[int] = []
        for ct in self._containers(env_id):
            if ct.status != "running":
                continue
            todo = [int(ct.attrs["State"]["Pid"])]
            while todo:
                pid = todo.pop()
                pids.append(pid)
                with contextlib.suppress(OSError):
                    for task in Path(f"/proc/{pid}/task").iterdir():
                        todo.extend(int(k) for k in (task / "children").read_text().split())
        return pids


def _data_volume(ct: Any) -> str | None:
    """The named volume a chain container keeps its state in (mounted at /data)."""
    for mount in ct.attrs.get("Mounts") or []:
        if mount.get("Destination") == "/data":
            return mount.get("Name")
    return None
