"""Start N queue_worker processes against a database and collect what they executed."""

import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from service.store import make_engine, make_session_factory
from service.store.jobs import enqueue_job

REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Executions:
    job_ids: Counter
    first_claim: float
    last_done: float


def enqueue_noops(database_url: str, count: int, sleep_s: float = 0.0, max_attempts: int = 3) -> list[int]:
    engine = make_engine(database_url)
    try:
        with make_session_factory(engine).begin() as session:
            return [
                enqueue_job(session, "noop", {"sleep_s": sleep_s}, max_attempts=max_attempts).id for _ in range(count)
            ]
    finally:
        engine.dispose()


def start_worker(database_url: str, out_dir: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.support.queue_worker", database_url, str(out_dir), *extra],
        cwd=REPO_ROOT,
    )


def wait_all(procs: list[subprocess.Popen], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    for proc in procs:
        proc.wait(timeout=max(1.0, deadline - time.monotonic()))


def collect(out_dir: Path) -> Executions:
    rows = [line.split() for log in out_dir.glob("*.log") for line in log.read_text().splitlines()]
    return Executions(
        job_ids=Counter(int(row[0]) for row in rows),
        first_claim=min((float(row[3]) for row in rows), default=0.0),
        last_done=max((float(row[4]) for row in rows), default=0.0),
    )
