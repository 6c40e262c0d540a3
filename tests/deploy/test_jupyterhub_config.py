"""The production deploy/jupyterhub_config.py loads, and every value it sets is a real trait.

traitlets only warns about a misspelt option and JupyterHub then silently runs without it: here a
typo, a wrong type or a class that does not exist fails the test instead.
"""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path
from types import SimpleNamespace

import pytest
from academy.hub.authenticator import AcademyAuthenticator
from dockerspawner import DockerSpawner
from jupyterhub.app import JupyterHub
from jupyterhub.auth import Authenticator
from jupyterhub.proxy import ConfigurableHTTPProxy
from jupyterhub.spawner import Spawner
from traitlets import TraitError, Type
from traitlets.config.loader import PyFileConfigLoader

from labs.sandbox import SandboxManager
from labs.sandbox.docker_backend import DockerBackend

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


@pytest.fixture()
def loaded(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setenv("ACADEMY_PUBLIC_URL", "https://academy.example.edu")
    monkeypatch.setenv("ACADEMY_SANDBOX_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("ACADEMY_IDLE_TIMEOUT", "1800")
    monkeypatch.setenv("ACADEMY_NODE_IMAGE", "registry.example.edu/node:7")
    if importlib.util.find_spec("academy.hub") is None:  # the hub integration is not installed
        monkeypatch.setenv("ACADEMY_AUTHENTICATOR", "jupyterhub.auth.PAMAuthenticator")
    loader = PyFileConfigLoader("jupyterhub_config.py", str(DEPLOY))
    return loader.load_config()


def _check_section(section: str, values: dict, cls: type) -> None:
    traits = cls.class_traits(config=True)
    for name, value in values.items():
        assert name in traits, f"{section}.{name} is not a configurable trait of {cls.__name__}"
        trait = traits[name]
        if isinstance(trait, Type) and isinstance(value, str) and value.startswith("academy."):
            # academy's own classes: resolved by JupyterHub at start (checked in tests/platform)
            module = value.rsplit(".", 1)[0]
            if importlib.util.find_spec("academy.hub") is None:
                continue
            importlib.import_module(module)
        try:
            trait.validate(cls(), value) if section == "SandboxManager" else None
        except TraitError as exc:  # pragma: no cover - the assertion message is the point
            raise AssertionError(f"{section}.{name} = {value!r}: {exc}") from None


def test_every_option_is_a_real_trait(loaded) -> None:
    sections = {
        "JupyterHub": JupyterHub,
        "ConfigurableHTTPProxy": ConfigurableHTTPProxy,
        "Authenticator": Authenticator,
        "DockerSpawner": DockerSpawner,
        "Spawner": Spawner,
        "SandboxManager": SandboxManager,
        "DockerBackend": DockerBackend,
        "AcademyAuthenticator": AcademyAuthenticator,
    }
    assert set(loaded) <= set(sections), f"unknown sections: {set(loaded) - set(sections)}"
    for section, values in loaded.items():
        _check_section(section, dict(values), sections[section])


def test_values_validate_on_the_real_classes(loaded) -> None:
    spawner = loaded.JupyterHub.spawner_class
    assert issubclass(spawner, DockerSpawner)
    # instantiate the spawner class with the loaded config: traitlets validates every value
    user = SimpleNamespace(name="ada", escaped_name="ada", url="/user/ada/", id=1)
    obj = spawner(config=loaded, user=user)
    assert obj.use_internal_ip is True and obj.remove is True
    assert obj.extra_host_config["cap_drop"] == ["ALL"]
    assert obj.mem_limit == 2**30
    # the server's token reaches academy (labs.client, Fetch/Submit inside the learner's server)
    assert "access:services!service=academy" in obj.server_token_scopes
    assert loaded.AcademyAuthenticator.academy_url == "http://academy:8000/services/academy"
    assert callable(obj.pre_spawn_hook) and callable(obj.post_stop_hook)
    hub = JupyterHub(config=loaded)
    assert hub.hub_connect_url == "http://hub:8081"
    names = [s["name"] for s in hub.services]
    assert names == ["academy", "idle-culler", "lab-culler"]
    culler = next(s for s in hub.services if s["name"] == "idle-culler")
    assert "--timeout=1800" in culler["command"]
    roles = {r["name"]: r for r in hub.load_roles}
    assert "delete:servers" in roles["idle-culler"]["scopes"]


def test_lab_culler_gets_a_docker_sandbox_from_the_same_file(loaded, tmp_path: Path) -> None:
    manager = SandboxManager(config=loaded)
    assert isinstance(manager.backend, DockerBackend)
    assert manager.backend.topology == "network" and manager.backend.pids_limit == 128
    assert manager.state_dir == str(tmp_path)
    assert manager.explorer_url_template.startswith("https://academy.example.edu/services/academy")


def test_lab_culler_builds_the_same_sandbox_manager_as_the_hub(loaded) -> None:
    """A hub-managed service inherits none of the hub's environment: the lab-culler is handed the
    sandbox variables, or it would start pool chains from the default image on default networks."""
    (culler,) = [s for s in loaded.JupyterHub.services if s["name"] == "lab-culler"]
    env = culler["environment"]
    assert env["ACADEMY_NODE_IMAGE"] == "registry.example.edu/node:7"
    assert not any("TOKEN" in k for k in env)  # no secrets it does not need


def test_learners_servers_are_on_subdomains_and_academy_on_the_hubs_host(loaded) -> None:
    """subdomain_host comes from the public URL; each user gets a host of their own, the
    academy service stays on the hub's (its pages and its OAuth callback), and the proxy, which
    runs in its own container, routes by host."""
    import yaml

    hub = JupyterHub(config=loaded)
    assert hub.subdomain_host == "https://academy.example.edu"
    hook = hub.subdomain_hook
    assert hook("ada", "academy.example.edu", "user") == "ada.academy.example.edu"
    assert hook("academy", "academy.example.edu", "service") == "academy.example.edu"
    (academy,) = [s for s in hub.services if s["name"] == "academy"]
    assert academy["oauth_redirect_uri"] == "/services/academy/oauth_callback"
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    assert "--host-routing" in compose["services"]["proxy"]["command"]


@pytest.mark.parametrize("url", ["http://127.0.0.1:8000", "https://10.0.0.5", "http://[::1]:80"])
def test_a_public_url_without_a_host_name_is_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, url: str
) -> None:
    """An address has no subdomains: the hub refuses to start rather than serve learners' servers
    on academy's origin."""
    monkeypatch.setenv("ACADEMY_PUBLIC_URL", url)
    monkeypatch.setenv("ACADEMY_SANDBOX_STATE_DIR", str(tmp_path))
    with pytest.raises(ValueError, match="wildcard DNS"):
        PyFileConfigLoader("jupyterhub_config.py", str(DEPLOY)).load_config()
