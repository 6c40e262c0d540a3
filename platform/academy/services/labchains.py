"""Each learner's chain follows the lab they open: one ``labs.sandbox`` environment per learner and
lab, started on first use, reused after, stopped when idle.

A lab notebook asks academy for its chain (``labs.client`` does it from the notebook's folder,
``~/<course>/<lab>/``); academy finds the lab's ``lab.toml`` in what was released to the learner
(or, for those who teach the course, in the course folder) and calls ``SandboxManager.ensure``.
Records live in the same state folder as the chains the hub starts at spawn
(``ACADEMY_SANDBOX_DIR``, default ``STATE_DIR/sandbox``), so the explorer shows both and one idle
cull (:meth:`SandboxManager.cull`) stops both.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sqlmodel import Session, col, select

from ..models import Assignment, Cohort, Course, id_of, to_utc, utcnow
from ..settings import Settings
from .access import Principal
from .courses import assignment_dir, course_labs
from .errors import Conflict, Forbidden, NotFound, Unavailable

if TYPE_CHECKING:
    from labs.sandbox import LabEnv, LabSpec, SandboxManager

log = logging.getLogger("academy.labchains")


def sandbox_dir(settings: Settings) -> Path:
    """Where ``labs.sandbox`` keeps environment records: the hub uses ``STATE_DIR/sandbox``."""
    return Path(settings.sandbox_dir or Path(settings.state_dir) / "sandbox")


def sandbox_manager(settings: Settings) -> SandboxManager:
    """The learners' lab chains as the hub sees them: ``ACADEMY_SANDBOX_CONFIG`` (the traitlets
    file the hub and ``python -m labs.sandbox --config`` load, e.g. the docker backend) when set,
    else the process backend in :func:`sandbox_dir`."""
    from labs.sandbox import SandboxManager
    from labs.sandbox.__main__ import load_config

    config = load_config(str(settings.sandbox_config) if settings.sandbox_config else None)
    mine = config.SandboxManager
    return SandboxManager(
        config=config,
        state_dir=mine.get("state_dir") or str(sandbox_dir(settings)),
        explorer_url_template=mine.get("explorer_url_template")
        or f"{settings.base_path}/explorer/{{env_id}}",
    )


def learner_envs(settings: Settings, learner: str) -> list[LabEnv]:
    """Every lab chain ``labs.sandbox`` recorded for ``learner``, started at spawn or for a lab:
    the explorer and the learner's own pages list the same ones."""
    return sandbox_manager(settings).list(learner)


@dataclass
class LabChain:
    """A learner's environment for one lab; ``env`` is None for a lab that needs no chain."""

    course: str
    spec: LabSpec
    env: LabEnv | None


def lab_toml(
    session: Session, settings: Settings, principal: Principal, course: str, lab: str
) -> Path:
    """The ``lab.toml`` of ``course``/``lab`` as the caller may use it.

    Learners: the lab must be released to one of their cohorts; the spec is the released snapshot
    (what their notebook and its grading come from). Those who teach a cohort of the course (and
    platform admins) may start any of its labs from the course folder.
    """
    row = session.exec(select(Course).where(Course.slug == course)).first()
    if row is None or lab not in {item["id"] for item in course_labs(row)}:
        raise NotFound(
            f"no lab {course}/{lab}: open the notebook from the folder Fetch made "
            "(~/<course>/<lab>/) or name the lab as 'course/lab'"
        )
    released = session.exec(
        select(Assignment)
        .where(
            Assignment.course_id == row.id,
            Assignment.lab == lab,
            col(Assignment.cohort_id).in_(principal.enrolled_cohorts(session) or {-1}),
        )
        .order_by(col(Assignment.id).desc())
    ).first()
    if released is not None:
        principal.require_scope("learn")
        opens = to_utc(released.opens_at)
        if utcnow() < opens and not _teaches_course(session, principal, row):
            raise Forbidden(
                f"lab {course}/{lab} opens at {opens.isoformat()}; its chain starts from then on"
            )
        snapshot = assignment_dir(settings, id_of(released)) / "source" / "lab.toml"
        if snapshot.is_file():
            return snapshot
    elif _teaches_course(session, principal, row):
        principal.require_scope("read")
    else:
        raise NotFound(f"lab {course}/{lab} is not released to you; ask your instructor")
    return Path(row.source_dir) / "source" / lab / "lab.toml"


