"""Queue throughput: claims/s with 1, 2 and 4 worker processes on SQLite and PostgreSQL.

    .venv/bin/python bench/queue.py [--jobs 400]

Each configuration gets a fresh database, N no-op jobs and K real worker processes
(tests/support/queue_worker.py); claims/s = N / (last completion - first claim), so process
start-up is not counted. Every execution is logged by the worker itself, so duplicates and
lost jobs are counted independently of what the database says. PostgreSQL: the server at
W2S_TEST_POSTGRES_URL, else a throwaway cluster with default (durable) settings.
The last line printed is one JSON object.
"""

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

# This file is named like the stdlib `queue`: drop bench/ from the path, put the repo root there.
sys.path[0] = str(Path(__file__).resolve().parents[1])

from service.store.migrate import upgrade  # noqa: E402
from tests.support.postgres import EphemeralPostgres, create_database, drop_database  # noqa: E402
from tests.support.queue_runs import collect, enqueue_noops, start_worker, wait_all  # noqa: E402

WORKER_COUNTS = (1, 2, 4)


def measure(database_url: str, jobs: int, workers: int) -> tuple[float, int, int]:
    """(claims/s, duplicates, lost) for one configuration."""
    upgrade(database_url)
    job_ids = enqueue_noops(database_url, jobs)
    with tempfile.TemporaryDirectory() as out:
        procs = [start_worker(database_url, Path(out)) for _ in range(workers)]
        wait_all(procs, timeout_s=600)
        runs = collect(Path(out))
    duplicates = sum(n - 1 for n in runs.job_ids.values() if n > 1)
    lost = len(set(job_ids) - set(runs.job_ids))
    return jobs / (runs.last_done - runs.first_claim), duplicates, lost


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=400)
    args = parser.parse_args()

    results: dict = {"sqlite": {}, "postgres": {}, "duplicates": 0, "lost": 0}
    server = None
    pg_url = os.environ.get("W2S_TEST_POSTGRES_URL")
    if not pg_url:
        server = EphemeralPostgres(durable=True).start()
        pg_url = server.url
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for workers in WORKER_COUNTS:
                for backend in ("sqlite", "postgres"):
                    url = (
                        f"sqlite:///{tmp}/q{workers}.db"
                        if backend == "sqlite"
                        else create_database(pg_url, "w2s_bench")
                    )
                    rate, duplicates, lost = measure(url, args.jobs, workers)
                    if backend == "postgres":
                        drop_database(url)
                    results[backend][str(workers)] = round(rate, 1)
                    results["duplicates"] += duplicates
                    results["lost"] += lost
                    print(
                        f"{backend:8s} workers={workers}  {rate:8.1f} claims/s  duplicates={duplicates} lost={lost}",
                        flush=True,
                    )
    finally:
        if server:
            server.stop()
    print(json.dumps(results))


if __name__ == "__main__":
    main()
