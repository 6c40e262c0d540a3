"""500 simulated learners against the whole platform on loopback: log in at the hub, sign in to
academy (HubOAuth), list and fetch their assignment, submit a notebook, poll until it is graded.

It starts its own platform (JupyterHub + configurable-http-proxy + academy with its grading pool,
PostgreSQL by default) on free ports, adds the learners to the demo cohort, and lets them arrive at
a steady rate. It prints, per step, the error count and p50 / p99 latency, beside the hub's own API
root (``GET /hub/api``) polled through the same proxy during the same run: the anchor.
Goal: zero errors and p99 under 1 s for every step. Bounded: it stops by itself after --deadline.

    .venv/bin/python bench/load_platform.py [--learners 500] [--rate 2] [--db postgresql|sqlite]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from academy.hub.launcher import HubRun, start_hub  # noqa: E402

from bench.measuring import command_line, pct, process_cpu_seconds, process_tree  # noqa: E402
from tests.e2e.hubharness import PgDatabase, hub_settings  # noqa: E402
from tests.platform.academy.builders import answer, write_course  # noqa: E402

PASSWORD = "bench-learner-pass"
STEPS = ("login", "academy sign-in", "list", "fetch", "submit", "poll")


class Stats:
    def __init__(self) -> None:
        self.times: dict[str, list[float]] = defaultdict(list)
        self.errors: dict[str, int] = defaultdict(int)
        self.examples: dict[str, str] = {}
        self.to_graded: list[float] = []
        self.graded = 0
        self.wall = 0.0
        """Seconds the whole run took."""
        self.cpu: dict[str, float] = {}
        """CPU seconds per process role over the run (measured from outside the run)."""
        self.load: tuple[float, float] = (0.0, 0.0)
        """The 1-minute load average at the start and at the end."""

    def ok(self, step: str, seconds: float) -> None:
        self.times[step].append(seconds)

    def fail(self, step: str, why: str) -> None:
        self.errors[step] += 1
        self.examples.setdefault(step, why[:200])


def add_learners(run: HubRun, n: int) -> list[str]:
    """n learners enrolled in the demo cohort by the platform admin's CSV upload (which also
    creates their hub accounts), all with one password."""
    from academy.db import make_engine, session_scope
    from academy.models import Cohort, User
    from academy.services.identity import issue_token, user_by_name
    from academy.services.security import hash_password
    from academy.services.seed import DEMO_ADMIN
    from sqlmodel import col, select

    engine = make_engine(run.settings)
    names = [f"bench{i:04d}" for i in range(n)]
    with session_scope(engine) as session:
        cohort_id = session.exec(select(Cohort.id)).first()
        _row, token = issue_token(session, user_by_name(session, DEMO_ADMIN[0]), ["enroll"])
    csv = "username,display_name\n" + "".join(f"{m},Bench Learner {m}\n" for m in names)
    reply = httpx.post(
        f"{run.academy_url}/api/cohorts/{cohort_id}/enrollments/csv",
        content=csv,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "text/csv"},
        timeout=600.0,
    )
    if reply.status_code != 200:
        raise SystemExit(f"enrolling the learners failed: {reply.status_code} {reply.text[:300]}")
    digest = hash_password(PASSWORD)  # one scrypt, shared: setting up is not what we measure
    with session_scope(engine) as session:
        for user in session.exec(select(User).where(col(User.username).in_(names))):
            user.password_hash = digest
            session.add(user)
    engine.dispose()
    return names


async def timed(
    stats: Stats, step: str, call: Callable[[], Awaitable[httpx.Response]]
) -> httpx.Response | None:
    t0 = time.perf_counter()
    try:
        reply = await call()
    except httpx.HTTPError as exc:
        stats.fail(step, f"{type(exc).__name__}: {exc}")
        return None
    stats.ok(step, time.perf_counter() - t0)
    return reply


async def learner(run: HubRun, name: str, stats: Stats, poll: float, stop: asyncio.Event) -> None:
    base = run.settings.base_path
    # the proxy (node) closes a connection idle for 5 s; reusing one it is closing gives
    # "server disconnected" races a browser would silently retry, so keep idle ones shorter
    limits = httpx.Limits(max_connections=4, keepalive_expiry=2.0)
    async with httpx.AsyncClient(base_url=run.url, timeout=60.0, limits=limits) as http:
        # 1. the hub's login form (GET for the XSRF field, POST the password)
        async def login() -> httpx.Response:
            form = await http.get("/hub/login")
            xsrf = re.search(r'name="_xsrf"\s+value="([^"]+)"', form.text)
            return await http.post(
                "/hub/login",
                params={"next": f"{base}/login?next={base}/api/me"},
                data={
                    "username": name,
                    "password": PASSWORD,
                    "_xsrf": xsrf.group(1) if xsrf else "",
                },
            )

        reply = await timed(stats, "login", login)
        if reply is None or reply.status_code != 302:
            return stats.fail("login", f"{reply and reply.status_code}") if reply else None
        # 2. academy's HubOAuth sign-in: academy -> hub authorize -> academy callback -> /api/me
        location = reply.headers["location"]
        reply = await timed(
            stats,
            "academy sign-in",
            lambda: http.get(location, follow_redirects=True),
        )
        if reply is None or reply.status_code != 200:
            return (
                stats.fail("academy sign-in", f"{reply and reply.status_code}") if reply else None
            )
        # 3. what the Academy menu lists, then Fetch
        reply = await timed(stats, "list", lambda: http.get(f"{base}/api/assignments"))
        if reply is None or reply.status_code != 200 or not reply.json():
            return stats.fail("list", f"{reply and reply.status_code}") if reply else None
        assignment = reply.json()[0]["id"]
        reply = await timed(
            stats, "fetch", lambda: http.get(f"{base}/api/assignments/{assignment}/release")
        )
        if reply is None or reply.status_code != 200:
            return stats.fail("fetch", f"{reply and reply.status_code}") if reply else None
        import base64

        nb = next(f for f in reply.json()["files"] if f["path"].endswith(".ipynb"))
        notebook = answer(json.loads(base64.b64decode(nb["content_base64"])))
        # 4. Submit, then poll as the Submit button does until graded
        reply = await timed(
            stats,
            "submit",
            lambda: http.post(
                f"{base}/api/assignments/{assignment}/submissions",
                files={"notebook": ("sha.ipynb", notebook, "application/x-ipynb+json")},
            ),
        )
        if reply is None or reply.status_code != 202:
            return (
                stats.fail("submit", f"{reply and reply.status_code} {reply and reply.text[:100]}")
                if reply
                else None
            )
        sid = reply.json()["id"]
        submitted = time.perf_counter()
        etag: dict[str, str] = {}  # the last ETag, sent back so an unchanged state costs a 304
        while not stop.is_set():
            await asyncio.sleep(poll)
            url = f"{base}/api/submissions/{sid}"
            reply = await timed(stats, "poll", functools.partial(http.get, url, headers=etag))
            if reply is None or reply.status_code == 304:
                continue
            if reply.status_code != 200:
                stats.fail("poll", str(reply.status_code))
                continue
            if "etag" in reply.headers:
                etag = {"If-None-Match": reply.headers["etag"]}
            status = reply.json()["status"]
            if status in ("graded", "failed"):
                if status == "graded":
                    stats.graded += 1
                    stats.to_graded.append(time.perf_counter() - submitted)
                else:
                    stats.fail("graded", json.dumps(reply.json())[:200])
                return


async def anchor(run: HubRun, stats: Stats, stop: asyncio.Event) -> None:
    async with httpx.AsyncClient(base_url=run.url, timeout=30.0) as http:
        while not stop.is_set():
            t0 = time.perf_counter()
            try:
                reply = await http.get("/hub/api")
                if reply.status_code == 200:
                    stats.ok("anchor", time.perf_counter() - t0)
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.2)


async def drive(run: HubRun, names: list[str], rate: float, poll: float, deadline: float) -> Stats:
    stats = Stats()
    stop = asyncio.Event()
    anchor_task = asyncio.create_task(anchor(run, stats, stop))
    tasks = []
    started = time.perf_counter()
    for i, name in enumerate(names):
        await asyncio.sleep(max(0.0, started + i / rate - time.perf_counter()))
        tasks.append(asyncio.create_task(learner(run, name, stats, poll, stop)))
    done, pending = await asyncio.wait(
        tasks, timeout=max(1.0, deadline - (time.perf_counter() - started))
    )
    stop.set()
    for task in pending:
        task.cancel()
    for task in done:
        if task.exception():
            stats.fail("crash", repr(task.exception()))
    if pending:
        stats.fail("unfinished", f"{len(pending)} learners still waiting at the deadline")
        stats.errors["unfinished"] = len(pending)
    anchor_task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await anchor_task
    stats.wall = time.perf_counter() - started
    return stats


#: the platform's processes, told apart by their command line
ROLES = (("hub", "jupyterhub"), ("proxy", "configurable-http-proxy"), ("academy", "academy.cli"))


def cpu_seconds(run: HubRun) -> dict[str, float]:
    """CPU time (user + system, with reaped children: academy's grading sandboxes) of the hub,
    the proxy and academy so far. Per learner, it does not depend on what else the host runs."""
    used: dict[str, float] = defaultdict(float)
    for pid in process_tree(run.proc.pid):
        cmd = command_line(pid)
        role = next((name for name, marker in ROLES if marker in cmd), None)
        if role is not None:
            used[role] += process_cpu_seconds(pid)
    return used


def report(stats: Stats, n: int, rate: float) -> int:
    a99 = pct(stats.times["anchor"], 0.99)
    print(f"\n{n} learners arriving at {rate:g}/s; {stats.graded} graded in {stats.wall:.0f} s")
    print(f"{'step':<16}{'ok':>6}{'errors':>8}{'p50 ms':>9}{'p99 ms':>9}{'p99/anchor':>12}")
    for step in (*STEPS, "anchor"):
        t = stats.times[step]
        p50, p99 = pct(t, 0.5) * 1000, pct(t, 0.99) * 1000
        ratio = f"{p99 / (a99 * 1000):.1f}x" if step != "anchor" and t else ""
        label = "anchor /hub/api" if step == "anchor" else step
        print(f"{label:<16}{len(t):>6}{stats.errors[step]:>8}{p50:>9.0f}{p99:>9.0f}{ratio:>12}")
    if stats.to_graded:
        print(
            f"submit -> graded: p50 {statistics.median(stats.to_graded):.1f} s, "
            f"p99 {pct(stats.to_graded, 0.99):.1f} s"
        )
    cpu = stats.cpu
    if cpu:
        print(
            "CPU per learner: "
            + ", ".join(f"{role} {cpu.get(role, 0.0) * 1000 / n:.0f} ms" for role, _ in ROLES)
            + f"   load average {' / '.join(f'{x:.1f}' for x in stats.load)} (start / end)"
        )
    errors = sum(stats.errors.values())
    for step, why in stats.examples.items():
        print(f"  first {step} error: {why}")
    worst = max((pct(stats.times[s], 0.99) for s in STEPS if stats.times[s]), default=float("nan"))
    print(
        f"errors: {errors}   worst step p99: {worst * 1000:.0f} ms   goal: 0 errors, p99 < 1000 ms "
        f"-> {'MET' if errors == 0 and worst < 1.0 else 'NOT MET'}"
    )
    return 0 if errors == 0 else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--learners", type=int, default=500)
    parser.add_argument(
        "--rate", type=float, default=2.0, help="learners arriving per second (logins/s)"
    )
    parser.add_argument("--poll", type=float, default=1.0, help="seconds between grade polls")
    parser.add_argument(
        "--deadline", type=float, default=600.0, help="stop after this many seconds"
    )
    parser.add_argument("--db", choices=("postgresql", "sqlite"), default="postgresql")
    parser.add_argument("--workers", type=int, default=2, help="academy's grading threads")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="load-platform-"))
    write_course(work / "courses")
    db = PgDatabase() if args.db == "postgresql" else contextlib.nullcontext()
    try:
        with db:
            url = db.url if isinstance(db, PgDatabase) else ""
            print(f"starting the platform ({args.db}) ...", flush=True)
            settings = hub_settings(
                work / "state", work / "courses", url, grade_workers=args.workers
            )
            run = start_hub(settings, timeout=300)
            try:
                names = add_learners(run, args.learners)
                print(f"{len(names)} learners enrolled; go", flush=True)
                before, load = cpu_seconds(run), os.getloadavg()[0]
                stats = asyncio.run(drive(run, names, args.rate, args.poll, args.deadline))
                after = cpu_seconds(run)
                stats.cpu = {k: after[k] - before.get(k, 0.0) for k in after}
                stats.load = (load, os.getloadavg()[0])
            finally:
                run.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return report(stats, args.learners, args.rate)


if __name__ == "__main__":
    sys.exit(main())
