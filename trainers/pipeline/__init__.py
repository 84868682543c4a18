"""Experiments end to end: a run config becomes a DAG of jobs (ingest -> debates -> weak members
-> ensembles -> strong conditions -> report) that workers of each kind execute.

    handlers = pipeline_handlers(env)       # job kind -> handler, for trainers.worker.Worker
"""

from __future__ import annotations

from trainers.pipeline.config import RunConfig, RunConfigError, load_run_config, parse_run_config
from trainers.pipeline.env import WorkerEnv
from trainers.pipeline.plan import JOB_KINDS, submit_run
from trainers.worker import Handler


def pipeline_handlers(env: WorkerEnv, *, max_in_flight: int = 64) -> dict[str, Handler]:
    """A handler for every job kind of a run (the debate one talks to `env.vllm_base_url`).

    Imported here, not at the top: the API imports this package to validate and plan runs
    and should not load torch and transformers for that.
    """
    from trainers.debate_job import debate_handler
    from trainers.pipeline.ensemble_job import ensemble_handler
    from trainers.pipeline.generative_jobs import (
        gen_ingest_handler,
        gen_refine_handler,
        gen_report_handler,
        gen_strong_handler,
        gen_weak_handler,
    )
    from trainers.pipeline.ingest import ingest_handler
    from trainers.pipeline.report_job import report_handler
    from trainers.pipeline.strong_job import strong_handler
    from trainers.pipeline.weak_job import weak_handler

    return {
        "ingest": ingest_handler(env),
        "debate": debate_handler(env.vllm_base_url, api_key=env.vllm_api_key, max_in_flight=max_in_flight),
        "weak": weak_handler(env),
        "ensemble": ensemble_handler(env),
        "strong": strong_handler(env),
        "report": report_handler(env),
        "gen_ingest": gen_ingest_handler(env),
        "gen_weak": gen_weak_handler(env),
        "gen_refine": gen_refine_handler(env),
        "gen_strong": gen_strong_handler(env),
        "gen_report": gen_report_handler(env),
    }


__all__ = ["JOB_KINDS", "RunConfig", "RunConfigError", "WorkerEnv", "load_run_config", "parse_run_config",
           "pipeline_handlers", "submit_run"]
