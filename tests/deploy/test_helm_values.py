"""The Zero to JupyterHub values: parse, and the chain sidecar's command is one the node accepts."""

from __future__ import annotations

from pathlib import Path

import pytest
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


def test_hub_config_reaches_academy_inside_the_cluster(monkeypatch: pytest.MonkeyPatch) -> None:
    """Learner pods may reach nothing outside the cluster, so their academy is the in-cluster
    address; the authenticator's and the server token's settings are real traits."""
    from types import SimpleNamespace

    from academy.hub.authenticator import AcademyAuthenticator
    from jupyterhub.spawner import Spawner
    from traitlets.config import Config

    hub = yaml.safe_load((HELM / "jupyterhub-values.yaml").read_text())["hub"]
    auth = hub["config"]["AcademyAuthenticator"]
    assert set(auth) <= set(AcademyAuthenticator.class_traits(config=True))
    assert auth["academy_url"].startswith("http://academy.academy.svc:8000/")
    scopes = hub["config"]["KubeSpawner"]["server_token_scopes"]
    assert "server_token_scopes" in Spawner.class_traits(config=True)
    assert "access:services!service=academy" in scopes
    monkeypatch.setenv("ACADEMY_PUBLIC_URL", "https://academy.example.edu")
    c = Config()
    exec(hub["extraConfig"]["academy-lab-env"], {"c": c})  # as z2jh runs extraConfig
    spawner = SimpleNamespace(environment={}, api_token="t")
    c.KubeSpawner.pre_spawn_hook(spawner)
    assert spawner.environment["ACADEMY_URL"] == auth["academy_url"]
    assert spawner.environment["ACADEMY_RPC_URL"] == "http://127.0.0.1:8545"
