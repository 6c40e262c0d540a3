"""The sandbox manager: one call gives a learner their running chain for a lab.

It sits above a pluggable :class:`~labs.sandbox.backend.Backend` and keeps what is about learners,
not about engines: a small record per environment (who, which lab, when last active), preloading the
lab's contracts exactly once, and culling the idle ones. Records are JSON files under
``state_dir/envs/``, written atomically and guarded by a per-environment lock file, so a hub that
spawns twenty learners at once and a culler running beside it never corrupt each other.
"""

from __future__ import annotations

import builtins
import contextlib
import fcntl
import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from traitlets import Instance, Type, Unicode, default
from traitlets.config import LoggingConfigurable

from .backend import Backend
from .env import LabEnv, Status, env_id
from .spec import LabSpec, SpecError

BACKENDS = {
    "process": "labs.sandbox.process.ProcessBackend",
    "docker": "labs.sandbox.docker_backend.DockerBackend",
}


class BackendType(Type):
    """A backend class, by import string or by its short name (``process``, ``docker``)."""

    def validate(self, obj: Any, value: Any) -> Any:
        if isinstance(value, str) and value in BACKENDS:
            value = BACKENDS[value]
        return super().validate(obj, value)


class SandboxManager(LoggingConfigurable):
    """``ensure / status / stop / list / cull`` over one backend (see the package docstring)."""

    backend_class = BackendType(
        default_value="labs.sandbox.process.ProcessBackend",
        klass=Backend,
        help="The backend: 'process', 'docker' or an import string of a Backend subclass.",
    ).tag(config=True)

    state_dir = Unicode(
        ".state/sandbox", help="Folder for environment records (and the process backend's chains)."
    ).tag(config=True)

    explorer_url_template = Unicode(
        "",
        help="Explorer URL of an environment, formatted with env_id, learner and lab_id "
        "(e.g. '/services/academy/explorer/{env_id}'); empty: no explorer link.",
    ).tag(config=True)

    backend = Instance(Backend)

    @default("backend")
    def _default_backend(self) -> Backend:
        return self.backend_class(parent=self, state_dir=str(Path(self.state_dir) / "chains"))

    # -- records ----------------------------------------------------------------------------------
    @property
    def _records(self) -> Path:
        path = Path(self.state_dir) / "envs"
        path.mkdir(parents=True, exist_ok=True)
        return path

    @contextlib.contextmanager
    def _locked(self, eid: str) -> Iterator[None]:
        with open(self._records / f"{eid}.lock", "w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            yield

    def _load(self, eid: str) -> dict[str, Any] | None:
        try:
            return json.loads((self._records / f"{eid}.json").read_text())
        except (OSError, ValueError):
            return None

    def _save(self, record: dict[str, Any]) -> None:
        path = self._records / f"{record['env_id']}.json"
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(record))
        os.replace(tmp, path)

    def _env(self, record: dict[str, Any], running: bool | None = None) -> LabEnv:
        eid = record["env_id"]
        if running is None:
            running = self.backend.is_running(eid)
        status: Status = (
            "running" if running else ("stopped" if self.backend.exists(eid) else "missing")
        )
        explorer = None
        if self.explorer_url_template:
            explorer = self.explorer_url_template.format(
                env_id=eid, learner=record["learner"], lab_id=record["lab_id"]
            )
        return LabEnv(
            env_id=eid,
            learner=record["learner"],
            lab_id=record["lab_id"],
            backend=self.backend.name,
            status=status,
            rpc_urls=record.get("rpc_urls", []) if running else [],
            explorer_url=explorer,
            network=self.backend.network_name(record["learner"]),
            accounts=record.get("accounts", []),
            contracts=record.get("contracts", {}),
            last_activity=record.get("last_activity", 0.0),
            sdk_config=self.backend.sdk_config(eid) if running else None,
        )

    # -- the API ----------------------------------------------------------------------------------
    def ensure(self, learner: str, lab_spec: LabSpec) -> LabEnv:
        """The learner's running chain for this lab: created, started and preloaded as needed.

        Idempotent and cheap when it already runs; counts as activity.
        """
        if lab_spec.chain is None:
            raise SpecError(f"lab {lab_spec.id} has no [chain] table: it needs no environment")
        eid = env_id(learner, lab_spec.id)
        with self._locked(eid):
            record = self._load(eid) or {
                "env_id": eid,
                "learner": learner,
                "lab_id": lab_spec.id,
                "created": time.time(),
            }
            urls = self.backend.start(eid, learner, lab_spec)
            record["rpc_urls"] = urls
            items = self._preload_items(lab_spec)
            if items and set(record.get("contracts", {})) != {it["name"] for it in items}:
                record["contracts"] = self.backend.preload(eid, items)
            if not record.get("accounts"):
                record["accounts"] = self.backend.info(eid)["accounts"]
            record["last_activity"] = time.time()
            self._save(record)
            return self._env(record, running=True)

    def status(self, learner: str, lab_id: str) -> LabEnv:
        """The environment as it is now (status ``missing`` when it was never created)."""
        eid = env_id(learner, lab_id)
        record = self._load(eid)
        if record is None:
            return LabEnv(eid, learner, lab_id, self.backend.name, "missing")
        return self._env(record)

    def touch(self, learner: str, lab_id: str | None = None) -> None:
        """Record activity (the hub calls this on a learner's activity reports)."""
        for record in self._all(learner):
            if lab_id is None or record["lab_id"] == lab_id:
                with self._locked(record["env_id"]):
                    fresh = self._load(record["env_id"]) or record
                    fresh["last_activity"] = time.time()
                    self._save(fresh)

    def stop(self, learner: str, lab_id: str | None = None) -> list[LabEnv]:
        """Stop the learner's environment for ``lab_id`` (all of theirs when None); state is kept."""
        stopped = []
        for record in self._all(learner):
            if lab_id is not None and record["lab_id"] != lab_id:
                continue
            with self._locked(record["env_id"]):
                if self.backend.stop(record["env_id"]):
                    stopped.append(self._env(record, running=False))
        return stopped

    def destroy(self, learner: str, lab_id: str) -> None:
        """Delete the environment and its chain state (the learner starts over)."""
        eid = env_id(learner, lab_id)
        with self._locked(eid):
            self.backend.destroy(eid)
            with contextlib.suppress(FileNotFoundError):
                (self._records / f"{eid}.json").unlink()

    # Below this method ``list`` in the class body names it, so annotations say builtins.list.
    def list(self, learner: str | None = None) -> list[LabEnv]:
        """Every known environment (of one learner when given), running or not."""
        return [self._env(r) for r in self._all(learner)]

    def cull(self, idle_for: float) -> builtins.list[LabEnv]:
        """Stop running environments with no activity for ``idle_for`` seconds; returns them.

        Activity is what callers report: ``ensure`` and ``touch`` (the hub forwards a learner's
        server activity). Block height is no signal: consensus engines may commit empty blocks.
        """
        now = time.time()
        culled = []
        for record in self._all():
            eid = record["env_id"]
            if not self.backend.is_running(eid):
                continue
            with self._locked(eid):
                record = self._load(eid) or record
                if now - record.get("last_activity", 0.0) >= idle_for and self.backend.stop(eid):
                    culled.append(self._env(record, running=False))
        return culled

    # -- helpers ----------------------------------------------------------------------------------
    def _all(self, learner: str | None = None) -> builtins.list[dict[str, Any]]:
        out = []
        for path in sorted(self._records.glob("*.json")):
            record = self._load(path.stem)
            if record and (learner is None or record["learner"] == learner):
                out.append(record)
        return out

    def _preload_items(self, spec: LabSpec) -> builtins.list[dict[str, Any]]:
        """Compile the lab's preload contracts here (once, cached) and encode their constructors."""
        if spec.chain is None or not spec.chain.preload:
            return []
        from eth_abi import encode

        from labs.minichain.contracts import ContractError, compile_file

        items = []
        for p in spec.chain.preload:
            try:
                compiled = compile_file(spec.folder / p.contract, contract=p.name)
            except ContractError as exc:
                raise SpecError(f"lab {spec.id}: preload {p.contract}: {exc}") from None
            ctor = next((e for e in compiled.abi if e.get("type") == "constructor"), None)
            types = [i["type"] for i in ctor["inputs"]] if ctor else []
            if len(types) != len(p.args):
                raise SpecError(
                    f"lab {spec.id}: {p.name} takes {len(types)} constructor args, "
                    f"the lab gives {len(p.args)}: fix preload.args"
                )
            data = compiled.bytecode + (encode(types, p.args).hex() if types else "")
            items.append({"name": p.name, "data": data, "abi": compiled.abi})
        return items

    def warm(self, block: bool = False) -> None:
        """Fill the backend's pool of pre-started chains (in the background unless ``block``)."""
        if block:
            self.backend.fill_pool()
        else:
            threading.Thread(
                target=self.backend.fill_pool, name="sandbox-pool", daemon=True
            ).start()

    def close(self, drain: bool = False) -> None:
        """Release the backend (and stop its unclaimed pool chains when ``drain``)."""
        if drain:
            self.backend.drain_pool()
        self.backend.close()
