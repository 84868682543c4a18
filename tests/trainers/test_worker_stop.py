"""A worker asked to stop hands its running job back to the queue without spending an attempt."""

import threading
import time

from sqlalchemy.orm import Session, sessionmaker

from service.store.events import list_events
from service.store.jobs import enqueue_job
from service.store.models import Job
from trainers.worker import JobContext, Worker


def test_stopping_worker_releases_its_job(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        job_id = enqueue_job(session, "long", {}).id
    started = threading.Event()

    def handler(ctx: JobContext) -> dict:
        started.set()
        while True:  # a long job that checks in between steps
            ctx.check()
            time.sleep(0.02)

    stop = threading.Event()
    worker = Worker(sessions, {"long": handler}, lease_s=30)
    thread = threading.Thread(target=worker.run, kwargs={"stop": stop})
    thread.start()
    assert started.wait(10)
    stop.set()
    thread.join(10)
    assert not thread.is_alive()
    with sessions() as session:
        job = session.get(Job, job_id)
        assert (job.status, job.attempts, job.lease_owner) == ("queued", 0, None)
        assert "back in the queue" in list_events(session, job_id)[0].message
    # the next worker picks it up at once, as attempt 1
    seen = []
    Worker(sessions, {"long": lambda ctx: seen.append(ctx.job.attempt) or {}}).run(max_jobs=1)
    assert seen == [1]
