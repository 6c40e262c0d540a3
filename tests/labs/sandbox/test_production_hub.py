"""The production platform on the real engine, end to end: DockerSpawner and compose's services.

It runs the way deploy/compose.yaml runs it, on podman's Docker API: the proxy, the hub and academy
in containers of the academy image (hub and academy drive the engine through its socket). Two
learners, enrolled in academy, log in through the proxy with academy's authenticator, and their
servers start from the learner image, each with its own chain. What could fail, and is checked:
the images not building or not starting; a server not joining its learner's network or joining
another; the hub or the proxy not reaching it, or it not reaching the hub (JupyterHub's OAuth
ends in a call from the server to the hub) or academy; from inside A's server, B's chain or B's
server or the host or the proxy's API answering, or a route out; the chain of another lab not
started on A's network; the lab-culler service not keeping the pool with the deployment's
settings; a server stop leaving its chains running.

The commands (and academy's sandbox settings) are read from deploy/compose.yaml. Differences from
compose, for a shared test machine: the containers' and networks' names carry this run's id
(``ACADEMY_HUB_CONNECT_URL``, ``ACADEMY_PROXY_API_URL``, ``ACADEMY_SANDBOX_NETWORK_PREFIX``),
academy keeps SQLite and grades locally instead of PostgreSQL and Dask, and the proxy runs from
the academy image, which holds configurable-http-proxy (no registry to pull its own from).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import docker
import docker.errors
import httpx
import pytest
import yaml
from academy.hub.origins import learner_origin

from labs.minichain.waiting import wait_until
from labs.sandbox.docker_backend import LABEL, DockerBackend
from labs.sandbox.env import learner_slug
from tests.e2e.hubharness import browser_client

from .conftest import RUN_LABEL, SCRIPT
from .helpers import PROBE, HostServer

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[3]
SPAWN_TIMEOUT = 180.0


@pytest.fixture(scope="module")
def images(engine: dict[str, str]) -> dict[str, str]:
    """The node, learner and academy images, built by the project's own script (cached)."""
    built = subprocess.run(
        ["bash", str(SCRIPT), "images"], capture_output=True, text=True, timeout=1800
    )
    assert built.returncode == 0, f"podman-engine.sh images failed: {built.stderr[-3000:]}"
    tags = built.stdout.strip().splitlines()[-3:]
    return dict(zip(("node", "learner", "academy"), tags, strict=True))


