"""The Zero to JupyterHub values: parse, and the chain sidecar's command is one the node accepts."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from traitlets.config import Config

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


def _hub_config(values: dict) -> Config:
    """The hub's traitlets config as the chart's own jupyterhub_config.py builds it from the
    values: ``hub.services`` and ``hub.loadRoles`` as lists, each ``hub.config`` section, then
    every ``hub.extraConfig`` entry in key order, run with ``c`` in its namespace."""
    hub = values["hub"]
    c = Config()
    c.JupyterHub.services = [
        {"name": key, **service, "api_token": "chart-generated"}
        for key, service in hub.get("services", {}).items()
    ]
    c.JupyterHub.load_roles = [{"name": k, **r} for k, r in hub.get("loadRoles", {}).items()]
    for section, cfg in hub["config"].items():
        c[section].update(cfg)
    for _key, source in sorted(hub.get("extraConfig", {}).items()):
        exec(source, {"c": c})
    return c


def test_learners_servers_are_on_subdomains_and_academy_on_the_hubs_host() -> None:
    """As in the compose deployment: learner NAME's server at NAME.<public host>, an origin of
    its own, academy (a service) on the public host, where its OAuth callback is registered."""
    from jupyterhub.app import JupyterHub

    values = yaml.safe_load((HELM / "jupyterhub-values.yaml").read_text())
    # the chart adds the proxy's --host-routing only when this key is set in the values
    # (templates/proxy/deployment.yaml): set in extraConfig alone, the proxy would not route
    assert values["hub"]["config"]["JupyterHub"]["subdomain_host"] == "https://academy.example.edu"
    hub = JupyterHub(config=_hub_config(values))
    assert hub.subdomain_host == "https://academy.example.edu"
    assert hub.subdomain_hook("ada", "academy.example.edu", "user") == "ada.academy.example.edu"
    assert hub.subdomain_hook("academy", "academy.example.edu", "service") == (
        "academy.example.edu"
    )
    (academy,) = [s for s in hub.services if s["name"] == "academy"]
    assert academy["oauth_redirect_uri"] == "/services/academy/oauth_callback"
    assert academy["url"] == "http://academy.academy.svc:8000"


@pytest.mark.parametrize("host", [None, "", "https://10.0.0.5", "http://[::1]:80"])
def test_a_subdomain_host_without_a_host_name_stops_the_hub(host: str | None) -> None:
    """Left out, emptied by a --set, or an address (which has no subdomains): the hub's config
    fails with what to set, rather than serve learners' servers on academy's origin."""
    values = yaml.safe_load((HELM / "jupyterhub-values.yaml").read_text())
    if host is None:
        del values["hub"]["config"]["JupyterHub"]["subdomain_host"]
    else:
        values["hub"]["config"]["JupyterHub"]["subdomain_host"] = host
    with pytest.raises(ValueError, match=r"subdomain_host=.*wildcard DNS"):
        _hub_config(values)
