"""A run config -> the run's row and its DAG of jobs (ingest -> debates -> weak -> ensembles -> strong -> report).

Every job has an idempotency key derived from the run and the step, so planning the same run
again finds the jobs it made before: re-submitting a config resumes its run, and steps that
already succeeded are not repeated. Payloads name *what* to do (run, protocol, seed, member,
condition); the handlers read the rest from the run's stored config.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.store.jobs import enqueue_job, retry_job
from service.store.models import Job, Run
from service.store.runs import config_hash
from trainers.pipeline.config import RunConfig

JOB_KINDS = ("ingest", "debate", "weak", "ensemble", "strong", "report")


@dataclass(frozen=True, order=True)
class Member:
    """One weak model to train: its transcript source and its finetuning seed."""

    context: str  # "none" (no transcript) or a debate protocol: "debate" | "consultancy" | "market_making"
    debate_seed: int
    train_seed: int

    @property
    def key(self) -> str:
        if self.context == "none":
            return f"none-t{self.train_seed}"
        return f"{self.context}-d{self.debate_seed}-t{self.train_seed}"


NAIVE = Member("none", 0, 0)


def condition_members(condition: str, k: int) -> list[Member]:
    """The weak members whose averaged labels make `condition` (Lang et al. 2025, section 3)."""
    members = {
        "no_debate": [NAIVE],
        "single_debate": [Member("debate", 0, 0)],
        "debate_ensemble": [Member("debate", i, 0) for i in range(k)],  # a different debate sample each
        "finetune_ensemble": [Member("debate", 0, i) for i in range(k)],  # one transcript, k finetune seeds
        "consultancy": [Member("consultancy", i, 0) for i in range(k)],
        "market_making": [Member("market_making", i, 0) for i in range(k)],
    }
    return members[condition]


def weak_model_name(run_id: int, member: Member) -> str:
    return f"run{run_id}-weak-{member.key}"


def condition_model_name(run_id: int, condition: str) -> str:
    return f"run{run_id}-weak-{condition}"


def strong_model_name(run_id: int, condition: str) -> str:
    return f"run{run_id}-strong-{condition.replace(':', '-')}"


def run_hash(config: RunConfig, strong_model: str) -> str:
    return config_hash({**config.hash_fields(), "resolved_strong_model": strong_model})


def submit_run(session: Session, config: RunConfig, *, strong_model: str, code_version: str = "") -> tuple[Run, bool]:
    """The run for this config (created if new) with all its jobs; (run, created).

    An existing run with the same hash is resumed: its failed or cancelled jobs go back
    in the queue; succeeded ones stay done.
    """
    digest = run_hash(config, strong_model)
    run = session.scalars(select(Run).where(Run.kind == "experiment", Run.config_hash == digest)
                          .order_by(Run.id.desc())).first()
    created = run is None
    if run is None:
        stored = {**config.model_dump(mode="json"), "resolved": {"strong_model": strong_model}}
        run = Run(kind="experiment", name=config.name, config=stored, config_hash=digest, code_version=code_version)
        session.add(run)
        session.flush()
    plan_jobs(session, run.id, config, strong_model)
    if not created:
        for job in session.scalars(select(Job).where(Job.run_id == run.id, Job.status.in_(("failed", "cancelled")))):
            retry_job(session, job.id)
        run.status, run.finished_at, run.error = "queued", None, None
    session.flush()
    return run, created


def plan_jobs(session: Session, run_id: int, config: RunConfig, strong_model: str) -> dict[str, int]:
    """Enqueue (or find) every job of the run; returns step key -> job id."""
    jobs: dict[str, int] = {}

    def add(step: str, kind: str, payload: dict, depends_on: list[int], priority: int = 0) -> int:
        job = enqueue_job(session, kind, {"run_id": run_id, **payload}, idempotency_key=f"run{run_id}:{step}",
                          depends_on=depends_on, run_id=run_id, priority=priority, max_attempts=3)
        jobs[step] = job.id
        return job.id

    ingest = add("ingest", "ingest", {}, [], priority=10)
    members = sorted({m for c in config.conditions for m in condition_members(c, config.ensemble_size)})
    if any(m.context == "market_making" for m in members) and NAIVE not in members:
        members.insert(0, NAIVE)  # market-making argues against the naive weak model's choice
    weak_jobs: dict[Member, int] = {}
    for member in sorted(members, key=lambda m: m.context != "none"):  # naive first: market-making needs it
        debates = _debate_shards(add, config, member, ingest, weak_jobs, strong_model)
        weak_jobs[member] = add(f"weak:{member.key}", "weak", {"member": asdict(member)}, [ingest, *debates])
    finals = []
    for condition in config.conditions:
        chosen = condition_members(condition, config.ensemble_size)
        ensemble = add(f"ensemble:{condition}", "ensemble",
                       {"condition": condition, "members": [asdict(m) for m in chosen]},
                       [weak_jobs[m] for m in chosen])
        finals.append(ensemble)
        for loss in config.strong.losses:
            finals.append(add(f"strong:w2s:{condition}:{loss}", "strong",
                              _strong_payload(f"w2s:{condition}:{loss}", loss, strong_model,
                                              {"labels_model_name": condition_model_name(run_id, condition)}),
                              [ensemble]))
    finals.append(add("strong:ceiling", "strong", _strong_payload("ceiling", "xent", strong_model, {"ground_truth": True}),
                      [ingest]))
    add("report", "report", {}, finals, priority=-10)
    return jobs


def _debate_shards(add, config: RunConfig, member: Member, ingest: int, weak_jobs: dict[Member, int],  # noqa: ANN001
                   strong_model: str) -> list[int]:
    """The debate jobs whose transcripts `member` reads (shared by members with the same debates)."""
    if member.context == "none":
        return []
    total = sum(config.splits.values())
    size = config.debate.shard_size
    depends = [ingest]
    extra: dict = {}
    if member.context == "market_making":
        depends.append(weak_jobs[NAIVE])
        extra = {"weak_model_member": asdict(NAIVE)}
    return [
        add(f"debate:{member.context}:s{member.debate_seed}:shard{i}", "debate",
            {"protocol": member.context, "seed": member.debate_seed, "offset": i * size, "limit": size,
             "model": strong_model, **extra}, depends, priority=5)
        for i in range(math.ceil(total / size))
    ]


def _strong_payload(condition: str, loss: str, base_model: str, train: dict) -> dict:
    return {"condition": condition, "loss": loss, "base_model": base_model, "train": train,
            "validation": {"split": "test"}}