class Platform:
    """Proxy, hub and academy in containers, and what the test needs to drive and inspect them."""

    def __init__(self, engine: dict[str, str], images: dict[str, str]) -> None:
        self.run = engine["run"]
        self.client = docker.DockerClient(base_url=engine["base_url"])
        self.sock = urlparse(engine["base_url"]).path
        self.images = images
        self.labels = {RUN_LABEL: self.run}
        run = self.run
        self.hub_name, self.proxy_name, self.academy_name = (
            f"hub-{run}",
            f"proxy-{run}",
            f"academy-{run}",
        )
        self.learners = [f"ada-{run}", f"bo-{run}"]

    def start(self) -> None:
        images, run = self.images, self.run
        self.network = self.client.networks.create(f"platform-{run}", labels=self.labels)
        volume = {
            name: self.client.volumes.create(f"{name}-{run}", labels=self.labels).name
            for name in ("hub-data", "academy-data", "sandbox-data")
        }
        proxy_token, hub_token = secrets.token_hex(32), secrets.token_hex(32)
        service_token = "aca_" + secrets.token_urlsafe(32)  # as production.env.example says
        services = yaml.safe_load((ROOT / "deploy" / "compose.yaml").read_text())["services"]
        common: dict[str, Any] = {
            "image": images["academy"],
            "network": self.network.name,
            "labels": self.labels,
            "cap_drop": ["ALL"],
            "security_opt": ["no-new-privileges"],
            "detach": True,
        }
        self.proxy = self.client.containers.run(
            name=self.proxy_name,
            command=[
                a.replace("//hub:", f"//{self.hub_name}:").replace("=proxy", f"={self.proxy_name}")
                for a in services["proxy"]["command"]
            ],
            environment={"CONFIGPROXY_AUTH_TOKEN": proxy_token},
            ports={"8000/tcp": ("127.0.0.1", None)},
            **common,
        )
        self.proxy.reload()
        port = self.proxy.attrs["NetworkSettings"]["Ports"]["8000/tcp"][0]["HostPort"]
        # the hub by a host name: learner NAME's server is at NAME.localhost (subdomain_host)
        self.url = f"http://localhost:{port}"
        # what deploy/.env gives every platform service
        shared = {
            "ACADEMY_PUBLIC_URL": self.url,
            "ACADEMY_INTERNAL_URL": f"http://{self.academy_name}:8000",
            "ACADEMY_HUB_API_TOKEN": hub_token,
            "ACADEMY_SERVICE_TOKEN": service_token,
            "ACADEMY_NODE_IMAGE": images["node"],
            "ACADEMY_DOCKER_URL": "unix:///var/run/docker.sock",
            "ACADEMY_CHAIN_MEM_LIMIT": "384m",
            # one pre-started chain (the lab-culler fills it): one learner may claim it, the
            # other starts cold; this run's networks carry its id
            "ACADEMY_SANDBOX_POOL_SIZE": "1",
            "ACADEMY_SANDBOX_NETWORK_PREFIX": f"ca-{run}-",
        }
        engine_access: dict[str, Any] = {
            # as in compose: hub and academy drive the engine through its socket, with its group
            "group_add": [str(os.stat(self.sock).st_gid)],
            "userns_mode": "host",  # the socket's owner must be the host's, not a mapped one
        }
        mounts = {
            str(ROOT / "courses"): {"bind": "/srv/courses", "mode": "ro"},
            str(ROOT / "deploy" / "jupyterhub_config.py"): {
                "bind": "/srv/deploy/jupyterhub_config.py",
                "mode": "ro",
            },
            volume["sandbox-data"]: {"bind": "/srv/sandbox", "mode": "rw"},
            self.sock: {"bind": "/var/run/docker.sock", "mode": "rw"},
        }
        self.hub = self.client.containers.run(
            name=self.hub_name,
            command=services["hub"]["command"],
            environment={
                **shared,
                "CONFIGPROXY_AUTH_TOKEN": proxy_token,
                "ACADEMY_HUB_CONNECT_URL": f"http://{self.hub_name}:8081",
                "ACADEMY_PROXY_API_URL": f"http://{self.proxy_name}:8001",
                "ACADEMY_PLATFORM_CONTAINERS": ",".join(
                    (self.hub_name, self.proxy_name, self.academy_name)
                ),
                "ACADEMY_LEARNER_IMAGE": images["learner"],
                "ACADEMY_LEARNER_MEM_LIMIT": "768m",
            },
            volumes={**mounts, volume["hub-data"]: {"bind": "/srv/jupyterhub", "mode": "rw"}},
            **engine_access,
            **common,
        )
        academy_env = services["academy"]["environment"]
        self.academy = self.client.containers.run(
            name=self.academy_name,
            command=services["academy"]["command"],
            environment={
                **shared,
                # compose's, but SQLite and local grading instead of PostgreSQL and Dask
                **{k: v for k, v in academy_env.items() if k.startswith("ACADEMY_SANDBOX")},
                "ACADEMY_HOST": "0.0.0.0",
                "ACADEMY_PORT": "8000",
                "ACADEMY_HUB_API_URL": f"http://{self.hub_name}:8081/hub/api",
                "ACADEMY_SEED_DEMO": "true",
                "ACADEMY_GRADE_WORKERS": "0",
            },
            volumes={**mounts, volume["academy-data"]: {"bind": "/srv/academy", "mode": "rw"}},
            read_only=services["academy"].get("read_only", False),
            tmpfs={t.split(":")[0]: "size=256m" for t in services["academy"].get("tmpfs", [])},
            **engine_access,
            **common,
        )
        self._wait_up(self.hub, "/hub/health")
        self._wait_up(self.academy, "/services/academy/health")
        self._add_learners()

    def _wait_up(self, ct: Any, path: str) -> None:

        def up() -> bool:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.url + path, timeout=3).status_code == 200:
                    return True
            ct.reload()
            assert ct.status == "running", ct.logs()[-4000:].decode()
            return False

        wait_until(
            up,
            180,
            interval=0.5,
            message=lambda: f"{ct.name} not up: " + ct.logs()[-4000:].decode(),
        )

    def _add_learners(self) -> None:
        """Two learners in every demo cohort (as an institution's CSV enrollment makes them)."""
        script = (
            "import sys\n"
            "from sqlmodel import select\n"
            "from academy.db import make_engine, session_scope\n"
            "from academy.models import Cohort\n"
            "from academy.services.enrollment import enroll\n"
            "from academy.services.identity import ensure_user, set_password\n"
            "from academy.settings import Settings\n"
            "with session_scope(make_engine(Settings())) as session:\n"
            "    for name in sys.argv[1:]:\n"
            "        user, _ = ensure_user(session, name, name)\n"
            "        set_password(session, user, name + '-pw')\n"
            "        for cohort in session.exec(select(Cohort)).all():\n"
            "            enroll(session, None, cohort, user, strict=False)\n"
        )
        out = self.academy.exec_run(["python3", "-c", script, *self.learners])
        assert out.exit_code == 0, out.output.decode()[-3000:]

    def hub_log(self) -> str:
        return "".join(
            f"{ct.name} log:\n" + ct.logs(tail=40).decode(errors="replace")
            for ct in (self.hub, self.academy)
        )

    def servers(self, learner: str) -> list[Any]:
        """The learner's server containers (DockerSpawner escapes the name: find it by its env)."""
        return [
            ct
            for ct in self.client.containers.list(all=True, filters={"name": "jupyter-"})
            if f"JUPYTERHUB_USER={learner}" in ct.attrs["Config"]["Env"]
        ]

    def server(self, learner: str) -> Any:
        (ct,) = self.servers(learner)
        return ct

    def chains(self, learner: str) -> list[Any]:
        """The learner's chain containers: started for them (labelled), or claimed from the pool
        (on their network, which a stopped container keeps in its settings)."""
        network = f"ca-{self.run}-{learner_slug(learner)}"
        found = {}
        for ct in self.client.containers.list(all=True):
            labelled = ct.labels.get(f"{LABEL}.learner") == learner_slug(learner)
            nets = ct.attrs.get("NetworkSettings", {}).get("Networks") or {}
            if labelled or (ct.name.startswith("ca-") and network in nets):
                found[ct.id] = ct
        return list(found.values())

    def close(self) -> None:
        """Remove everything this run made: the platform, and every container on this run's
        networks (learners' servers, their chains, pool chains) with its volume."""
        mine = {
            ct.id: ct
            for ct in self.client.containers.list(
                all=True, filters={"label": f"{RUN_LABEL}={self.run}"}
            )
        }
        nets = [n for n in self.client.networks.list() if self.run in n.name]
        for net in nets:
            net.reload()
            for ct in net.containers:
                mine[ct.id] = ct
        for learner in self.learners:  # a stopped chain is on no network any more
            mine.update({ct.id: ct for ct in self.chains(learner)})
        volumes = set()
        for ct in mine.values():
            volumes.update(m["Name"] for m in ct.attrs.get("Mounts") or [] if m.get("Name"))
            DockerBackend._remove(ct)  # retries podman's "device busy"
        for vol in self.client.volumes.list():
            if vol.name in volumes or self.run in vol.name:
                with contextlib.suppress(docker.errors.APIError):
                    vol.remove(force=True)
        for net in nets:
            with contextlib.suppress(docker.errors.APIError):
                net.remove()
        self.client.close()


