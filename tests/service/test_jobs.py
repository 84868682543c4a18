import time

import pytest
from sqlalchemy import select, update

from service.store import Job, Run
from service.store.jobs import (
    JobCancelled,
    JobError,
    JobLeaseLost,
    JobNotFound,
    cancel_job,
    claim_job,
    complete_job,
    enqueue_job,
    fail_job,
    heartbeat,
    reap_expired,
    retry_job,
)


def _enqueue(sessions, *args, **kwargs) -> int:
    with sessions.begin() as session:
        return enqueue_job(session, *args, **kwargs).id


def _claim(sessions, owner="w1", kinds=("noop",), lease_s=60.0):
    with sessions.begin() as session:
        return claim_job(session, kinds, owner, lease_s)


def _job(sessions, job_id) -> Job:
    with sessions.begin() as session:
        return session.get(Job, job_id)


def test_idempotency_key_returns_the_same_job(sessions) -> None:
    first = _enqueue(sessions, "noop", {"x": 1}, idempotency_key="k1")
    second = _enqueue(sessions, "noop", {"x": 2}, idempotency_key="k1")
    assert first == second
    with sessions.begin() as session:
        assert session.scalars(select(Job)).all()[0].payload == {"x": 1}


def test_claim_respects_kind_priority_and_dependencies(sessions) -> None:
    parent = _enqueue(sessions, "noop")
    child = _enqueue(sessions, "noop", depends_on=[parent], priority=10)
    other_kind = _enqueue(sessions, "train", priority=100)

    claimed = _claim(sessions)  # child has higher priority but waits for its parent
    assert claimed.id == parent and claimed.attempt == 1
    assert _claim(sessions) is None

    with sessions.begin() as session:
        complete_job(session, parent, "w1", {"ok": True})
    assert _claim(sessions).id == child
    assert _claim(sessions, kinds=("train",)).id == other_kind
    assert _job(sessions, parent).result == {"ok": True}


def test_dependency_that_failed_keeps_the_child_queued(sessions) -> None:
    parent = _enqueue(sessions, "noop", max_attempts=1)
    child = _enqueue(sessions, "noop", depends_on=[parent])
    _claim(sessions)
    with sessions.begin() as session:
        assert fail_job(session, parent, "w1", "boom") == "failed"
    assert _claim(sessions) is None
    assert _job(sessions, child).status == "queued"


def test_unknown_dependency_is_rejected(sessions) -> None:
    with pytest.raises(JobNotFound, match="999"), sessions.begin() as session:
        enqueue_job(session, "noop", depends_on=[999])


def test_failing_job_is_retried_then_failed_with_its_last_error(sessions) -> None:
    job_id = _enqueue(sessions, "noop", max_attempts=3)
    statuses = []
    for attempt in range(1, 4):
        claimed = _claim(sessions)
        assert claimed.attempt == attempt
        with sessions.begin() as session:
            statuses.append(fail_job(session, job_id, "w1", f"error {attempt}"))
    assert statuses == ["queued", "queued", "failed"]
    job = _job(sessions, job_id)
    assert (job.status, job.error, job.attempts) == ("failed", "error 3", 3)
    assert _claim(sessions) is None


def test_backoff_delays_the_retry(sessions) -> None:
    job_id = _enqueue(sessions, "noop")
    _claim(sessions)
    with sessions.begin() as session:
        fail_job(session, job_id, "w1", "transient", backoff_s=60)
    assert _claim(sessions) is None


def test_expired_lease_is_reaped_and_claimed_by_another_worker(sessions) -> None:
    job_id = _enqueue(sessions, "noop", max_attempts=2)
    _claim(sessions, owner="dead", lease_s=0.2)
    time.sleep(0.3)
    with sessions.begin() as session:
        assert reap_expired(session) == 1
    claimed = _claim(sessions, owner="alive")
    assert (claimed.id, claimed.attempt) == (job_id, 2)
    with pytest.raises(JobLeaseLost), sessions.begin() as session:
        complete_job(session, job_id, "dead")  # the old owner may not finish it any more
    with sessions.begin() as session:
        complete_job(session, job_id, "alive")
    assert _job(sessions, job_id).status == "succeeded"


