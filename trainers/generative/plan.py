"""A generative run config -> the run's row and its DAG of jobs.

    gen_ingest -> gen_weak -> gen_refine:<method> -> gen_strong:w2s_refined:<method> ┐
                        └-> gen_strong:w2s                                         ├-> gen_report
    gen_ingest -> gen_strong:ceiling                                               ┘

once per training seed of `seeds` (everything but ingest and report); seed s > 0 prefixes its steps with
`s<s>/` and its model names with `s<s>-`. Idempotency keys are `run<id>:<step>`, so submitting the same
config again resumes its run.
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
from trainers.pipeline.plan import AddJob, job_adder, open_run, requeue_run, seed_condition

GENERATIVE_JOB_KINDS = tuple(kind for kind in JOB_KINDS if kind.startswith("gen_"))
REFERENCE = "reference"  # the source of ceiling targets: the examples' own reference outputs


def _seed_part(seed: int) -> str:
    """Seed 0's names carry no seed, so a single-seed run keeps the names runs had before `seeds`."""
    return "" if seed == 0 else f"s{seed}-"


def generative_model_name(run_id: int, condition: str, seed: int = 0) -> str:
    """`w2s_refined:icl` -> `run7-gen-w2s_refined-icl`, `run7-gen-s1-w2s_refined-icl` for seed 1 (also a
    directory and served-name stem)."""
    return f"run{run_id}-gen-{_seed_part(seed)}{condition.replace(':', '-')}"


def refiner_model_name(run_id: int, method: str, seed: int = 0) -> str:
    return f"run{run_id}-refine-{_seed_part(seed)}{method}"


def seed_step(seed: int, step: str) -> str:
    """A step of training seed `seed`: `gen_weak`, or `s1/gen_weak` (as `trainers.pipeline.plan` keys them)."""
    return step if seed == 0 else seed_condition(seed, step)


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
    finals = [job for seed in config.seeds for job in _plan_seed(add, run_id, config, seed, ingest)]
    add("gen_report", GenReportPayload(run_id=run_id), finals, priority=-10)
    return jobs


def _plan_seed(add: AddJob, run_id: int, config: GenerativeRunConfig, seed: int, ingest: int) -> list[int]:
    """Training seed `seed`'s weak SFT, refinements and strong models; the jobs the report waits for."""
    weak = add(seed_step(seed, "gen_weak"), GenWeakPayload(run_id=run_id, seed=seed), [ingest], priority=5)
    w2s = GenStrongPayload(
        run_id=run_id, condition="w2s", source=generative_model_name(run_id, "weak", seed), seed=seed
    )
    finals = [weak, add(seed_step(seed, "gen_strong:w2s"), w2s, [weak])]
    for method in config.refinement.methods:
        refine_payload = GenRefinePayload(run_id=run_id, method=method, seed=seed)
        refine = add(seed_step(seed, f"gen_refine:{method}"), refine_payload, [weak], priority=5)
        condition = f"w2s_refined:{method}"
        source = refiner_model_name(run_id, method, seed)
        refined = GenStrongPayload(run_id=run_id, condition=condition, source=source, seed=seed)
        finals.append(add(seed_step(seed, f"gen_strong:{condition}"), refined, [refine]))
    ceiling = GenStrongPayload(run_id=run_id, condition="ceiling", source=REFERENCE, seed=seed)
    finals.append(add(seed_step(seed, "gen_strong:ceiling"), ceiling, [ingest]))
    return finals