def _teaches_course(session: Session, principal: Principal, course: Course) -> bool:
    if principal.is_platform_admin:
        return True
    cohorts = session.exec(select(Cohort).where(Cohort.course_id == course.id)).all()
    return any(principal.teaches(c) for c in cohorts)


class LabChains:
    """The learners' lab chains academy starts, and the idle cull that stops them."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._manager: SandboxManager | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._culler: threading.Thread | None = None

    @property
    def manager(self) -> SandboxManager:
        with self._lock:
            if self._manager is None:
                self._manager = sandbox_manager(self.settings)
            return self._manager

    @staticmethod
    def _spec(path: Path, course: str, lab: str) -> LabSpec:
        from labs.sandbox import LabSpec, SpecError

        try:
            return LabSpec.from_toml(path)
        except SpecError as exc:
            raise Conflict(
                f"lab {course}/{lab} cannot start its chain ({exc}); tell your instructor"
            ) from None

    def ensure(self, learner: str, course: str, lab: str, path: Path) -> LabChain:
        """Start (or reuse) ``learner``'s chain for the lab; blocks until every validator answers."""
        from labs.sandbox import BackendError, SpecError

        spec = self._spec(path, course, lab)
        if spec.chain is None:
            return LabChain(course, spec, None)
        try:
            env = self.manager.ensure(learner, spec)
        except (BackendError, SpecError, OSError) as exc:
            log.warning("lab chain %s/%s of %s did not start: %s", course, lab, learner, exc)
            raise Unavailable(
                f"your chain for {course}/{lab} did not start ({exc}); try again"
            ) from None
        return LabChain(course, spec, self._hand_over(env))

    def status(self, learner: str, course: str, lab: str, path: Path) -> LabChain:
        """The chain as it is now, started or not (nothing is started)."""
        spec = self._spec(path, course, lab)
        env = self.manager.status(learner, spec.id) if spec.chain is not None else None
        return LabChain(course, spec, self._hand_over(env) if env is not None else None)

    def _hand_over(self, env: LabEnv) -> LabEnv:
        """Point the chain's ``sdk_config`` at a copy in the learner's server folder (with the
        orgs' users), made when that folder exists: the jailed server cannot read the chain's."""
        template = self.settings.learner_home_template
        if not (env.sdk_config and template) or "/" in env.learner or env.learner.startswith("."):
            return env
        home = Path(template.format(username=env.learner))
        if not home.is_dir():
            return env
        from labs.minichain.chainmaker.handover import hand_over

        try:
            env.sdk_config = str(hand_over(Path(env.sdk_config), home, env.lab_id))
        except (OSError, KeyError, ValueError) as exc:
            log.warning("no ChainMaker SDK configuration for %s: %s", env.learner, exc)
            env.sdk_config = None
        return env

    # -- the idle cull ------------------------------------------------------------------------
    def start_culler(self) -> None:
        """Stop chains nobody used for ``lab_idle_seconds`` (``labs.client`` reports use while a
        notebook works with its chain; a culled chain starts again on its next use)."""
        idle = self.settings.lab_idle_seconds
        if idle <= 0 or self._culler is not None:
            return
        every = min(300.0, max(1.0, idle / 4))

        def loop() -> None:
            while not self._stop.wait(every):
                try:
                    culled = self.manager.cull(idle)
                except Exception:  # a record being rewritten, a chain mid-start: next round
                    log.exception("lab chain cull failed")
                    continue
                if culled:
                    log.info("stopped idle lab chains: %s", ", ".join(e.env_id for e in culled))

        self._culler = threading.Thread(target=loop, name="lab-chain-cull", daemon=True)
        self._culler.start()

    def close(self) -> None:
        """Stop the culler; the chains keep running (``academy up`` stops them with the hub)."""
        self._stop.set()
        if self._culler is not None:
            self._culler.join(5)
            self._culler = None
