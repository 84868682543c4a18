"""Real worker processes against real SQLite / PostgreSQL: exactly-once, and lease takeover."""

import os
import signal
import time

import pytest
from sqlalchemy import func, select

from service.store import Job, make_engine, make_session_factory
from tests.support.queue_runs import collect, enqueue_noops, start_worker, wait_all

pytestmark = pytest.mark.slow


def _status_counts(url: str) -> dict[str, int]:
    engine = make_engine(url)
    try:
        with make_session_factory(engine)() as session:
            return dict(session.execute(select(Job.status, func.count()).group_by(Job.status)).all())
    finally:
        engine.dispose()


def test_four_workers_run_500_jobs_exactly_once(migrated_url: str, tmp_path) -> None:  # noqa: ANN001
    job_ids = enqueue_noops(migrated_url, 500)
    workers = [start_worker(migrated_url, tmp_path) for _ in range(4)]
    wait_all(workers, timeout_s=300)

    assert [w.returncode for w in workers] == [0, 0, 0, 0]
    runs = collect(tmp_path).job_ids
    assert set(runs) == set(job_ids)  # none lost
    assert [job for job, n in runs.items() if n > 1] == []  # none twice
    assert _status_counts(migrated_url) == {"succeeded": 500}


def test_killed_worker_loses_its_job_to_another_after_the_lease(migrated_url: str, tmp_path) -> None:  # noqa: ANN001
    [job_id] = enqueue_noops(migrated_url, 1, sleep_s=3.0)
    lease = ("--lease-s", "1.5", "--heartbeat-s", "0.3")
    victim = start_worker(migrated_url, tmp_path, *lease)
    engine = make_engine(migrated_url)
    sessions = make_session_factory(engine)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with sessions() as session:
            if session.get(Job, job_id).status == "running":
                break
        time.sleep(0.05)
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait()

    survivor = start_worker(migrated_url, tmp_path, *lease)
    wait_all([survivor], timeout_s=60)

    with sessions() as session:
        job = session.get(Job, job_id)
        assert (job.status, job.attempts, job.result) == ("succeeded", 2, {"pid": survivor.pid})
    engine.dispose()
    assert collect(tmp_path).job_ids == {job_id: 1}  # the victim never finished it