@pytest.fixture(scope="module")
def platform(engine: dict[str, str], images: dict[str, str]) -> Iterator[Platform]:
    p = Platform(engine, images)
    try:
        p.start()
        yield p
    finally:
        p.close()


class Browser:
    """One learner's session through the proxy, the way their browser has it (cookies, XSRF)."""

    def __init__(self, platform: Platform, learner: str) -> None:
        self.learner = learner
        self.log = platform.hub_log
        base = platform.url
        self.http = browser_client(base, 60)  # finds ada.localhost, keeps cookies as Chromium
        self.http.get("/hub/login")
        self.xsrf = self.http.cookies.get("_xsrf", path="/hub/")
        r = self.http.post(  # not followed: the redirect would start the server on its own
            "/hub/login",
            data={"username": learner, "password": learner + "-pw", "_xsrf": self.xsrf},
            follow_redirects=False,
        )
        assert r.status_code == 302 and "jupyterhub-session-id" in self.http.cookies, self.log()
        self.xsrf = self.http.cookies.get("_xsrf", path="/hub/")  # a new one for the session

    def api(self, method: str, path: str) -> httpx.Response:
        return self.http.request(method, "/hub/api" + path, headers={"X-XSRFToken": self.xsrf})

    def start_server(self) -> None:
        r = self.api("POST", f"/users/{self.learner}/server")
        assert r.status_code in (201, 202), f"{r.text}\n{self.log()}"

    def wait_ready(self) -> dict[str, Any]:
        model: dict[str, Any] = {}

        def ready() -> dict[str, Any] | None:
            model.clear()
            model.update(self.api("GET", f"/users/{self.learner}").json())
            server = model.get("servers", {}).get("")
            assert server is not None, f"{self.learner}'s spawn failed: {model}\n{self.log()}"
            return server if server.get("ready") else None

        return wait_until(
            ready, SPAWN_TIMEOUT, interval=0.5, message=lambda: f"not ready: {model}\n{self.log()}"
        )


