"""Run status and progress, derived from the run's jobs and rows (the jobs are the truth)."""

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from service.store.db import utcnow
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
    counts = dict(session.execute(
        select(Job.status, func.count()).where(Job.run_id == run.id).group_by(Job.status)).all())
    errors = list(session.scalars(select(Job.error).where(Job.run_id == run.id, Job.status == "failed")))
    status = run_status(counts)
    if status != run.status:
        run.status = status
        run.finished_at = utcnow() if status in ("succeeded", "failed", "cancelled") else None
        session.flush()
    return RunProgress(status, counts, [error.splitlines()[0] for error in errors if error])


def debate_counts(session: Session, run_id: int) -> dict[str, int]:
    return dict(session.execute(
        select(Debate.status, func.count()).where(Debate.run_id == run_id).group_by(Debate.status)).all())
