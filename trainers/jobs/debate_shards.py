"""The debates of one `debate` job, and how the batch API cuts its debates into jobs.

A run's shard is (protocol, seed, offset, limit) over the run's examples in id order, so the
plan can be made before the examples exist. Market-making debates also read the naive weak
model's out-of-sample soft label of each example (cross-fitted on weak_train), which exists
only once that model's job has succeeded. A batch's job lists its debates outright.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from debate import DebateSpec
from trainers.jobs.payloads import DebateItemsPayload, DebatePayload, DebateShardPayload, enqueue
from trainers.jobs.run_rows import load_run, model_by_name, model_labels, run_examples
from trainers.pipeline.config import debate_template
from trainers.pipeline.crossfit import crossfit_model_name


def debate_items(session: Session, payload: DebatePayload) -> list[tuple[int, DebateSpec]]:
    """(example id, spec) for every debate of the job."""
    if isinstance(payload, DebateItemsPayload):
        return payload.specs()
    return shard_items(session, payload)


def shard_items(session: Session, payload: DebateShardPayload) -> list[tuple[int, DebateSpec]]:
    """(example id, spec) for every example of a run's shard."""
    _, config = load_run(session, payload.run_id)
    template = debate_template(config, payload.protocol, seed=payload.seed, model=payload.model)
    examples = run_examples(session, payload.run_id)[payload.offset : payload.offset + payload.limit]
    predictions: dict[int, float] = {}
    if payload.weak_model_member is not None:  # its out-of-sample predictions: cross-fitted on weak_train
        naive = model_by_name(session, crossfit_model_name(payload.run_id, payload.weak_model_member))
        predictions = model_labels(session, naive.id)
    return [
        (
            example.id,
            template.with_example(example.question, example.candidate, example.context, predictions.get(example.id)),
        )
        for example in examples
    ]


def enqueue_debate_items(
    session: Session,
    run_id: int,
    items: list[tuple[int, DebateSpec]],
    *,
    shard_size: int,
    key_prefix: str,
    depends_on: tuple[int, ...] = (),
) -> list[int]:
    """One `debate` job per `shard_size` (example_id, spec) pairs; returns the job ids."""
    return [
        enqueue(
            session,
            DebateItemsPayload.of(run_id, items[start : start + shard_size]),
            idempotency_key=f"{key_prefix}:shard{shard}",
            depends_on=depends_on,
            run_id=run_id,
            max_attempts=5,
        ).id
        for shard, start in enumerate(range(0, len(items), shard_size))
    ]
