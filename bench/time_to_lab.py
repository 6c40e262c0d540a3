"""Time from login to a ready JupyterLab whose own 4-validator chain answers, beside stock JupyterHub.

Both hubs run in the same process run, on loopback, with the real configurable-http-proxy:

- **stock**: JupyterHub with SimpleLocalProcessSpawner and DummyAuthenticator, as its docs set it up
  (the anchor; no chain at all);
- **ours**: ``academy up``'s hub (``academy.hub.launcher.start_hub``): academy's authenticator, the
  academy spawner, and the learner's own chain from ``labs.sandbox`` (process backend, warm pool),
  each learner's server in its jail (``academy.hub.jail``: namespaces, a user of its own, a relay);
- **ours-open**: the same hub with ``ACADEMY_HUB_ISOLATE=false`` (no jail): what the jail costs.

A learner's time is measured from the login POST until ``/user/<name>/lab`` answers 200 through the
proxy and (ours) the learner's chain answers ``eth_blockNumber`` on every validator. Reported: one
learner at a time (p50 over ``--single`` logins) and a burst of ``--burst`` learners at once (p95),
and the memory (PSS) per active learner with one open kernel and (ours) their chain.

    .venv/bin/python bench/time_to_lab.py [--single 5] [--burst 20] [--only stock|ours|ours-open]

Goals (issue 6): p50 <= 2 s, burst-20 p95 <= 15 s, <= 250 MiB per learner.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from academy.hub.origins import LoopbackNames  # noqa: E402

from bench.measuring import pct, process_tree, pss_mib, server_pids  # noqa: E402
from labs.minichain.ports import free_port  # noqa: E402
from labs.minichain.waiting import wait_until  # noqa: E402

PROXY = Path(os.environ.get("CHP", ROOT / "node_modules" / ".bin" / "configurable-http-proxy"))


# -------------------------------------------------------------------------------------------------
# A learner's browser, reduced to what the timing needs
# -------------------------------------------------------------------------------------------------


def login_to_lab(base: str, user: str, password: str, timeout: float = 300.0) -> tuple[float, Any]:
    """Log in, open the hub (which spawns), wait for the learner's JupyterLab; returns seconds.

    As a browser does: the login form's POST lands on the spawn-pending page while the server
    starts; that page listens to the hub's progress event stream and opens the lab on "ready".
    The client returned talks to the learner's server, on whatever origin the hub serves it.
    """
    client = httpx.Client(
        base_url=base, follow_redirects=True, timeout=30.0, transport=LoopbackNames()
    )
    page = client.get("/hub/login")
    xsrf = client.cookies.get("_xsrf") or _hidden_xsrf(page.text)
    t0 = time.perf_counter()
    reply = client.post(
        "/hub/login?next=%2Fhub%2Fspawn",
        data={"username": user, "password": password, "_xsrf": xsrf},
    )
    if reply.status_code >= 400:
        raise RuntimeError(f"login of {user} failed: {reply.status_code} {reply.text[:200]}")
    progress = re.search(r'new EventSource\("([^"]+)"\)', reply.text)
    if progress:
        _wait_ready_event(client, progress.group(1), timeout)
    last: list[httpx.Response] = []

    def lab_open() -> bool:
        last[:] = [client.get(f"/user/{user}/lab")]
        return last[0].status_code == 200 and f"/user/{user}/lab" in str(last[0].url)

    try:
        wait_until(lab_open, t0 + timeout - time.perf_counter())
    except TimeoutError:
        status = last[0].status_code if last else None
        raise RuntimeError(f"{user}: no JupyterLab after {timeout:.0f} s ({status})") from None
    seconds = time.perf_counter() - t0
    lab = last[0].url
    client.base_url = f"{lab.scheme}://{lab.netloc.decode()}"
    return seconds, client


def _wait_ready_event(client: httpx.Client, url: str, timeout: float) -> None:
    """Follow the hub's spawn progress (server-sent events) until it says ready or failed."""
    with client.stream("GET", url.replace("&amp;", "&"), timeout=timeout) as events:
        for line in events.iter_lines():
            if not line.startswith("data:"):
                continue
            event = json.loads(line[5:])
            if event.get("ready") or event.get("failed"):
                return


