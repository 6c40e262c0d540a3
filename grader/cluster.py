"""Run autograde jobs on a Dask distributed cluster (``academy grade autograde --scheduler``).

Why Dask: it already does what a grading cluster needs: workers join and leave, a worker that
dies has its unfinished tasks run again on another worker (the scheduler notices the lost
connection), and a client gets each task's result exactly once. Each worker grades with the very
same :func:`grader.jobs.run_job` as the local pool, so each worker process keeps its own
warm sandbox zygote; jobs travel as data (:class:`grader.jobs.Job`), so workers need the
repository's environment but not the course folder.

Exactly once, also when workers die: every job is submitted under a unique key; a result is
accepted for a student only once (a re-run after a worker death can never count twice); a job
whose workers keep dying (Dask's ``KilledWorker`` after ``distributed.scheduler.allowed-failures``
deaths) is submitted again under a new key up to ``RESUBMITS`` times, and only then recorded as
ungraded, every cell 0 with the reason, so no submission is ever silently lost.

Workers run learner code in the sandbox, which needs root (namespaces, chroot, setuid): start
them as root, e.g. ``dask worker tcp://HOST:PORT --nthreads 2 --preload grader.autograde``
(threads grade in parallel; one zygote per worker process; the preload imports the grader before
the first job, so the worker's event loop never stalls on it).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from itertools import islice

from .jobs import Job, SubmissionResult, run_job, ungraded

RESUBMITS = 2
"""Fresh submissions of a job whose workers kept dying, before it is recorded as ungraded."""
IN_FLIGHT_PER_THREAD = 4
"""Jobs queued per worker thread: enough to keep workers busy, bounded for a million jobs."""


class ClusterError(RuntimeError):
    """The Dask scheduler could not be reached or has no workers."""


def check_scheduler(address: str, timeout: float = 5.0) -> None:
    """Fail fast, in one line, when nothing listens at ``tcp://HOST:PORT``."""
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(address)
    try:
        host, port = parts.hostname, parts.port
    except ValueError:
        host = port = None
    if parts.scheme not in ("tcp", "tls") or not host or not port:
        raise ClusterError(f"the scheduler address must look like tcp://HOST:PORT, got {address!r}")
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ClusterError(
            f"cannot reach the Dask scheduler at {address} ({reason}): check the address and "
            "that `dask scheduler` runs there"
        ) from None


def autograde_on_cluster(
    scheduler: str,
    jobs: Iterable[Job],
    on_done: Callable[[SubmissionResult], None] | None = None,
    *,
    connect_timeout: float = 10.0,
) -> dict[str, SubmissionResult]:
    """Grade ``jobs`` on the Dask cluster at ``scheduler``; ``{student: result}``."""
    from distributed import Client, as_completed
    from distributed.client import FutureCancelledError

    check_scheduler(scheduler, connect_timeout)
    try:
        client = Client(scheduler, timeout=f"{connect_timeout}s", set_as_default=False)
    except (OSError, TimeoutError) as exc:
        raise ClusterError(
            f"cannot reach the Dask scheduler at {scheduler} ({type(exc).__name__}): check the "
            "address and that `dask scheduler` runs there"
        ) from None
    results: dict[str, SubmissionResult] = {}
    try:
        threads = sum(client.nthreads().values())
        if threads == 0:
            client.wait_for_workers(1, timeout=connect_timeout * 3)
            threads = sum(client.nthreads().values())
        window = max(8, threads * IN_FLIGHT_PER_THREAD)
        source = iter(jobs)
        running = as_completed()
        pending: dict[str, tuple[Job, int]] = {}
        run_id = uuid.uuid4().hex[:12]

        def submit(job: Job, attempt: int) -> None:
            key = f"grade-{job.assignment}-{job.student}-{run_id}-{attempt}"
            future = client.submit(run_job, job, key=key, pure=False)
            pending[key] = (job, attempt)  # future.key is this key
            running.add(future)

        for job in islice(source, window):
            submit(job, 0)
        for future in running:
            job, attempt = pending.pop(future.key)
            try:
                result = future.result()
            except (Exception, FutureCancelledError) as exc:  # noqa: BLE001 - KilledWorker & co
                if attempt < RESUBMITS:
                    submit(job, attempt + 1)
                    continue
                why = f"not graded: the cluster failed on it {attempt + 1} times ({type(exc).__name__})"
                result = ungraded(job, why)
            future.release()
            if result.student not in results:  # exactly once per student
                results[result.student] = result
                if on_done is not None:
                    on_done(result)
            following = next(source, None)
            if following is not None:
                submit(following, 0)
    finally:
        client.close()
    return results
