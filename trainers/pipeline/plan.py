"""A run config -> the run's row and its DAG of jobs (ingest -> debates -> weak -> ensembles -> strong -> report,
and with `refinement`: ensembles -> refine_labels:<method> -> strong on the refined labels).

Every job has an idempotency key derived from the run and the step, so planning the same run
again finds the jobs it made before: re-submitting a config resumes its run, and steps that
already succeeded are not repeated. Payloads name *what* to do (run, protocol, seed, member,
condition); the handlers read the rest from the run's stored config.

Every training seed of the config (`seeds`) gets its own weak members, ensembles, W2S strong
models and ceiling, so everything per seed carries it: step keys and metric conditions as
`s<seed>/…` (`s1/ensemble:debate_ensemble`, `s1/w2s:debate_ensemble:xent`, `s1/ceiling`), model
names as `s<seed>-…` (`run7-weak-s1-debate-d0-t4`, `run7-strong-s1-w2s-debate_ensemble-xent`).
Debate shards are keyed by their debate seed (`debate:debate:d2:shard0`) and shared by every
seed that reads those debates.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from service.store.jobs import retry_job
from service.store.models import Job, Run
from service.store.runs import config_hash
from trainers.jobs.payloads import (
    DebateShardPayload,
    EnsemblePayload,
    GroundTruthSource,
    IngestPayload,
    JobPayload,
    LabelsModelNameSource,
    Member,
    RefineLabelsPayload,
    ReportPayload,
    RunStrongPayload,
    SplitSource,
    WeakPayload,
    enqueue,
)
from trainers.pipeline.config import RunConfig


@dataclass(frozen=True)
class RunSeed:
    """One training seed of a run and the debate and finetuning seeds its weak members get.

    Seed s owns the training seeds s*k .. s*k+k-1, so members of different seeds never share
    one, and seed 0 keeps the seeds a run had before `seeds` existed (0, or 0..k-1 for a
    finetune ensemble).
    """

    value: int
    k: int  # ensemble size
    debate_base: int  # first debate seed its members read: 0, or j*k with `debate.resample_per_seed`

    def member(self, context: str, debate: int, train: int) -> Member:
        """Member with the `debate`-th debate sample and the `train`-th finetuning seed of this seed."""
        return Member(
            self.value, context, 0 if context == "none" else self.debate_base + debate, self.value * self.k + train
        )

    @property
    def naive(self) -> Member:
        return self.member("none", 0, 0)


def run_seeds(config: RunConfig) -> list[RunSeed]:
    k = config.ensemble_size
    return [
        RunSeed(seed, k, index * k if config.debate.resample_per_seed else 0) for index, seed in enumerate(config.seeds)
    ]


def condition_members(condition: str, seed: RunSeed) -> list[Member]:
    """The weak members whose averaged labels make `condition` (Lang et al. 2025, section 3)."""
    k = range(seed.k)
    members = {
        "no_debate": [seed.naive],
        "single_debate": [seed.member("debate", 0, 0)],
        "debate_ensemble": [seed.member("debate", i, 0) for i in k],  # a different debate sample each
        "finetune_ensemble": [seed.member("debate", 0, i) for i in k],  # one transcript, k finetune seeds
        "consultancy": [seed.member("consultancy", i, 0) for i in k],
        "market_making": [seed.member("market_making", i, 0) for i in k],
    }
    return members[condition]


SEEDED = re.compile(r"s(\d+)/(.+)")


def seed_condition(seed: int, condition: str) -> str:
    """The per-seed name of a metric condition or step: `s<seed>/<condition>` (e.g. `s1/weak:no_debate`)."""
    return f"s{seed}/{condition}"


def split_seed_condition(condition: str) -> tuple[int, str] | None:
    """`s<seed>/<condition>` -> (seed, condition); None for a condition of no single seed."""
    match = SEEDED.fullmatch(condition)
    return (int(match[1]), match[2]) if match else None


def weak_model_name(run_id: int, member: Member) -> str:
    return f"run{run_id}-weak-{member.key}"


def condition_model_name(run_id: int, seed: int, condition: str) -> str:
    return f"run{run_id}-weak-s{seed}-{condition}"


REFINED = ":refined_"


def refined_condition(condition: str, method: str) -> str:
    """The report's name for `condition`'s weak labels after refinement: `debate_ensemble:refined_icl`."""
    return f"{condition}{REFINED}{method}"


def weak_condition_of(condition: str) -> str:
    """The weak condition a (possibly refined) condition's labels come from: `c:refined_icl` -> `c`."""
    return condition.split(REFINED)[0]


