"""The `report` job: PGR over seeds and its interval into `metrics`, then report.md / report.json / pgr.png on disk."""

from __future__ import annotations

from typing import Any

from trainers.jobs.env import WorkerEnv
from trainers.jobs.payloads import job_payload
from trainers.report import build_report, compute_pgr, report_json, write_report_files
from trainers.worker import JobContext


def report_handler(env: WorkerEnv):  # noqa: ANN201 - a trainers.worker.Handler
    def handle(ctx: JobContext) -> dict[str, Any]:
        run_id = job_payload(ctx).run_id
        with ctx.sessions.begin() as session:
            compute_pgr(session, run_id)
        with ctx.sessions() as session:
            report = build_report(session, run_id)
        files = write_report_files(report, env.run_dir(run_id))
        return {"files": {name: str(path) for name, path in files.items()}, "report": report_json(report)}

    return handle
