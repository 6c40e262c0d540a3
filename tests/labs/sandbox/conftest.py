"""A real Docker-API engine for the sandbox tests: podman's API service, set up by the project.

``deploy/podman-engine.sh setup`` installs and configures podman and builds the images (cached:
about a second once done); the service is started here on the project's socket and stopped at the
end of the session unless it was already running (then it belongs to someone else).
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from labs.minichain.waiting import wait_until
from labs.sandbox.docker_backend import DockerBackend

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = ROOT / "deploy" / "podman-engine.sh"
RUN_LABEL = "org.chainacademy.test-run"


def _answers(sock: Path) -> bool:
    try:
        transport = httpx.HTTPTransport(uds=str(sock))
        with httpx.Client(transport=transport, timeout=2) as client:
            return client.get("http://d/_ping").status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture(scope="session")
def engine() -> Iterator[dict[str, str]]:
    """``{"base_url", "image", "run"}`` of a running engine with the node image built."""
    state = Path(os.environ.get("ACADEMY_STATE_DIR", ROOT / ".state")).resolve()
    setup = subprocess.run(
        ["bash", str(SCRIPT), "setup"], capture_output=True, text=True, timeout=1200
    )
    assert setup.returncode == 0, f"podman-engine.sh setup failed: {setup.stderr[-2000:]}"
    image = setup.stdout.strip().splitlines()[-1]
    engine_dir = state / "engine"
    sock = engine_dir / "podman.sock"
    service = None
    if not _answers(sock):
        sock.unlink(missing_ok=True)
        env = dict(os.environ, CONTAINERS_CONF=str(engine_dir / "containers.conf"))
        log = open(engine_dir / "service.log", "ab")  # noqa: SIM115 - closed below
        service = subprocess.Popen(
            ["podman", "system", "service", "--time=0", f"unix://{sock}"],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )

        def up() -> bool:
            if _answers(sock):
                return True
            assert service.poll() is None, (engine_dir / "service.log").read_text()[-2000:]
            return False

        wait_until(up, 30, message="podman service did not answer in 30 s")
    # like Docker Engine's root:docker 0660: a platform container given the socket's group
    # (group_add, as the hub in deploy/compose.yaml) may drive the engine
    sock.chmod(0o660)
    run = uuid.uuid4().hex[:8]
    yield {"base_url": f"unix://{sock}", "image": image, "run": run}
    import docker

    client = docker.DockerClient(base_url=f"unix://{sock}")
    flt = {"label": [f"{RUN_LABEL}={run}"]}
    for ct in client.containers.list(all=True, filters=flt):
        DockerBackend._remove(ct)  # retries podman's "device busy"
    for vol in client.volumes.list(filters=flt):
        vol.remove(force=True)
    for net in client.networks.list(filters=flt):
        net.remove()
    client.close()
    if service is not None:
        service.terminate()
        try:
            service.wait(10)
        except subprocess.TimeoutExpired:
            service.kill()
            service.wait()
        log.close()