@pytest.fixture(scope="module")
def browsers(platform: Platform) -> dict[str, Browser]:
    """Both learners log in and start their servers at once, as a class does at 9 o'clock."""
    with ThreadPoolExecutor(2) as pool:
        sessions = list(pool.map(lambda name: Browser(platform, name), platform.learners))
        for s in sessions:
            s.start_server()
        list(pool.map(Browser.wait_ready, sessions))
    return {s.learner: s for s in sessions}


def _env(ct: Any) -> dict[str, str]:
    return dict(e.split("=", 1) for e in ct.attrs["Config"]["Env"])


def _ip(ct: Any, network: str) -> str:
    ct.reload()
    return ct.attrs["NetworkSettings"]["Networks"][network]["IPAddress"]


def test_learner_server_runs_the_learner_image_locked_down(
    platform: Platform, browsers: dict[str, Browser]
) -> None:
    ada, bo = platform.learners
    a_srv, b_srv = platform.server(ada), platform.server(bo)
    assert a_srv.image.tags[0] == platform.images["learner"]
    a_nets, b_nets = (
        set(a_srv.attrs["NetworkSettings"]["Networks"]),
        set(b_srv.attrs["NetworkSettings"]["Networks"]),
    )
    assert len(a_nets) == len(b_nets) == 1 and a_nets != b_nets  # its own network, nothing else
    (a_net,) = a_nets
    assert platform.client.networks.get(a_net).attrs["Internal"] is True
    host = a_srv.attrs["HostConfig"]
    assert len(host["CapDrop"] or []) > 10 or host["CapDrop"] == ["ALL"]
    assert any("no-new-privileges" in s for s in host["SecurityOpt"] or [])
    assert host["Memory"] == 768 * 2**20 and host["PidsLimit"] == 512
    assert a_srv.exec_run(["id", "-u"]).output.decode().strip() == "1000"
    env = _env(a_srv)
    assert env["ACADEMY_RPC_URL"] and env["ACADEMY_TOKEN"]
    chain_host = urlparse(env["ACADEMY_RPC_URL"]).hostname
    assert chain_host in {c.name for c in platform.chains(ada)}


