"""The debate items of a run's debate shard: resolved from the database when the job runs.

A shard is (protocol, seed, offset, limit) over the run's examples in id order, so the plan
can be made before the examples exist. Market-making debates also read the naive weak
model's out-of-sample soft label of each example (cross-fitted on weak_train), which exists
only once that model's job has succeeded.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from debate import DebateSpec
from trainers.pipeline.config import debate_template
from trainers.pipeline.crossfit import crossfit_model_name
from trainers.pipeline.plan import Member
from trainers.jobs.run_rows import load_run, model_by_name, model_labels, run_examples


def shard_items(session: Session, payload: dict[str, Any]) -> list[tuple[int, DebateSpec]]:
    """(example id, spec) for every example of the shard."""
    run_id = payload["run_id"]
    _, config = load_run(session, run_id)
    template = debate_template(config, payload["protocol"], seed=payload["seed"], model=payload["model"])
    examples = run_examples(session, run_id)[payload["offset"]:payload["offset"] + payload["limit"]]
    predictions: dict[int, float] = {}
    if "weak_model_member" in payload:  # its out-of-sample predictions: cross-fitted on weak_train
        naive = model_by_name(session, crossfit_model_name(run_id, Member(**payload["weak_model_member"])))
        predictions = model_labels(session, naive.id)
    return [
        (example.id, template.with_example(example.question, example.candidate, example.context,
                                           predictions.get(example.id)))
        for example in examples
    ]
