"""The `ingest` job: load the task, drop examples over any model's length budget (counted), split by
seed, write `examples`.

All rows are written in one transaction, and `examples` is unique per (run, task, source,
candidate), so a retried ingest finds what an earlier attempt wrote instead of adding more.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from transformers import AutoTokenizer, PreTrainedTokenizerBase

from service.store.debate_rows import add_example
from trainers.jobs.env import WorkerEnv
from trainers.jobs.payloads import job_payload
from trainers.jobs.run_rows import load_run
from trainers.pipeline.budgets import TRANSCRIPT_RESERVE, Budget, apply_budgets, dropped_note, prompt_suffix
from trainers.pipeline.config import RunConfig
from trainers.tasks import TaskDataError, class_balance, load_examples, split_examples
from trainers.training.inputs import special_prefix
from trainers.worker import JobContext, PermanentJobError


def ingest_handler(env: WorkerEnv):  # noqa: ANN201 - a trainers.worker.Handler
    def handle(ctx: JobContext) -> dict[str, Any]:
        run_id = job_payload(ctx).run_id
        with ctx.sessions() as session:
            _, config = load_run(session, run_id)
        splits, dropped = _examples(config, env)
        ctx.report(0, 1, stage="writing examples")
        with ctx.sessions.begin() as session:
            for split, examples in splits.items():
                for example in examples:
                    add_example(
                        session,
                        run_id=run_id,
                        task=example.task,
                        source_id=example.source_id,
                        candidate_id=example.candidate_id,
                        question=example.question,
                        candidate=example.candidate,
                        context=example.context,
                        label=example.label,
                        split=split,
                    )
        return {"dropped": dropped, "splits": {name: class_balance(rows) for name, rows in splits.items()}}

    return handle


def _examples(config: RunConfig, env: WorkerEnv) -> tuple[dict[str, list], dict[str, Any]]:
    try:
        examples = load_examples(
            config.task,
            data_dir=Path(config.data_dir) if config.data_dir else None,
            seed=config.seed,
            limit=config.limit,
            size=sum(config.splits.values()),
        )
    except TaskDataError as exc:
        raise PermanentJobError(str(exc)) from exc
    kept, dropped = apply_budgets(examples, length_budgets(config, env))
    try:
        return split_examples(kept, sizes=config.splits, seed=config.seed), dropped
    except TaskDataError as exc:
        note = dropped_note(dropped)
        if note is None:
            raise PermanentJobError(str(exc)) from exc
        raise PermanentJobError(
            f"too few examples fit the models' length budgets: {note}. Then {exc}, or raise the max_length named above"
        ) from exc


def length_budgets(config: RunConfig, env: WorkerEnv) -> list[Budget]:
    """The weak and the strong model's budgets for the example text, each counted with its own tokenizer."""
    weak = _tokenizer(env.weak_model_path(config.weak.model), "weak.model")
    strong = _tokenizer(env.strong_model_path(config.strong.checkpoint), "strong.checkpoint")
    return [
        Budget("weak.train.max_length", config.weak.train.max_length - TRANSCRIPT_RESERVE, _counter(weak, "")),
        Budget(
            "strong.train.max_length",
            config.strong.train.max_length,
            _counter(strong, prompt_suffix(config.strong.head)),
        ),
    ]


def _counter(tokenizer: PreTrainedTokenizerBase, suffix: str):  # noqa: ANN202 - Callable[[list[str]], list[int]]
    """Tokens of each text as `trainers.training.inputs.encode_inputs` lays it out: prefix + text + suffix."""
    suffix_tokens = len(tokenizer(suffix, add_special_tokens=False)["input_ids"]) if suffix else 0
    fixed = len(special_prefix(tokenizer)) + suffix_tokens

    def count(texts: list[str]) -> list[int]:
        return [fixed + len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]] if texts else []

    return count


def _tokenizer(path: str, field: str) -> PreTrainedTokenizerBase:
    try:
        return AutoTokenizer.from_pretrained(path)
    except OSError as exc:
        raise PermanentJobError(
            f"cannot load the tokenizer of {field} ({path}) to check the examples' lengths: {exc}"
        ) from exc
