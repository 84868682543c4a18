"""The `ensemble` job: average the members' soft labels into the labels of the condition's weak model.

A one-member condition (no_debate, single_debate) copies its member's labels, so every
condition has one weak model per training seed whose labels the strong model learns from and
whose test labels and metrics the report reads (condition `s<seed>/weak:<c>`).
"""

from __future__ import annotations

from statistics import fmean
from typing import Any

from trainers.classification_metrics import binary_metrics
from trainers.jobs.env import WorkerEnv
from trainers.jobs.payloads import job_payload
from trainers.jobs.run_rows import (
    get_or_create_model,
    labelled,
    load_run,
    model_by_name,
    model_labels,
    run_examples,
    scores,
    write_labels,
    write_metrics,
)
from trainers.pipeline.plan import condition_model_name, seed_condition, weak_model_name
from trainers.worker import JobContext, PermanentJobError


def average_labels(members: list[dict[int, float]]) -> dict[int, float]:
    """Mean soft label per example over members; every member must have labelled the same examples."""
    examples = set(members[0])
    for labels in members[1:]:
        if set(labels) != examples:
            raise PermanentJobError(
                f"ensemble members labelled different examples "
                f"({len(examples ^ set(labels))} differ); re-run the weak jobs"
            )
    return {example_id: fmean(labels[example_id] for labels in members) for example_id in sorted(examples)}


def ensemble_handler(_env: WorkerEnv):  # noqa: ANN201 - a trainers.worker.Handler
    def handle(ctx: JobContext) -> dict[str, Any]:
        payload = job_payload(ctx)
        run_id, condition, seed, members = payload.run_id, payload.condition, payload.seed, payload.members
        with ctx.sessions.begin() as session:
            load_run(session, run_id)  # fails clearly if the run was deleted
            rows = [model_by_name(session, weak_model_name(run_id, member)) for member in members]
            soft = average_labels([model_labels(session, row.id) for row in rows])
            model = get_or_create_model(
                session,
                condition_model_name(run_id, seed, condition),
                role="weak",
                base=rows[0].base,
                run_id=run_id,
                condition=condition,
                member=None,
                seed=seed,
                checkpoint_path=None,
            )
            write_labels(session, model.id, soft)
            ids, gold = labelled(run_examples(session, run_id, "test"))
            metrics = binary_metrics(gold, [soft[i] for i in ids])
            write_metrics(session, run_id, model.id, seed_condition(seed, f"weak:{condition}"), scores(metrics))
        return {"model_id": model.id, "members": [member.key for member in members], "test": metrics}

    return handle
