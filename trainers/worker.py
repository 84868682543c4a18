"""The worker loop: claim a job of the kinds it serves, run its handler, heartbeat, complete/fail.

A handler is `handler(ctx: JobContext) -> dict | None`; the returned dict is stored as the
job's result. Handlers report progress with `ctx.report(done, total, **extra)` and call
`ctx.check()` between steps of long work so a cancelled or lost job stops promptly, and log
lines a user reads (`GET /v1/fine_tuning/jobs/{id}/events`) with `ctx.event(message, **data)`.

The worker logs to `job_events` itself when a job starts, succeeds, fails (retrying or for
good) and when it stops because the job was cancelled or its lease lost. Every event is its
own short transaction: a failed event write is logged and never fails the job. A failure's
traceback goes to the worker's log only; the job's `error` and events (what API clients read)
carry the message. When a job of a run ends, the run's status is stored in the same commit.
"""

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from service.store.events import add_event
from service.store.jobs import (
    ClaimedJob,
    JobCancelled,
    JobLeaseLost,
    claim_job,
    complete_job,
    fail_job,
    has_running_jobs,
    heartbeat,
    reap_expired,
    release_job,
)
from service.store.runs import refresh_run_after_job
from trainers.errors import PermanentJobError, WorkerStopping
from trainers.tracking import NullTracker, Tracker

log = logging.getLogger(__name__)


def record_event(
    sessions: sessionmaker[Session],
    job_id: int,
    message: str,
    *,
    level: str = "info",
    data: dict[str, Any] | None = None,
) -> None:
    """Append to the job's log in a transaction of its own; a failure is logged, never raised."""
    try:
        with sessions.begin() as session:
            add_event(session, job_id, message, level=level, data=data)
    except Exception:  # noqa: BLE001 - a lost log line must not fail the job
        log.exception("could not record event %r of job %s", message, job_id)


