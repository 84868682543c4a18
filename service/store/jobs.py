"""The jobs table is the queue: enqueue, claim, heartbeat, complete, fail, reap, cancel, retry.

Every function works inside the caller's transaction (`with sessions.begin() as session:`),
so a handler can write its results and mark its job done in one commit. Claiming:
PostgreSQL `FOR UPDATE SKIP LOCKED`; SQLite runs every transaction as `BEGIN IMMEDIATE`
(see db.py) and the status update is a compare-and-swap on `status = 'queued'` either way.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import exists, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased

from service.store.db import is_postgres, utcnow
from service.store.errors import JobCancelled, JobError, JobLeaseLost, JobNotFound
from service.store.models import Job, JobDependency

TERMINAL = ("succeeded", "failed", "cancelled")
ACTIVE_STATUSES = ("queued", "running")


@dataclass(frozen=True)
class ClaimedJob:
    id: int
    kind: str
    payload: dict[str, Any]
    attempt: int
    max_attempts: int
    owner: str
    run_id: int | None


def enqueue_job(
    session: Session,
    kind: str,
    payload: dict[str, Any] | None = None,
    *,
    idempotency_key: str | None = None,
    depends_on: Iterable[int] = (),
    priority: int = 0,
    max_attempts: int = 3,
    run_id: int | None = None,
) -> Job:
    """Add a job, or return the existing one with the same idempotency key."""
    if max_attempts < 1:
        raise ValueError(f"max_attempts must be >= 1, got {max_attempts}")
    if idempotency_key is not None:
        existing = _job_by_key(session, idempotency_key)
        if existing is not None:
            return existing
    parents = sorted(set(depends_on))
    missing = set(parents) - set(session.scalars(select(Job.id).where(Job.id.in_(parents))))
    if missing:
        raise JobNotFound(f"depends_on names jobs that do not exist: {sorted(missing)}")
    job = Job(
        kind=kind,
        payload=payload or {},
        idempotency_key=idempotency_key,
        priority=priority,
        max_attempts=max_attempts,
        run_id=run_id,
    )
    try:
        with session.begin_nested():
            session.add(job)
            session.flush()
    except IntegrityError:
        # A concurrent enqueue won the race for this idempotency key (PostgreSQL only:
        # SQLite writers are serialised by BEGIN IMMEDIATE).
        existing = _job_by_key(session, idempotency_key) if idempotency_key else None
        if existing is None:
            raise
        return existing
    session.add_all(JobDependency(job_id=job.id, depends_on_id=parent) for parent in parents)
    session.flush()
    return job


def _job_by_key(session: Session, key: str) -> Job | None:
    return session.scalars(select(Job).where(Job.idempotency_key == key)).one_or_none()


def claim_job(
    session: Session, kinds: Sequence[str], owner: str, lease_s: float, run_id: int | None = None
) -> ClaimedJob | None:
    """Take the next claimable job of one of `kinds` (of run `run_id` only, if given): queued, due,
    all dependencies succeeded."""
    now = utcnow()
    parent = aliased(Job)
    pending_parent = (
        exists()
        .where(JobDependency.job_id == Job.id)
        .where(JobDependency.depends_on_id == parent.id)
        .where(parent.status != "succeeded")
    )
    query = (
        select(Job.id)
        .where(Job.status == "queued", Job.kind.in_(list(kinds)), ~pending_parent)
        .where(or_(Job.not_before.is_(None), Job.not_before <= now))
        .order_by(Job.priority.desc(), Job.id)
        .limit(1)
    )
    if run_id is not None:
        query = query.where(Job.run_id == run_id)
    if is_postgres(session):
        query = query.with_for_update(skip_locked=True, of=Job)
    job_id = session.scalar(query)
    if job_id is None:
        return None
    claimed = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status == "queued")
        .values(
            status="running",
            lease_owner=owner,
            lease_expires_at=now + timedelta(seconds=lease_s),
            heartbeat_at=now,
            started_at=now,
            attempts=Job.attempts + 1,
        )
        .returning(Job.kind, Job.payload, Job.attempts, Job.max_attempts, Job.run_id)
    ).one_or_none()
    if claimed is None:  # lost the compare-and-swap
        return None
    return ClaimedJob(
        job_id, claimed.kind, claimed.payload, claimed.attempts, claimed.max_attempts, owner, claimed.run_id
    )


def has_running_jobs(session: Session) -> bool:
    """Whether any job is running (its lease may expire, or it may unblock dependents) or is
    queued for a retry that is not due yet."""
    waiting = or_(Job.status == "running", (Job.status == "queued") & (Job.not_before > utcnow()))
    return session.scalar(select(exists().where(waiting))) or False


def heartbeat(
    session: Session, job_id: int, owner: str, lease_s: float, progress: dict[str, Any] | None = None
) -> None:
    """Extend the lease (and store progress); raises JobLeaseLost / JobCancelled if not ours."""
    now = utcnow()
    values: dict[str, Any] = {"lease_expires_at": now + timedelta(seconds=lease_s), "heartbeat_at": now}
    if progress is not None:
        values["progress"] = progress
    _update_owned(session, job_id, owner, values)


def complete_job(
    session: Session,
    job_id: int,
    owner: str,
    result: dict[str, Any] | None = None,
    progress: dict[str, Any] | None = None,
) -> None:
    """Mark the job succeeded (with its final progress, if given); raises JobLeaseLost if another worker owns it now."""
    values = {"status": "succeeded", "result": result, "finished_at": utcnow(), "error": None}
    if progress is not None:
        values["progress"] = {**progress, "eta_s": 0.0}
    _update_owned(session, job_id, owner, {**values, **_NO_LEASE})


def fail_job(
    session: Session, job_id: int, owner: str, error: str, *, retryable: bool = True, backoff_s: float = 0.0
) -> str:
    """Record a failure: re-queue while attempts remain (and `retryable`), else fail. Returns the new status."""
    job = _get(session, job_id)
    retry = retryable and job.attempts < job.max_attempts
    values: dict[str, Any] = {"error": error, **_NO_LEASE}
    if retry:
        values |= {"status": "queued", "not_before": utcnow() + timedelta(seconds=backoff_s)}
    else:
        values |= {"status": "failed", "finished_at": utcnow()}
    _update_owned(session, job_id, owner, values)
    return values["status"]


def release_job(session: Session, job_id: int, owner: str) -> None:
    """Hand a running job back to the queue without spending an attempt (its worker is shutting down)."""
    _update_owned(
        session,
        job_id,
        owner,
        {"status": "queued", "attempts": Job.attempts - 1, "not_before": None, "started_at": None, **_NO_LEASE},
    )


def reap_expired(session: Session) -> int:
    """Re-queue running jobs whose lease expired (fail them once out of attempts). Returns the count."""
    now = utcnow()
    query = select(Job).where(Job.status == "running", Job.lease_expires_at < now)
    if is_postgres(session):
        query = query.with_for_update(skip_locked=True)
    expired = session.scalars(query).all()
    for job in expired:
        job.error = (
            f"lease expired: worker {job.lease_owner} stopped heartbeating (attempt {job.attempts}/{job.max_attempts})"
        )
        job.status = "queued" if job.attempts < job.max_attempts else "failed"
        job.finished_at = now if job.status == "failed" else None
        job.lease_owner = job.lease_expires_at = None
    session.flush()
    return len(expired)


def cancel_job(session: Session, job_id: int) -> Job:
    """Cancel a queued or running job (a running worker notices at its next heartbeat)."""
    job = _get(session, job_id)
    if job.status not in TERMINAL:
        job.status, job.finished_at = "cancelled", utcnow()
        job.lease_owner = job.lease_expires_at = None
        session.flush()
    return job


def retry_job(session: Session, job_id: int, *, attempts: int = 3) -> Job:
    """Put a failed or cancelled job back in the queue with `attempts` more tries.

    `attempts` keeps counting (the job's history), so `max_attempts` grows instead.
    """
    job = _get(session, job_id)
    if job.status not in ("failed", "cancelled"):
        raise JobError(f"job {job_id} is {job.status}; only failed or cancelled jobs can be retried")
    job.status, job.finished_at, job.not_before = "queued", None, None
    job.max_attempts = job.attempts + attempts
    session.flush()
    return job


_NO_LEASE = {"lease_owner": None, "lease_expires_at": None}


def _get(session: Session, job_id: int) -> Job:
    job = session.get(Job, job_id)
    if job is None:
        raise JobNotFound(f"no job with id {job_id}")
    return job


def _update_owned(session: Session, job_id: int, owner: str, values: dict[str, Any]) -> None:
    changed = session.execute(
        update(Job).where(Job.id == job_id, Job.lease_owner == owner, Job.status == "running").values(**values)
    ).rowcount
    if changed == 1:
        return
    status = session.scalar(select(Job.status).where(Job.id == job_id))
    if status is None:
        raise JobNotFound(f"no job with id {job_id}")
    if status == "cancelled":
        raise JobCancelled(f"job {job_id} was cancelled")
    raise JobLeaseLost(f"job {job_id} is no longer leased to {owner} (status {status})")