def _hidden_xsrf(html: str) -> str:
    m = re.search(r'name="_xsrf" value="([^"]+)"', html)
    return m.group(1) if m else ""


def open_kernel(client: httpx.Client, user: str) -> None:
    xsrf = client.cookies.get("_xsrf", path=f"/user/{user}/") or client.cookies.get("_xsrf") or ""
    reply = client.post(
        f"/user/{user}/api/kernels", json={"name": "python3"}, headers={"X-XSRFToken": xsrf}
    )
    reply.raise_for_status()
    time.sleep(3)  # let the kernel finish importing what it imports at start


# -------------------------------------------------------------------------------------------------
# Stock JupyterHub (the anchor)
# -------------------------------------------------------------------------------------------------

STOCK_CONFIG = """
c.JupyterHub.ip = "127.0.0.1"
c.JupyterHub.port = {port}
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = {hub_port}
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{proxy_api}"
c.ConfigurableHTTPProxy.command = ["{proxy}"]
c.JupyterHub.db_url = "sqlite:///{state}/jupyterhub.sqlite"
c.JupyterHub.cookie_secret_file = "{state}/cookie_secret"
c.JupyterHub.pid_file = "{state}/jupyterhub.pid"
c.JupyterHub.authenticator_class = "dummy"
c.DummyAuthenticator.password = "bench-password"
c.Authenticator.allow_all = True
c.JupyterHub.spawner_class = "simple"
c.SimpleLocalProcessSpawner.home_dir_template = "{state}/users/{{username}}"
c.Spawner.default_url = "/lab"
c.Spawner.args = {args}
c.Spawner.cmd = ["{python}", "-m", "jupyterhub.singleuser"]
c.Spawner.start_timeout = 300
c.Spawner.http_timeout = 300
c.JupyterHub.concurrent_spawn_limit = 0
"""


class StockHub:
    def __init__(self, state: Path) -> None:
        self.state = state
        self.port = free_port()
        cfg = state / "jupyterhub_config.py"
        cfg.write_text(
            STOCK_CONFIG.format(
                port=self.port,
                hub_port=free_port(),
                proxy_api=free_port(),
                proxy=PROXY,
                state=state,
                args=json.dumps(["--allow-root"] if os.geteuid() == 0 else []),
                python=sys.executable,
            )
        )
        self.log = open(state / "hub.log", "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "jupyterhub", "-f", str(cfg)],
            cwd=state,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.url = f"http://127.0.0.1:{self.port}"

        def failed() -> RuntimeError:
            return RuntimeError(
                "stock hub did not start: " + (state / "hub.log").read_text()[-800:]
            )

        def answers() -> bool:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.url + "/hub/api", timeout=2).status_code == 200:
                    return True
            if self.proc.poll() is not None:
                raise failed()
            return False

        try:
            wait_until(answers, 180, interval=0.2)
        except TimeoutError:
            raise failed() from None

    def learner(self, i: int) -> tuple[str, str]:
        return f"stock{i}", "bench-password"

    def learner_pids(self, user: str) -> list[int]:
        return server_pids(self.proc.pid, self.state / "users" / user)

    def chain_answers(self, user: str) -> bool:
        return True  # stock JupyterHub gives learners no chain

    def stop(self) -> None:
        import signal

        family = process_tree(self.proc.pid)
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        for pid in family:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.log.close()


# -------------------------------------------------------------------------------------------------
# Running one hub through the protocol
# -------------------------------------------------------------------------------------------------