@dataclass
class JobContext:
    job: ClaimedJob
    sessions: sessionmaker[Session]
    started: float = field(default_factory=time.monotonic)
    progress: dict[str, Any] = field(default_factory=dict)
    lost: threading.Event = field(default_factory=threading.Event)
    lost_reason: str = ""
    cancelled: bool = False
    stopping: threading.Event = field(default_factory=threading.Event)
    tracker: Tracker = field(default_factory=NullTracker)

    @property
    def payload(self) -> dict[str, Any]:
        return self.job.payload

    def report(self, done: int, total: int, **extra: Any) -> None:
        """Record progress (stored on the job row at the next heartbeat), with an ETA."""
        elapsed = time.monotonic() - self.started
        eta = elapsed / done * (total - done) if done else None
        self.progress = {"done": done, "total": total, "eta_s": eta, **extra}
        self.tracker.log_progress(self.job, self.progress)

    def check(self) -> None:
        """Raise JobLeaseLost if the job was cancelled or re-queued under us."""
        if self.lost.is_set():
            raise (JobCancelled if self.cancelled else JobLeaseLost)(self.lost_reason)
        if self.stopping.is_set():
            raise WorkerStopping("the worker is stopping")

    def sleep(self, seconds: float) -> None:
        """Wait, calling `check()` every half second: a cancelled or stopping job does not wait it out."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            self.check()
            time.sleep(min(0.5, left))
        self.check()

    def event(self, message: str, *, level: str = "info", **data: Any) -> None:
        """Log a line for the job's user, e.g. `ctx.event("Step 10/100: training loss=0.41", step=10)`.

        Written at once (not at the next heartbeat); level is info, warning or error.
        """
        record_event(self.sessions, self.job.id, message, level=level, data=data or None)


Handler = Callable[[JobContext], dict[str, Any] | None]


def default_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class Worker:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        handlers: Mapping[str, Handler],
        *,
        owner: str | None = None,
        lease_s: float = 60.0,
        heartbeat_s: float | None = None,
        poll_s: float = 0.2,
        retry_backoff_s: float = 5.0,
        run_id: int | None = None,
        tracker: Tracker | None = None,
    ) -> None:
        if not handlers:
            raise ValueError("a worker needs at least one job kind to serve")
        self.sessions = sessions
        self.handlers = dict(handlers)
        self.kinds: Sequence[str] = sorted(self.handlers)
        self.owner = owner or default_owner()
        self.lease_s = lease_s
        self.heartbeat_s = heartbeat_s or lease_s / 3
        self.poll_s = poll_s
        self.retry_backoff_s = retry_backoff_s
        self.run_id = run_id  # claim only this run's jobs (None: any job of our kinds)
        self.tracker = tracker or NullTracker()  # training curves to TensorBoard, if tracking is on
        self._last_reap = 0.0
        self._stop = threading.Event()

    def run(
        self, *, stop: threading.Event | None = None, max_jobs: int | None = None, exit_when_idle: bool = False
    ) -> int:
        """Process jobs until `stop` is set, `max_jobs` ran, or (optionally) the queue is idle.

        Idle means nothing claimable and nothing running anywhere: a running job may still
        lose its lease to us, or finish and unblock its dependents.
        """
        stop = self._stop = stop or threading.Event()
        done = 0
        while not stop.is_set() and (max_jobs is None or done < max_jobs):
            if self.run_one():
                done += 1
            elif exit_when_idle and not self._anything_running():
                break
            else:
                stop.wait(self.poll_s)
        return done

    def run_one(self) -> bool:
        """Claim and run one job; False if none was claimable."""
        job = self._claim()
        if job is None:
            return False
        ctx = JobContext(job, self.sessions, stopping=self._stop, tracker=self.tracker)
        ctx.event(
            f"Job started: attempt {job.attempt} of {job.max_attempts} on worker {self.owner}",
            attempt=job.attempt,
            max_attempts=job.max_attempts,
            worker=self.owner,
        )
        beat_stop = threading.Event()
        beat = threading.Thread(target=self._heartbeat_loop, args=(ctx, beat_stop), daemon=True)
        beat.start()
        try:
            self._execute(ctx)
        finally:
            beat_stop.set()
            beat.join()
        return True

    def _anything_running(self) -> bool:
        with self.sessions() as session:
            return has_running_jobs(session)

    def _claim(self) -> ClaimedJob | None:
        with self.sessions.begin() as session:
            if time.monotonic() - self._last_reap > min(self.lease_s / 4, 5.0):
                self._last_reap = time.monotonic()
                reap_expired(session)
            return claim_job(session, self.kinds, self.owner, self.lease_s, self.run_id)

    def _execute(self, ctx: JobContext) -> None:
        job = ctx.job
        try:
            result = self.handlers[job.kind](ctx)
            with self.sessions.begin() as session:
                complete_job(session, job.id, self.owner, result, progress=ctx.progress or None)
                refresh_run_after_job(session, job.run_id)
            ctx.event("Job succeeded", attempt=job.attempt)
        except JobLeaseLost as exc:
            log.warning("job %s abandoned: %s", job.id, exc)
            self._stopped_event(ctx, exc)
        except WorkerStopping:
            self._release(ctx)
        except Exception as exc:  # noqa: BLE001 - any handler failure is recorded on the row
            error = f"{type(exc).__name__}: {exc}"
            retryable = not isinstance(exc, PermanentJobError)
            try:
                with self.sessions.begin() as session:
                    status = fail_job(
                        session,
                        job.id,
                        self.owner,
                        error,
                        retryable=retryable,
                        backoff_s=self.retry_backoff_s * job.attempt,
                    )
                    refresh_run_after_job(session, job.run_id)
                log.warning("job %s (%s) attempt %d failed -> %s", job.id, job.kind, job.attempt, status, exc_info=exc)
                self._failed_event(ctx, status, error)
            except JobLeaseLost as lost:
                log.warning("job %s failed after its lease was lost: %s", job.id, lost)
                self._stopped_event(ctx, lost)

    def _release(self, ctx: JobContext) -> None:
        """Put the job back (attempt not spent); its checkpoints let the next worker resume it."""
        try:
            with self.sessions.begin() as session:
                release_job(session, ctx.job.id, self.owner)
        except JobLeaseLost as exc:
            log.warning("job %s could not be handed back: %s", ctx.job.id, exc)
            return
        ctx.event(
            f"Worker {self.owner} stopped; the job is back in the queue", level="warning", attempt=ctx.job.attempt
        )

    def _failed_event(self, ctx: JobContext, status: str, error: str) -> None:
        job, first_line = ctx.job, error.splitlines()[0]
        attempt = f"attempt {job.attempt} of {job.max_attempts}"
        if status == "queued":
            ctx.event(
                f"Job {attempt} failed; will retry: {first_line}",
                level="warning",
                attempt=job.attempt,
                error=first_line,
                retrying=True,
            )
        else:
            ctx.event(
                f"Job failed ({attempt}): {first_line}",
                level="error",
                attempt=job.attempt,
                error=first_line,
                retrying=False,
            )

    def _stopped_event(self, ctx: JobContext, exc: JobLeaseLost) -> None:
        if isinstance(exc, JobCancelled):
            ctx.event(f"Worker {self.owner} stopped: the job was cancelled", attempt=ctx.job.attempt)
        else:
            ctx.event(
                f"Worker {self.owner} stopped: it lost the job's lease ({exc})",
                level="warning",
                attempt=ctx.job.attempt,
            )

    def _heartbeat_loop(self, ctx: JobContext, stop: threading.Event) -> None:
        while not stop.wait(self.heartbeat_s):
            try:
                with self.sessions.begin() as session:
                    heartbeat(session, ctx.job.id, self.owner, self.lease_s, ctx.progress or None)
            except JobLeaseLost as exc:
                ctx.lost_reason = str(exc)
                ctx.cancelled = isinstance(exc, JobCancelled)
                ctx.lost.set()
                return
            except Exception:  # noqa: BLE001 - a DB hiccup must not kill the job; the next beat retries
                log.exception("heartbeat for job %s failed", ctx.job.id)
