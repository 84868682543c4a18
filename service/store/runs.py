"""Run status and progress, derived from the run's jobs and rows (the jobs are the truth)."""

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from service.store.db import utcnow
from service.store.jobs import cancel_job
from service.store.models import Debate, Job, Run


@dataclass(frozen=True)
class RunProgress:
    status: str
    jobs: dict[str, int]
    errors: list[str]


def config_hash(config: dict[str, Any]) -> str:
    """Identifies a configuration independently of key order."""
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()


def run_status(job_counts: dict[str, int]) -> str:
    """failed > cancelled > running > queued > succeeded, over the run's jobs."""
    for status in ("failed", "cancelled", "running"):
        if job_counts.get(status):
            return status
    if job_counts.get("queued"):
        return "running" if job_counts.get("succeeded") else "queued"
    return "succeeded" if job_counts else "queued"


def refresh_run(session: Session, run: Run) -> RunProgress:
    """Recompute the run's status from its jobs and store it on the row (so SQL readers see it)."""
    counts = dict(
        session.execute(select(Job.status, func.count()).where(Job.run_id == run.id).group_by(Job.status)).all()
    )
    errors = list(session.scalars(select(Job.error).where(Job.run_id == run.id, Job.status == "failed")))
    status = run_status(counts)
    if status != run.status:
        run.status = status
        run.finished_at = utcnow() if status in ("succeeded", "failed", "cancelled") else None
        session.flush()
    return RunProgress(status, counts, [error.splitlines()[0] for error in errors if error])


def refresh_run_after_job(session: Session, run_id: int | None) -> None:
    """Store the run's status when one of its jobs ended, so SQL readers see a finished run finished.

    The run row is locked first: of two jobs ending together, the second to commit counts the first.
    """
    run = None if run_id is None else session.get(Run, run_id, with_for_update=True)
    if run is not None:
        refresh_run(session, run)


def job_results(session: Session, run_id: int, kind: str) -> list[dict[str, Any]]:
    """The results of the run's succeeded jobs of `kind`, oldest first (what a step reported about its work)."""
    return list(
        session.scalars(
            select(Job.result).where(Job.run_id == run_id, Job.kind == kind, Job.status == "succeeded").order_by(Job.id)
        )
    )


def debate_counts(session: Session, run_id: int) -> dict[str, int]:
    return dict(
        session.execute(
            select(Debate.status, func.count()).where(Debate.run_id == run_id).group_by(Debate.status)
        ).all()
    )


@dataclass(frozen=True)
class StageProgress:
    """One job kind of a run: job counts by status, and units done/total over its jobs."""

    kind: str
    jobs: dict[str, int]
    done: int
    total: int
    eta_s: float | None
    errors: list[str]
    running: list[dict] = field(default_factory=list)  # the progress of each running job (step, loss, ...)


def run_stages(session: Session, run_id: int, kinds: tuple[str, ...]) -> list[StageProgress]:
    """Progress per stage, in `kinds` order, from the jobs' status and progress columns.

    A succeeded job counts as its whole `total` (1 when it never reported one); a queued job as 0 of 1.
    """
    jobs = session.execute(select(Job.kind, Job.status, Job.progress, Job.error).where(Job.run_id == run_id)).all()
    stages = []
    for kind in kinds:
        mine = [job for job in jobs if job.kind == kind]
        if not mine:
            continue
        counts: dict[str, int] = {}
        done = total = 0
        etas = []
        for job in mine:
            counts[job.status] = counts.get(job.status, 0) + 1
            progress = job.progress or {}
            job_total = int(progress.get("total") or 1)
            total += job_total
            done += job_total if job.status == "succeeded" else min(int(progress.get("done") or 0), job_total)
            if job.status == "running" and progress.get("eta_s") is not None:
                etas.append(float(progress["eta_s"]))
        errors = [job.error.splitlines()[0] for job in mine if job.status == "failed" and job.error]
        running = [job.progress for job in mine if job.status == "running" and job.progress]
        stages.append(StageProgress(kind, counts, done, total, max(etas) if etas else None, errors, running))
    return stages


def cancel_run(session: Session, run: Run) -> int:
    """Cancel every queued or running job of the run; returns how many."""
    job_ids = session.scalars(select(Job.id).where(Job.run_id == run.id, Job.status.in_(("queued", "running")))).all()
    for job_id in job_ids:
        cancel_job(session, job_id)
    refresh_run(session, run)
    return len(job_ids)
