"""A worker process for queue tests and bench/queue.py: runs `noop` jobs and records each run.

    python -m tests.support.queue_worker DATABASE_URL OUT_DIR [--lease-s S] [--heartbeat-s S]

Each handler run appends "job_id pid attempt t_claimed t_done" to OUT_DIR/<pid>.log, so a
job executed twice shows up twice whatever the database says. Exits when the queue is
idle (`Worker.run(exit_when_idle=True)`).
"""

import argparse
import os
import time
from pathlib import Path

from service.store import make_engine, make_session_factory
from trainers.worker import JobContext, Worker


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("database_url")
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--lease-s", type=float, default=30.0)
    parser.add_argument("--heartbeat-s", type=float, default=None)
    parser.add_argument("--poll-s", type=float, default=0.05)
    args = parser.parse_args()

    log_path = args.out_dir / f"{os.getpid()}.log"

    def noop(ctx: JobContext) -> dict:
        claimed = time.time()
        time.sleep(ctx.payload.get("sleep_s", 0.0))
        ctx.check()
        with log_path.open("a") as log:
            log.write(f"{ctx.job.id} {os.getpid()} {ctx.job.attempt} {claimed:.6f} {time.time():.6f}\n")
        return {"pid": os.getpid()}

    engine = make_engine(args.database_url)
    sessions = make_session_factory(engine)
    worker = Worker(
        sessions,
        {"noop": noop},
        lease_s=args.lease_s,
        heartbeat_s=args.heartbeat_s,
        poll_s=args.poll_s,
        retry_backoff_s=0.0,
    )
    worker.run(exit_when_idle=True)
    engine.dispose()


if __name__ == "__main__":
    main()
