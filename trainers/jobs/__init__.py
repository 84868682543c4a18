"""Every job kind's handler (and, in `trainers.jobs.payloads`, its payload), one module per kind.

    handlers = pipeline_handlers(env)       # job kind -> handler, for trainers.worker.Worker

| kind | module | does |
|---|---|---|
| ingest | `ingest_job` | load the task, split it, write `examples` |
| debate | `debate_job` (+ `debate_shards`) | run a shard of debates against the strong model |
| weak | `weak_job` (+ `weak_inputs`) | train one weak member, write its soft labels |
| ensemble | `ensemble_job` | average the members' labels into a condition's weak model |
| refine_labels | `refine_job` | the served strong model relabels a condition's weak labels (refinement) |
| strong | `strong_job` | finetune the strong model on weak labels, evaluate, publish |
| report | `report_job` | PGR and the report files |
| gen_ingest, gen_weak, gen_refine, gen_strong, gen_report | `generative_jobs` | a generative run's steps |

Every handler starts with `payloads.job_payload(ctx)`: the claimed row's typed payload.
`env.WorkerEnv` is what a handler needs from its machine; `run_rows` reads and writes a run's rows;
`progress` puts a training run's progress on the job row.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from trainers.worker import Handler

if TYPE_CHECKING:  # importing env loads torch; the API imports this package for the payloads only
    from trainers.jobs.env import WorkerEnv


def pipeline_handlers(env: WorkerEnv, *, max_in_flight: int = 64) -> dict[str, Handler]:
    """A handler for every job kind of a run (the debate one talks to the replicas `env.vllm_base_urls`).

    Imported here, not at the top: the API imports this package to enqueue and describe jobs
    and should not load torch and transformers for that.
    """
    from trainers.jobs.debate_job import debate_handler
    from trainers.jobs.ensemble_job import ensemble_handler
    from trainers.jobs.generative_jobs import (
        gen_ingest_handler,
        gen_refine_handler,
        gen_report_handler,
        gen_strong_handler,
        gen_weak_handler,
    )
    from trainers.jobs.ingest_job import ingest_handler
    from trainers.jobs.refine_job import refine_labels_handler
    from trainers.jobs.report_job import report_handler
    from trainers.jobs.strong_job import strong_handler
    from trainers.jobs.weak_job import weak_handler

    return {
        "ingest": ingest_handler(env),
        "debate": debate_handler(
            env.vllm_base_urls,
            api_key=env.vllm_api_key,
            max_in_flight=max_in_flight,
            affinity=env.vllm_pool_affinity,
            check_interval_s=env.vllm_health_interval_s,
        ),
        "weak": weak_handler(env),
        "ensemble": ensemble_handler(env),
        "strong": strong_handler(env),
        "refine_labels": refine_labels_handler(env),
        "report": report_handler(env),
        "gen_ingest": gen_ingest_handler(env),
        "gen_weak": gen_weak_handler(env),
        "gen_refine": gen_refine_handler(env),
        "gen_strong": gen_strong_handler(env),
        "gen_report": gen_report_handler(env),
    }


__all__ = ["pipeline_handlers"]