def refined_labels_name(run_id: int, seed: int, condition: str, method: str) -> str:
    """The model row holding `condition`'s strong_train labels as the strong model refined them."""
    return f"run{run_id}-refined-s{seed}-{condition}-{method}"


def strong_model_name(run_id: int, condition: str) -> str:
    """A name that is also a directory name: `s1/w2s:c:xent` -> `run7-strong-s1-w2s-c-xent`."""
    return f"run{run_id}-strong-{condition.replace('/', '-').replace(':', '-')}"


def run_hash(config: RunConfig, strong_model: str) -> str:
    return config_hash({**config.hash_fields(), "resolved_strong_model": strong_model})


def submit_run(session: Session, config: RunConfig, *, strong_model: str, code_version: str = "") -> tuple[Run, bool]:
    """The run for this config (created if new) with all its jobs; (run, created).

    An existing run with the same hash is resumed: its failed or cancelled jobs go back
    in the queue; succeeded ones stay done.
    """
    run, created = open_run(
        session, config, run_hash(config, strong_model), strong_model=strong_model, code_version=code_version
    )
    plan_jobs(session, run.id, config, strong_model)
    if not created:
        requeue_run(session, run)
    return run, created


def open_run(
    session: Session, config: BaseModel, digest: str, *, strong_model: str, code_version: str
) -> tuple[Run, bool]:
    """The newest experiment run with this config hash, or a new one storing `config`; (run, created)."""
    run = session.scalars(
        select(Run).where(Run.kind == "experiment", Run.config_hash == digest).order_by(Run.id.desc())
    ).first()
    if run is not None:
        return run, False
    stored = {**config.model_dump(mode="json"), "resolved": {"strong_model": strong_model}}
    run = Run(kind="experiment", name=config.name, config=stored, config_hash=digest, code_version=code_version)
    session.add(run)
    session.flush()
    return run, True


def requeue_run(session: Session, run: Run) -> None:
    """Resume a run: its failed or cancelled jobs go back in the queue; succeeded ones stay done."""
    for job in session.scalars(select(Job).where(Job.run_id == run.id, Job.status.in_(("failed", "cancelled")))):
        retry_job(session, job.id)
    run.status, run.finished_at, run.error = "queued", None, None
    session.flush()


# job_adder's `add(step, payload, depends_on, priority=0) -> job id`
AddJob = Callable[..., int]


def job_adder(session: Session, run_id: int, jobs: dict[str, int]) -> AddJob:
    """`add(step, payload, depends_on, priority=0) -> job id`: enqueue (or find) the run's job for `step`,
    keyed `run<id>:<step>`, and record it in `jobs`."""

    def add(step: str, payload: JobPayload, depends_on: list[int], priority: int = 0) -> int:
        job = enqueue(
            session,
            payload,
            idempotency_key=f"run{run_id}:{step}",
            depends_on=depends_on,
            run_id=run_id,
            priority=priority,
            max_attempts=3,
        )
        jobs[step] = job.id
        return job.id

    return add