def test_a_live_lease_is_not_reaped(sessions) -> None:
    """Only an expired lease frees a job: a reaper that took live leases would run every job twice."""
    job_id = _enqueue(sessions, "noop", max_attempts=3)
    _claim(sessions, owner="alive", lease_s=600)
    with sessions.begin() as session:
        assert reap_expired(session) == 0
    assert _claim(sessions, owner="other") is None
    job = _job(sessions, job_id)
    assert (job.status, job.lease_owner, job.attempts) == ("running", "alive", 1)
    with sessions.begin() as session:
        complete_job(session, job_id, "alive")
    assert _job(sessions, job_id).status == "succeeded"


def test_expired_lease_out_of_attempts_fails_the_job(sessions) -> None:
    job_id = _enqueue(sessions, "noop", max_attempts=1)
    _claim(sessions, owner="dead", lease_s=0.1)
    time.sleep(0.2)
    with sessions.begin() as session:
        reap_expired(session)
    job = _job(sessions, job_id)
    assert job.status == "failed" and "dead stopped heartbeating" in job.error


def test_heartbeat_extends_lease_and_stores_progress(sessions) -> None:
    job_id = _enqueue(sessions, "noop")
    _claim(sessions, lease_s=0.5)
    before = _job(sessions, job_id).lease_expires_at
    with sessions.begin() as session:
        heartbeat(session, job_id, "w1", 60, {"done": 3, "total": 10})
    job = _job(sessions, job_id)
    assert job.lease_expires_at > before and job.progress == {"done": 3, "total": 10}


def test_cancel_stops_a_running_job_at_its_next_heartbeat(sessions) -> None:
    job_id = _enqueue(sessions, "noop")
    _claim(sessions)
    with sessions.begin() as session:
        assert cancel_job(session, job_id).status == "cancelled"
    with pytest.raises(JobCancelled), sessions.begin() as session:
        heartbeat(session, job_id, "w1", 60)
    assert _job(sessions, job_id).status == "cancelled"


def test_retry_requeues_a_failed_job_only(sessions) -> None:
    job_id = _enqueue(sessions, "noop", max_attempts=1)
    with pytest.raises(JobError, match="only failed or cancelled"), sessions.begin() as session:
        retry_job(session, job_id)
    _claim(sessions)
    with sessions.begin() as session:
        fail_job(session, job_id, "w1", "boom")
    with sessions.begin() as session:
        retry_job(session, job_id)
    claimed = _claim(sessions)
    assert (claimed.attempt, claimed.max_attempts) == (2, 4)  # the history is kept; 3 more tries


def test_results_roll_back_when_the_lease_was_lost(sessions) -> None:
    """A worker writes results and completes in one transaction: losing the lease loses neither."""
    job_id = _enqueue(sessions, "noop")
    _claim(sessions, owner="slow")
    with sessions.begin() as session:  # another actor took the job over
        session.execute(update(Job).where(Job.id == job_id).values(lease_owner="other"))
    marker = _enqueue(sessions, "marker")
    with pytest.raises(JobLeaseLost), sessions.begin() as session:
        session.get(Job, marker).payload = {"written": True}
        complete_job(session, job_id, "slow")
    assert _job(sessions, marker).payload == {}


def test_worker_exit_when_idle_waits_while_a_job_runs_elsewhere(sessions) -> None:
    from trainers.worker import Worker

    job_id = _enqueue(sessions, "noop")
    _claim(sessions, owner="elsewhere", lease_s=0.5)  # running under another worker's lease
    ran = []
    worker = Worker(sessions, {"noop": lambda ctx: ran.append(ctx.job.id)}, lease_s=5, poll_s=0.1)
    assert worker.run(exit_when_idle=True) == 1  # waited for the lease to expire, then took it
    assert ran == [job_id] and _job(sessions, job_id).status == "succeeded"


def test_a_worker_of_one_run_claims_only_that_runs_jobs(sessions) -> None:
    with sessions.begin() as session:
        runs = [Run(config={}, config_hash=str(n) * 64) for n in (1, 2)]
        session.add_all(runs)
        session.flush()
        mine, theirs = (run.id for run in runs)
    other = _enqueue(sessions, "noop", run_id=theirs, priority=10)
    own = _enqueue(sessions, "noop", run_id=mine)
    with sessions.begin() as session:
        assert claim_job(session, ("noop",), "w1", 60.0, run_id=mine).id == own
        assert claim_job(session, ("noop",), "w1", 60.0, run_id=mine) is None
    assert _claim(sessions).id == other  # without a run: any job
