"""Job events: the store functions, and the events a real Worker writes around trivial handlers."""

import logging
import time

import pytest
from sqlalchemy import delete, select, update

from service.store import Job, JobEvent
from service.store.events import add_event, list_events
from service.store.jobs import cancel_job, enqueue_job
from trainers.worker import JobContext, PermanentJobError, Worker


def _enqueue(sessions, **kwargs) -> int:  # noqa: ANN001, ANN003
    with sessions.begin() as session:
        return enqueue_job(session, "noop", **kwargs).id


def _log(sessions, job_id: int) -> list[tuple[str, str]]:  # noqa: ANN001
    """(level, message) oldest first."""
    with sessions() as session:
        return [(e.level, e.message) for e in reversed(list_events(session, job_id, limit=100))]


def _status(sessions, job_id: int) -> str:  # noqa: ANN001
    with sessions() as session:
        return session.get(Job, job_id).status


def _worker(sessions, handler, **kwargs) -> Worker:  # noqa: ANN001, ANN003
    return Worker(sessions, {"noop": handler}, owner="w1", poll_s=0.05, retry_backoff_s=0.0, **kwargs)


def test_events_page_newest_first_and_validate_their_level(sessions) -> None:  # noqa: ANN001
    job_id, other = _enqueue(sessions), _enqueue(sessions)
    with sessions.begin() as session:
        ids = [add_event(session, job_id, f"event {n}", data={"n": n}).id for n in range(5)]
        add_event(session, other, "not mine")
        assert add_event(session, job_id, "spelled as OpenAI does", level="warn").level == "warning"
        with pytest.raises(ValueError, match="info, warning, error"):
            add_event(session, job_id, "x", level="debug")
    with sessions() as session:
        first = list_events(session, job_id, limit=3)
        assert [e.message for e in first] == ["spelled as OpenAI does", "event 4", "event 3"]
        rest = list_events(session, job_id, after_id=first[-1].id, limit=10)
        assert [e.id for e in rest] == ids[2::-1] and rest[0].data == {"n": 2}


def test_events_go_with_their_job(sessions) -> None:  # noqa: ANN001
    job_id = _enqueue(sessions)
    with sessions.begin() as session:
        add_event(session, job_id, "hello")
    with sessions.begin() as session:
        session.execute(delete(Job).where(Job.id == job_id))  # the database's ON DELETE CASCADE, not the ORM's
    with sessions() as session:
        assert session.scalars(select(JobEvent)).all() == []


def test_worker_logs_start_handler_events_and_success(sessions) -> None:  # noqa: ANN001
    def train(ctx: JobContext) -> dict:
        for step in (1, 2):
            ctx.event(f"Step {step}/2: training loss={0.5 / step:.2f}", step=step, train_loss=0.5 / step)
        ctx.event("loss went up", level="warning")
        return {"ok": True}

    job_id = _enqueue(sessions, max_attempts=2)
    assert _worker(sessions, train).run(max_jobs=1) == 1
    assert _log(sessions, job_id) == [
        ("info", "Job started: attempt 1 of 2 on worker w1"),
        ("info", "Step 1/2: training loss=0.50"),
        ("info", "Step 2/2: training loss=0.25"),
        ("warning", "loss went up"),
        ("info", "Job succeeded"),
    ]
    with sessions() as session:
        started, step = list_events(session, job_id, limit=100)[:-3:-1]
        assert started.data == {"attempt": 1, "max_attempts": 2, "worker": "w1"}
        assert step.data == {"step": 1, "train_loss": 0.5}


def test_worker_logs_a_retry_then_the_final_failure(sessions) -> None:  # noqa: ANN001
    def broken(ctx: JobContext) -> None:
        raise ValueError(f"boom on attempt {ctx.job.attempt}")

    job_id = _enqueue(sessions, max_attempts=2)
    assert _worker(sessions, broken).run(max_jobs=2) == 2
    assert _status(sessions, job_id) == "failed"
    assert _log(sessions, job_id) == [
        ("info", "Job started: attempt 1 of 2 on worker w1"),
        ("warning", "Job attempt 1 of 2 failed; will retry: ValueError: boom on attempt 1"),
        ("info", "Job started: attempt 2 of 2 on worker w1"),
        ("error", "Job failed (attempt 2 of 2): ValueError: boom on attempt 2"),
    ]


def test_permanent_error_fails_at_once(sessions) -> None:  # noqa: ANN001
    def bad_payload(_ctx: JobContext) -> None:
        raise PermanentJobError("payload names no training file")

    job_id = _enqueue(sessions, max_attempts=3)
    _worker(sessions, bad_payload).run(max_jobs=1)
    assert _log(sessions, job_id)[-1] == (
        "error",
        "Job failed (attempt 1 of 3): PermanentJobError: payload names no training file",
    )
    with sessions() as session:
        assert list_events(session, job_id, limit=1)[0].data == {
            "attempt": 1,
            "error": "PermanentJobError: payload names no training file",
            "retrying": False,
        }


def _wait_until_lost(ctx: JobContext) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        ctx.check()
        time.sleep(0.02)
    raise AssertionError("the worker never noticed")


def test_cancelled_job_stops_its_worker_with_an_event(sessions) -> None:  # noqa: ANN001
    def cancelled_midway(ctx: JobContext) -> None:
        with sessions.begin() as session:  # a user cancels while it runs
            cancel_job(session, ctx.job.id)
        _wait_until_lost(ctx)

    job_id = _enqueue(sessions)
    _worker(sessions, cancelled_midway, lease_s=3, heartbeat_s=0.1).run(max_jobs=1)
    assert _status(sessions, job_id) == "cancelled"
    assert _log(sessions, job_id)[1:] == [("info", "Worker w1 stopped: the job was cancelled")]


def test_lost_lease_stops_its_worker_with_a_warning(sessions) -> None:  # noqa: ANN001
    def taken_over(ctx: JobContext) -> None:
        with sessions.begin() as session:  # as if the lease expired and another worker took the job
            session.execute(update(Job).where(Job.id == ctx.job.id).values(lease_owner="w2"))
        _wait_until_lost(ctx)

    job_id = _enqueue(sessions)
    _worker(sessions, taken_over, lease_s=3, heartbeat_s=0.1).run(max_jobs=1)
    assert _status(sessions, job_id) == "running"  # w2's now; w1 neither completed nor failed it
    [(level, message)] = _log(sessions, job_id)[1:]
    assert level == "warning" and message.startswith("Worker w1 stopped: it lost the job's lease (")
    assert "no longer leased to w1" in message


def test_a_failing_event_write_never_fails_the_job(sessions, caplog) -> None:  # noqa: ANN001
    def clumsy(ctx: JobContext) -> dict:
        ctx.event("not JSON", blob=object())
        ctx.event("bad level", level="debug")
        return {"done": True}

    job_id = _enqueue(sessions)
    with caplog.at_level(logging.ERROR, logger="trainers.worker"):
        _worker(sessions, clumsy).run(max_jobs=1)
    assert _status(sessions, job_id) == "succeeded"
    assert [m for _, m in _log(sessions, job_id)] == ["Job started: attempt 1 of 3 on worker w1", "Job succeeded"]
    failed = [r.getMessage() for r in caplog.records if r.getMessage().startswith("could not record event")]
    assert failed == [
        f"could not record event 'not JSON' of job {job_id}",
        f"could not record event 'bad level' of job {job_id}",
    ]