def plan_jobs(session: Session, run_id: int, config: RunConfig, strong_model: str) -> dict[str, int]:
    """Enqueue (or find) every job of the run; returns step key -> job id."""
    jobs: dict[str, int] = {}
    add = job_adder(session, run_id, jobs)
    ingest = add("ingest", IngestPayload(run_id=run_id), [], priority=10)
    weak_jobs: dict[Member, int] = {}

    def weak(member: Member, naive: Member) -> int:
        """The member's job, planned once; market-making debates first need `naive`'s job."""
        if member not in weak_jobs:
            naive_job = weak(naive, naive) if member.context == "market_making" else None
            debates = _debate_shards(add, run_id, config, member, ingest, naive, naive_job, strong_model)
            weak_jobs[member] = add(f"weak:{member.key}", WeakPayload(run_id=run_id, member=member), [ingest, *debates])
        return weak_jobs[member]

    seeds = run_seeds(config)
    finals = []
    for seed in seeds:
        # Market-making argues against the naive weak model's choice: the seed's own when its
        # debates are its own, else the first seed's, whose debates every seed shares.
        naive = (seed if config.debate.resample_per_seed else seeds[0]).naive
        for condition in config.conditions:
            chosen = condition_members(condition, seed)
            ensemble = add(
                seed_condition(seed.value, f"ensemble:{condition}"),
                EnsemblePayload(run_id=run_id, condition=condition, seed=seed.value, members=chosen),
                [weak(m, naive) for m in chosen],
            )
            finals.append(ensemble)
            labels = LabelsModelNameSource(labels_model_name=condition_model_name(run_id, seed.value, condition))
            sources = [(condition, labels, ensemble)]
            for method in config.refinement_methods:
                refine = add(
                    seed_condition(seed.value, f"refine:{condition}:{method}"),
                    RefineLabelsPayload(run_id=run_id, seed=seed.value, condition=condition, method=method),
                    [ensemble],
                    priority=5,
                )
                refined = refined_labels_name(run_id, seed.value, condition, method)
                sources.append(
                    (refined_condition(condition, method), LabelsModelNameSource(labels_model_name=refined), refine)
                )
            for name, source, after in sources:
                for loss in config.strong.losses:
                    w2s = seed_condition(seed.value, f"w2s:{name}:{loss}")
                    finals.append(
                        add(
                            seed_condition(seed.value, f"strong:w2s:{name}:{loss}"),
                            _strong_payload(run_id, w2s, seed.value, loss, strong_model, source),
                            [after],
                        )
                    )
        ceiling = _strong_payload(
            run_id,
            seed_condition(seed.value, "ceiling"),
            seed.value,
            "xent",
            strong_model,
            GroundTruthSource(ground_truth=True),
        )
        finals.append(add(seed_condition(seed.value, "strong:ceiling"), ceiling, [ingest]))
    add("report", ReportPayload(run_id=run_id), finals, priority=-10)
    return jobs


def _debate_shards(
    add: AddJob,
    run_id: int,
    config: RunConfig,
    member: Member,
    ingest: int,
    naive: Member,
    naive_job: int | None,
    strong_model: str,
) -> list[int]:
    """The debate jobs whose transcripts `member` reads (shared by members with the same debates)."""
    if member.context == "none":
        return []
    total = sum(config.splits.values())
    size = config.debate.shard_size
    market_making = member.context == "market_making"
    depends = [ingest, naive_job] if market_making else [ingest]
    return [
        add(
            f"debate:{member.context}:d{member.debate_seed}:shard{i}",
            DebateShardPayload(
                run_id=run_id,
                protocol=member.context,
                seed=member.debate_seed,
                offset=i * size,
                limit=size,
                model=strong_model,
                weak_model_member=naive if market_making else None,
            ),
            depends,
            priority=5,
        )
        for i in range(math.ceil(total / size))
    ]


def _strong_payload(
    run_id: int, condition: str, seed: int, loss: str, base_model: str, train: LabelsModelNameSource | GroundTruthSource
) -> RunStrongPayload:
    return RunStrongPayload(
        run_id=run_id,
        condition=condition,
        seed=seed,
        loss=loss,
        base_model=base_model,
        train=train,
        validation=SplitSource(split="test"),
    )
