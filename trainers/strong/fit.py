"""`fit`: one strong-model training from a `FitSpec` — load, train, predict the held-out set, save.

The spec is plain JSON, so the same function runs in the worker's own process (one device) and
on every rank of a `torchrun` launch (`trainers.strong.launch`). There each rank holds the whole
model (`sharding="ddp"`; rank 0 alone evaluates, predicts and saves) or a slice of it
(`"fsdp"`, for models that do not fit one GPU: loaded into CPU memory, sharded layer by layer
onto the GPU; every rank takes part in evaluating, predicting and saving, rank 0 writes). No
database access here: the job handler resolves the data first.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from trainers.losses import make_loss
from trainers.strong.launch import SHARDINGS
from trainers.training import (
    ClassifierInput,
    LoraSettings,
    StepInfo,
    TrainConfig,
    current_ranks,
    held_out_evaluator,
    load_classifier,
    load_saved_classifier,
    predict_proba,
    resolve_device,
    train_classifier,
    weight_dtype,
)


@dataclass(frozen=True)
class FitSpec:
    """What to train, on what, and where the results go (all JSON-able)."""

    base: str  # weights of the strong base (a directory or a hub name)
    head: str  # "lm" or "linear"
    answer_words: tuple[str, str]
    lora: dict[str, Any] | None  # LoraSettings fields; None = full finetune
    train: dict[str, Any]  # TrainConfig fields
    loss: str
    loss_params: dict[str, Any]
    prompt_suffix: str
    train_inputs: list[ClassifierInput]
    train_targets: list[float]
    eval_inputs: list[ClassifierInput]
    eval_gold: list[int]
    checkpoint_dir: str
    out_dir: str
    seed: int = 0  # LoRA initialisation
    init_adapter: str | None = None  # continue training this saved classifier (a published version)
    sharding: str = "ddp"  # across several ranks: "ddp" (replicas) or "fsdp" (shards)

    def __post_init__(self) -> None:
        if self.sharding not in SHARDINGS:
            raise ValueError(f"sharding={self.sharding!r}: choose one of {SHARDINGS}.")

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> FitSpec:
        data = json.loads(text)
        for key in ("train_inputs", "eval_inputs"):
            data[key] = [ClassifierInput(item["text"], tuple(item["context"]), item["answer"]) for item in data[key]]
        data["answer_words"] = tuple(data["answer_words"])
        return cls(**data)


@dataclass(frozen=True)
class FitOutcome:
    """What the job handler stores: the held-out predictions and a summary of the training."""

    probs: list[float]
    steps: int
    final_loss: float
    tokens: int
    resumed_from_step: int
    evaluations: list[dict[str, Any]] = field(default_factory=list)  # {"step": n, **metrics}


def fit(spec: FitSpec, on_step: Callable[[StepInfo], None] | None = None) -> FitOutcome:
    """Train as the spec says (resuming from its checkpoint dir); then predict and save (rank 0 has the results)."""
    config = TrainConfig(**spec.train)
    ranks = current_ranks()
    sharded = spec.sharding == "fsdp" and ranks.distributed
    device = resolve_device(None)
    where = {"device": "cpu" if sharded else device, "dtype": weight_dtype(device)}
    if spec.init_adapter:
        model = load_saved_classifier(Path(spec.init_adapter), **where)
        model.set_gradient_checkpointing(config.gradient_checkpointing)
    else:
        lora = LoraSettings(**spec.lora) if spec.lora else None
        model = load_classifier(
            spec.base,
            head=spec.head,
            answer_words=spec.answer_words,
            lora=lora,
            gradient_checkpointing=config.gradient_checkpointing,
            seed=spec.seed,
            **where,
        )
    if sharded:
        model.shard(device)
    evaluate = held_out_evaluator(
        spec.eval_inputs,
        spec.eval_gold,
        max_length=config.max_length,
        batch_size=config.eval_batch_size,
        prompt_suffix=spec.prompt_suffix,
    )
    result = train_classifier(
        model,
        spec.train_inputs,
        spec.train_targets,
        config,
        loss_fn=make_loss(spec.loss, **spec.loss_params),
        prompt_suffix=spec.prompt_suffix,
        on_step=on_step,
        checkpoint_dir=Path(spec.checkpoint_dir),
        evaluate=evaluate,
    )
    probs: list[float] = []
    if ranks.is_main or sharded:  # a sharded forward pass needs every rank
        if spec.eval_inputs:
            probs = predict_proba(
                model,
                spec.eval_inputs,
                max_length=config.max_length,
                batch_size=config.eval_batch_size,
                prompt_suffix=spec.prompt_suffix,
            )
        model.save(Path(spec.out_dir))
    return FitOutcome(
        probs,
        result.steps,
        result.final_loss,
        result.tokens,
        result.resumed_from_step,
        [{"step": step, **metrics} for step, metrics in result.evaluations],
    )
