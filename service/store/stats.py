"""What operators watch, read from the tables at scrape time (`GET /metrics`).

Every number comes from the database, so any API replica reports the whole deployment: jobs of
every worker on every machine, debates stored by workers as well as by the API.
"""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from service.store.db import utcnow
from service.store.models import Debate, Job


@dataclass(frozen=True)
class RunningJob:
    id: int
    kind: str
    worker: str
    heartbeat_age_s: float
    step: int | None  # a training job's optimizer steps so far (its progress reports a loss), else None
    loss: float | None


@dataclass(frozen=True)
class QueueStats:
    jobs: dict[tuple[str, str], int]  # (kind, status) -> count
    oldest_queued_age_s: dict[str, float]  # kind -> age of its oldest queued job
    running: list[RunningJob]
    debates: dict[str, int]  # status -> count
    debate_tokens: dict[str, int]  # "prompt" | "completion" -> total


def queue_stats(session: Session) -> QueueStats:
    now = utcnow()
    jobs = {
        (kind, status): n
        for kind, status, n in session.execute(
            select(Job.kind, Job.status, func.count()).group_by(Job.kind, Job.status)
        )
    }
    oldest = {
        kind: _age(now, created)
        for kind, created in session.execute(
            select(Job.kind, func.min(Job.created_at)).where(Job.status == "queued").group_by(Job.kind)
        )
    }
    running = [_running(now, job) for job in session.scalars(select(Job).where(Job.status == "running"))]
    debates = dict(session.execute(select(Debate.status, func.count()).group_by(Debate.status)).all())
    prompt, completion = session.execute(
        select(func.coalesce(func.sum(Debate.prompt_tokens), 0), func.coalesce(func.sum(Debate.completion_tokens), 0))
    ).one()
    return QueueStats(jobs, oldest, running, debates, {"prompt": int(prompt), "completion": int(completion)})


def _age(now: datetime, then: datetime | None) -> float:
    return max(0.0, (now - then).total_seconds()) if then else 0.0


def _running(now: datetime, job: Job) -> RunningJob:
    progress = job.progress or {}
    loss = progress.get("loss")
    training = isinstance(loss, int | float) and "done" in progress
    return RunningJob(
        job.id,
        job.kind,
        job.lease_owner or "",
        _age(now, job.heartbeat_at),
        int(progress["done"]) if training else None,
        float(loss) if training else None,
    )