def test_lab_culler_keeps_a_pool_chain_ready_like_the_hub_would_start_it(
    platform: Platform, browsers: dict[str, Browser]
) -> None:
    """The lab-culler service (a process the hub starts) fills the pool with the hub's settings:
    the deployment's node image, limits and networks, not the defaults."""
    pool_net = f"ca-{platform.run}-pool"
    paused = wait_until(
        lambda: [
            ct
            for ct in platform.client.containers.list(all=True, filters={"name": "ca-pool-"})
            if pool_net in (ct.attrs["NetworkSettings"]["Networks"] or {}) and ct.status == "paused"
        ],
        120,
        interval=1,
        message=lambda: "no pool chain: " + platform.hub_log(),
    )
    ct = paused[0]
    assert ct.image.tags[0] == platform.images["node"]
    assert ct.attrs["HostConfig"]["Memory"] == 384 * 2**20  # ACADEMY_CHAIN_MEM_LIMIT


def test_learner_reaches_jupyterlab_through_the_proxy(
    platform: Platform, browsers: dict[str, Browser]
) -> None:
    """The browser's way in: proxy → server, then JupyterHub OAuth, whose code the server trades
    for a token by calling the hub from its own network. The server answers on an origin of its
    own (``ada.localhost``), never on the hub's and academy's."""
    ada, bo = platform.learners
    http = browsers[ada].http
    nav = {"Sec-Fetch-Mode": "navigate"}  # a page load, as the browser marks it
    lab = http.get(f"/user/{ada}/lab", headers=nav)
    assert lab.status_code == 200 and lab.url.path == f"/user/{ada}/lab", lab.text[-2000:]
    assert "@chainacademy/jupyterlab-academy" in lab.text  # the academy extension is loaded
    origin = learner_origin(platform.url, ada)
    assert f"{lab.url.scheme}://{lab.url.netloc.decode()}" == origin != platform.url
    xsrf = http.cookies.get("_xsrf", path=f"/user/{ada}/")
    status = http.get(f"{origin}/user/{ada}/api/status", headers={"X-XSRFToken": xsrf})
    assert status.status_code == 200 and "started" in status.json(), status.text
    # B's server, on B's origin, does not let A in (its OAuth asks the hub, which refuses)
    other = http.get(f"{learner_origin(platform.url, bo)}/user/{bo}/lab", headers=nav)
    assert other.status_code == 403, (other.status_code, other.url)
    # nor does the hub's host hand A anything of B's
    other = http.get(f"/user/{bo}/lab", headers=nav)
    assert other.status_code in (403, 404), (other.status_code, other.url)


def test_from_a_learners_server_nothing_of_the_others_or_outside_answers(
    platform: Platform, browsers: dict[str, Browser]
) -> None:
    ada, bo = platform.learners
    a_srv, b_srv = platform.server(ada), platform.server(bo)
    (a_net,) = a_srv.attrs["NetworkSettings"]["Networks"]
    (b_net,) = b_srv.attrs["NetworkSettings"]["Networks"]
    a_chain = urlparse(_env(a_srv)["ACADEMY_RPC_URL"])
    b_chain = urlparse(_env(b_srv)["ACADEMY_RPC_URL"])
    b_chain_ip = _ip(platform.client.containers.get(b_chain.hostname), b_net)
    gw = {
        n: platform.client.networks.get(n).attrs["IPAM"]["Config"][0]["Gateway"]
        for n in (a_net, b_net)
    }
    servers = {n: HostServer(ip) for n, ip in gw.items()}
    targets = [
        (a_chain.hostname, a_chain.port),  # own chain, by the name in ACADEMY_RPC_URL
        (platform.hub_name, 8081),  # the hub: the server's OAuth and activity calls need it
        (platform.proxy_name, 8001),  # the proxy's API (routes): the hub's alone
        (b_chain.hostname, b_chain.port),  # B's chain, by name ...
        (b_chain_ip, b_chain.port),  # ... and by address
        (b_srv.name, 8888),  # B's JupyterLab, by name ...
        (_ip(b_srv, b_net), 8888),  # ... and by address
        (gw[a_net], servers[a_net].port),  # a server on the host, in A's network
        (gw[b_net], servers[b_net].port),  # and in B's
    ]
    try:
        out = a_srv.exec_run(["python3", "-c", PROBE, json.dumps(targets)], user="1000")
    finally:
        for s in servers.values():
            s.close()
    assert out.exit_code == 0, out.output.decode()
    seen = json.loads(out.output)
    assert seen[f"{a_chain.hostname}:{a_chain.port}"] == "open"
    assert seen[f"{platform.hub_name}:8081"] == "open"
    assert seen[f"{platform.proxy_name}:8001"] != "open"
    assert seen[f"{b_chain.hostname}:{b_chain.port}"] == "no-name"
    assert seen[f"{b_chain_ip}:{b_chain.port}"] != "open"
    assert seen[f"{b_srv.name}:8888"] == "no-name"
    assert seen[f"{_ip(b_srv, b_net)}:8888"] != "open"
    assert seen[f"{gw[a_net]}:{servers[a_net].port}"] != "open"
    assert seen[f"{gw[b_net]}:{servers[b_net].port}"] != "open"
    assert seen["default_route"] is False
    assert servers[a_net].accepted == servers[b_net].accepted == 0


