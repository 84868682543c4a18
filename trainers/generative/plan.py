"""A generative run config -> the run's row and its DAG of jobs.

    gen_ingest -> gen_weak -> gen_refine:<method> -> gen_strong:w2s_refined:<method> ┐
                        └-> gen_strong:w2s                                         ├-> gen_report
    gen_ingest -> gen_strong:ceiling                                               ┘

Idempotency keys are `run<id>:<step>`, so submitting the same config again resumes its run.
Payloads (`trainers.jobs.payloads`) name the step; the handlers (`trainers.jobs.generative_jobs`) read the
rest from the run's stored config.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from service.store.models import Run
from service.store.runs import config_hash
from trainers.generative.config import GenerativeRunConfig
from trainers.jobs.payloads import (
    JOB_KINDS,
    GenIngestPayload,
    GenRefinePayload,
    GenReportPayload,
    GenStrongPayload,
    GenWeakPayload,
)
from trainers.pipeline.plan import job_adder, open_run, requeue_run

GENERATIVE_JOB_KINDS = tuple(kind for kind in JOB_KINDS if kind.startswith("gen_"))
REFERENCE = "reference"  # the source of ceiling targets: the examples' own reference outputs


def generative_model_name(run_id: int, condition: str) -> str:
    """`w2s_refined:icl` -> `run7-gen-w2s_refined-icl` (also a directory and served-name stem)."""
    return f"run{run_id}-gen-{condition.replace(':', '-')}"


def refiner_model_name(run_id: int, method: str) -> str:
    return f"run{run_id}-refine-{method}"


def submit_generative_run(
    session: Session, config: GenerativeRunConfig, *, strong_model: str, code_version: str = ""
) -> tuple[Run, bool]:
    digest = config_hash({**config.model_dump(mode="json", exclude={"name"}), "resolved_strong_model": strong_model})
    run, created = open_run(session, config, digest, strong_model=strong_model, code_version=code_version)
    plan_generative_jobs(session, run.id, config)
    if not created:
        requeue_run(session, run)
    return run, created


def plan_generative_jobs(session: Session, run_id: int, config: GenerativeRunConfig) -> dict[str, int]:
    jobs: dict[str, int] = {}
    add = job_adder(session, run_id, jobs)
    ingest = add("gen_ingest", GenIngestPayload(run_id=run_id), [], priority=10)
    weak = add("gen_weak", GenWeakPayload(run_id=run_id), [ingest], priority=5)
    weak_name = generative_model_name(run_id, "weak")
    w2s = GenStrongPayload(run_id=run_id, condition="w2s", source=weak_name)
    finals = [weak, add("gen_strong:w2s", w2s, [weak])]
    for method in config.refinement.methods:
        refine = add(f"gen_refine:{method}", GenRefinePayload(run_id=run_id, method=method), [weak], priority=5)
        condition = f"w2s_refined:{method}"
        refined = GenStrongPayload(run_id=run_id, condition=condition, source=refiner_model_name(run_id, method))
        finals.append(add(f"gen_strong:{condition}", refined, [refine]))
    ceiling = GenStrongPayload(run_id=run_id, condition="ceiling", source=REFERENCE)
    finals.append(add("gen_strong:ceiling", ceiling, [ingest]))
    add("gen_report", GenReportPayload(run_id=run_id), finals, priority=-10)
    return jobs
