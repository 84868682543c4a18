"""Job events: a job's log (created, started, step 10/100: loss=0.41, failed), newest first.

Like the queue functions these work inside the caller's transaction. Workers write events
in a transaction of their own (see trainers/worker.py) so a failed event never fails a job.
"""

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from service.store.models import EVENT_LEVELS, JobEvent

# OpenAI's fine-tuning events say "warn"; accept it as a spelling of "warning".
_LEVEL_ALIASES = {"warn": "warning"}


def add_event(
    session: Session, job_id: int, message: str, *, level: str = "info", data: dict[str, Any] | None = None
) -> JobEvent:
    """Append an event to job `job_id`'s log; raises ValueError for an unknown level."""
    level = _LEVEL_ALIASES.get(level, level)
    if level not in EVENT_LEVELS:
        raise ValueError(f"event level must be one of {', '.join(EVENT_LEVELS)}; got {level!r}")
    event = JobEvent(job_id=job_id, message=message, level=level, data=data)
    session.add(event)
    session.flush()
    return event


def list_events(session: Session, job_id: int, *, after_id: int | None = None, limit: int = 20) -> Sequence[JobEvent]:
    """The job's events newest first; `after_id` continues a listing after that (newer) event."""
    query = select(JobEvent).where(JobEvent.job_id == job_id).order_by(JobEvent.id.desc()).limit(limit)
    if after_id is not None:
        query = query.where(JobEvent.id < after_id)
    return session.scalars(query).all()


def first_events(session: Session, job_ids: Sequence[int]) -> dict[int, JobEvent]:
    """The oldest event of each job (its "created" event), by job id, in one query."""
    first_ids = select(func.min(JobEvent.id)).where(JobEvent.job_id.in_(list(job_ids))).group_by(JobEvent.job_id)
    return {event.job_id: event for event in session.scalars(select(JobEvent).where(JobEvent.id.in_(first_ids)))}