LAB_FROM_THE_SERVER = r"""
import json
from academy.client import AcademyClient
from labs import client
labs = sorted({a["course"] + "/" + a["lab"] for a in AcademyClient().assignments()})
client.use_lab("consensus/raft-election")
w3 = client.connect()
env = client.lab_env()
print(json.dumps({"labs": labs, "rpc": env["ACADEMY_RPC_URL"], "block": w3.eth.block_number}))
"""


def test_academy_hands_a_learner_the_chain_of_the_lab_they_open(
    platform: Platform, browsers: dict[str, Browser]
) -> None:
    """From inside A's server, as a notebook does: academy (by ACADEMY_URL and the server's own
    token) lists A's labs and starts A's chain of another lab, on the engine, on A's network; the
    explorer (academy's page, through the proxy) shows it."""
    ada, bo = platform.learners
    a_srv = platform.server(ada)
    (a_net,) = a_srv.attrs["NetworkSettings"]["Networks"]
    before = {c.name for c in platform.chains(ada)}
    out = a_srv.exec_run(["python3", "-c", LAB_FROM_THE_SERVER], user="1000")
    assert out.exit_code == 0, out.output.decode()[-3000:]
    seen = json.loads(out.output.decode().strip().splitlines()[-1])
    assert "consensus/raft-election" in seen["labs"] and "consensus/tbft" in seen["labs"]
    host = urlparse(seen["rpc"]).hostname
    new = {c.name for c in platform.chains(ada)} - before
    assert new == {host}, (new, host)  # a second chain, A's, started for this lab
    chain = platform.client.containers.get(host)
    assert set(chain.attrs["NetworkSettings"]["Networks"]) == {a_net}
    assert seen["block"] >= 0
    env_id = chain.labels[f"{LABEL}.env"]
    page = browsers[ada].http.get(
        f"/services/academy/explorer/{env_id}", headers={"Sec-Fetch-Mode": "navigate"}
    )
    assert page.status_code == 200, page.text[-2000:]
    assert "raft" in page.text.lower()
    theirs = browsers[bo].http.get(
        f"/services/academy/explorer/{env_id}", headers={"Sec-Fetch-Mode": "navigate"}
    )
    assert theirs.status_code == 404  # not B's chain


def test_a_server_stop_stops_its_chain_only(
    platform: Platform, browsers: dict[str, Browser]
) -> None:
    ada, bo = platform.learners
    r = browsers[ada].api("DELETE", f"/users/{ada}/server")
    assert r.status_code in (202, 204), r.text
    wait_until(
        lambda: not browsers[ada].api("GET", f"/users/{ada}").json().get("servers"),
        60,
        interval=0.5,
        message="A's server did not stop",
    )
    assert {c.status for c in platform.chains(ada)} == {"exited"}  # post-stop hook: chain stopped
    assert {c.status for c in platform.chains(bo)} == {"running"}
    assert platform.server(bo).status == "running"
    assert platform.servers(ada) == []  # DockerSpawner.remove: the server is gone
