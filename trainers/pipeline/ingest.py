"""The `ingest` job: load the task, drop over-long examples (counted), split by seed, write `examples`.

All rows are written in one transaction, and `examples` is unique per (run, task, source,
candidate), so a retried ingest finds what an earlier attempt wrote instead of adding more.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from transformers import AutoTokenizer

from service.store.debates import add_example
from trainers.pipeline.config import RunConfig
from trainers.pipeline.env import WorkerEnv
from trainers.pipeline.rows import load_run
from trainers.tasks import TaskDataError, class_balance, drop_overlong, load_examples, split_examples
from trainers.worker import JobContext, PermanentJobError

# Tokens of the weak model's context kept free for the debate transcript: an example longer
# than max_length - TRANSCRIPT_RESERVE would leave (almost) no room for it, so it is dropped.
TRANSCRIPT_RESERVE = 64


def ingest_handler(env: WorkerEnv):  # noqa: ANN201 - a trainers.worker.Handler
    def handle(ctx: JobContext) -> dict[str, Any]:
        run_id = ctx.payload["run_id"]
        with ctx.sessions() as session:
            _, config = load_run(session, run_id)
        splits, dropped = _examples(config, env)
        ctx.report(0, 1, stage="writing examples")
        with ctx.sessions.begin() as session:
            for split, examples in splits.items():
                for example in examples:
                    add_example(session, run_id=run_id, task=example.task, source_id=example.source_id,
                                candidate_id=example.candidate_id, question=example.question,
                                candidate=example.candidate, context=example.context, label=example.label,
                                split=split)
        return {"dropped_overlong": dropped, "splits": {name: class_balance(rows) for name, rows in splits.items()}}

    return handle


def _examples(config: RunConfig, env: WorkerEnv) -> tuple[dict[str, list], int]:
    try:
        examples = load_examples(config.task, data_dir=Path(config.data_dir) if config.data_dir else None,
                                 seed=config.seed, limit=config.limit, size=sum(config.splits.values()))
    except TaskDataError as exc:
        raise PermanentJobError(str(exc)) from exc
    tokenizer = AutoTokenizer.from_pretrained(env.weak_model_path(config.weak.model))
    budget = config.weak.train.max_length - TRANSCRIPT_RESERVE
    kept, dropped = drop_overlong(examples, lambda text: len(tokenizer(text)["input_ids"]), budget)
    try:
        return split_examples(kept, sizes=config.splits, seed=config.seed), dropped
    except TaskDataError as exc:
        raise PermanentJobError(f"{exc} ({dropped} examples were longer than {budget} tokens and dropped)") from exc
