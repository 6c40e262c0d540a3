"""Operate lab environments from a shell or a JupyterHub service.

::

    python -m labs.sandbox [--config FILE] list [--learner NAME]
    python -m labs.sandbox [--config FILE] ensure LEARNER LAB_TOML
    python -m labs.sandbox [--config FILE] stop LEARNER [--lab LAB_ID]
    python -m labs.sandbox [--config FILE] cull --idle-for SECONDS [--every SECONDS]

``--config`` is a traitlets config file (``c.SandboxManager.backend_class = "docker"``, ...), the
same one the hub loads. ``cull --every`` runs forever: that is how the production hub runs it as a
service beside jupyterhub-idle-culler (which stops idle servers; this stops their idle chains),
and between rounds it keeps the backend's pool of pre-started chains full.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from traitlets.config import Config
from traitlets.config.loader import PyFileConfigLoader

from .backend import BackendError
from .manager import SandboxManager
from .spec import LabSpec, SpecError


def load_config(path: str | None) -> Config:
    if not path:
        return Config()
    p = Path(path).resolve()
    return PyFileConfigLoader(p.name, str(p.parent)).load_config()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m labs.sandbox", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--config", help="traitlets config file")
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("list")
    s.add_argument("--learner")
    s = sub.add_parser("ensure")
    s.add_argument("learner")
    s.add_argument("lab_toml", type=Path)
    s = sub.add_parser("stop")
    s.add_argument("learner")
    s.add_argument("--lab")
    s = sub.add_parser("cull")
    s.add_argument("--idle-for", type=float, required=True, help="seconds without activity")
    s.add_argument("--every", type=float, default=0.0, help="repeat every N seconds (0: once)")
    args = parser.parse_args(argv)
    manager = SandboxManager(config=load_config(args.config))
    try:
        if args.command == "list":
            rows = [e.to_json() for e in manager.list(args.learner)]
            for row in rows:
                row.pop("accounts", None)
                row["contracts"] = sorted(row["contracts"])
            print(json.dumps(rows, indent=1))
        elif args.command == "ensure":
            print(
                json.dumps(manager.ensure(args.learner, LabSpec.from_toml(args.lab_toml)).to_json())
            )
        elif args.command == "stop":
            print(json.dumps([e.env_id for e in manager.stop(args.learner, args.lab)]))
        elif args.command == "cull":
            while True:
                culled = manager.cull(args.idle_for)
                print(
                    json.dumps({"t": round(time.time()), "culled": [e.env_id for e in culled]}),
                    flush=True,
                )
                if args.every <= 0:
                    break
                # running as a service: also keep the pool of pre-started chains full (a claim
                # refills it at once; this covers a refill that failed, and the first fill)
                manager.warm(block=True)
                time.sleep(args.every)
    except (SpecError, BackendError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        manager.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