def run(hub: Any, single: int, burst: int) -> dict[str, Any]:
    singles = []
    for i in range(single):
        user, password = hub.learner(i)
        seconds, _client = login_to_lab(hub.url, user, password)
        if not hub.chain_answers(user):
            raise RuntimeError(f"{user}: JupyterLab answered but the chain did not")
        singles.append(seconds)
    clients: list[Any] = []

    def one(i: int) -> float:
        user, password = hub.learner(1000 + i)
        seconds, client = login_to_lab(hub.url, user, password)
        if not hub.chain_answers(user):
            raise RuntimeError(f"{user}: JupyterLab answered but the chain did not")
        clients.append((user, client))
        return time.perf_counter() and seconds

    with concurrent.futures.ThreadPoolExecutor(burst) as pool:
        bursts = list(pool.map(one, range(burst)))
    # memory per active learner: each burst learner opens one kernel
    for user, client in clients[:5]:
        open_kernel(client, user)
    pss = [pss_mib(hub.learner_pids(user)) for user, _ in clients[:5]]
    for _, client in clients:
        client.close()
    pooled = hub.pooled_mib() if hasattr(hub, "pooled_mib") else {}
    return {
        # what is kept warm for learners not yet logged in: {item: PSS MiB}
        "pooled_idle_mib": {name: round(mib, 1) for name, mib in pooled.items()},
        "single_p50_s": statistics.median(singles),
        "single_all_s": [round(s, 2) for s in singles],
        "burst_p95_s": pct(bursts, 0.95),
        "burst_median_s": statistics.median(bursts),
        "pss_per_learner_mib": statistics.median(pss),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--single", type=int, default=5)
    parser.add_argument("--burst", type=int, default=20)
    parser.add_argument("--only", choices=["stock", "ours", "ours-open"])
    parser.add_argument("--keep", type=Path, help="run in this folder and keep it (hub logs)")
    args = parser.parse_args()
    if not PROXY.exists():
        print(f"no configurable-http-proxy at {PROXY}: run `make setup`", file=sys.stderr)
        return 1
    results: dict[str, Any] = {}
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
    keep = contextlib.nullcontext(str(args.keep.resolve())) if args.keep else None
    with keep or tempfile.TemporaryDirectory() as tmp:
        if args.only in (None, "stock"):
            (Path(tmp) / "stock").mkdir()
            hub = StockHub(Path(tmp) / "stock")
            try:
                results["stock"] = run(hub, args.single, args.burst)
            finally:
                hub.stop()
        from bench.ours_hub import OursHub  # academy's hub with sandbox chains

        for name, isolate in (("ours", True), ("ours-open", False)):
            if args.only not in (None, name):
                continue
            (Path(tmp) / name).mkdir()
            hub = OursHub(Path(tmp) / name, learners=args.single + args.burst, isolate=isolate)
            try:
                results[name] = run(hub, args.single, args.burst)
            finally:
                hub.stop()
    for name, row in results.items():
        print(
            f"{name:9} single p50 {row['single_p50_s']:6.2f} s   burst-{args.burst} p95 "
            f"{row['burst_p95_s']:6.2f} s (median {row['burst_median_s']:.2f})   "
            f"PSS per active learner {row['pss_per_learner_mib']:.0f} MiB"
        )
        for item, mib in row["pooled_idle_mib"].items():
            print(f"{'':9} kept warm, not yet any learner's: {item} {mib:.0f} MiB")
    if "stock" in results and "ours" in results:
        s, o = results["stock"], results["ours"]
        print(
            f"ratio ours/stock: single {o['single_p50_s'] / s['single_p50_s']:.2f}x, burst p95 "
            f"{o['burst_p95_s'] / s['burst_p95_s']:.2f}x, memory "
            f"{o['pss_per_learner_mib'] / s['pss_per_learner_mib']:.2f}x"
        )
    if "ours" in results and "ours-open" in results:
        o, n = results["ours"], results["ours-open"]
        print(
            f"ratio ours/ours-open (the jail's cost): single "
            f"{o['single_p50_s'] / n['single_p50_s']:.2f}x, burst p95 "
            f"{o['burst_p95_s'] / n['burst_p95_s']:.2f}x, memory "
            f"{o['pss_per_learner_mib'] / n['pss_per_learner_mib']:.2f}x"
        )
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
