"""The Zero to JupyterHub values: parse, and the chain sidecar's command is one the node accepts."""

from __future__ import annotations

from pathlib import Path

import yaml

from labs.sandbox import launcher

HELM = Path(__file__).resolve().parents[2] / "deploy" / "helm"


def test_chain_sidecar_runs_the_launcher_locked_down() -> None:
    values = yaml.safe_load((HELM / "jupyterhub-values.yaml").read_text())
    (chain,) = [c for c in values["singleuser"]["extraContainers"] if c["name"] == "chain"]
    args = launcher._parser().parse_args(chain["args"])  # what the node image's entrypoint gets
    assert (args.command, args.validators, args.listen) == ("network", 4, "127.0.0.1")
    ctx = chain["securityContext"]
    assert ctx["readOnlyRootFilesystem"] and ctx["runAsNonRoot"]
    assert ctx["capabilities"]["drop"] == ["ALL"] and ctx["allowPrivilegeEscalation"] is False
    mounts = {m["mountPath"] for m in chain["volumeMounts"]}
    volumes = {v["name"] for v in values["singleuser"]["extraPodConfig"]["volumes"]}
    assert {"/data", "/tmp"} <= mounts and "chain-tmp" in volumes
    assert values["cull"]["enabled"] and values["singleuser"]["networkPolicy"]["enabled"]
    egress = values["singleuser"]["networkPolicy"]["egressAllowRules"]
    assert not egress["nonPrivateIPs"] and not egress["privateIPs"]


def test_dask_values_parse() -> None:
    values = yaml.safe_load((HELM / "dask-values.yaml").read_text())
    assert values["worker"]["replicas"] >= 1
    assert "--nthreads" in values["worker"]["custom_args"]
