"""`train_classifier`: the one training loop behind the weak and the strong trainer.

AdamW (fused) on the trainable parameters, linear warm-up then cosine decay, gradient accumulation,
gradient clipping at 1.0, dynamic padding per micro-batch, length-grouped batches, and
resumable checkpoints, and (with `evaluate`) an evaluation every `eval_every` steps; with `compile`,
the model's forward and backward run compiled by torch.compile. Under
torchrun the model runs in DDP (or, sharded beforehand with `Classifier.shard`, in FSDP) and each
rank takes its slice of every batch.

Exact resumption: the data order is a function of (seed, epoch), the learning rate of the
step, and the RNG is reseeded from (seed, step, rank) before every step, so weights, AdamW
state and the step number are all a checkpoint needs; a killed-and-resumed run ends with the
same weights as one that never stopped.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import time
from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path

import torch
from torch.nn.parallel import DistributedDataParallel

from trainers.errors import TrainingStopped
from trainers.hyperparameters import TrainConfig
from trainers.losses import Loss, xent
from trainers.training.batching import (
    BatchPlan,
    answer_batch,
    answer_lengths,
    collate,
    pad_token_id,
    rank_micro_batches,
)
from trainers.training.checkpoint import Progress, clear_staging, load_checkpoint, save_checkpoint
from trainers.training.classifier import Classifier, trainable_parameters
from trainers.training.distributed import Ranks, current_ranks, is_sharded, sum_across_ranks
from trainers.training.inputs import ClassifierInput, TrimStats, encode_inputs

MAX_GRAD_NORM = 1.0


@dataclass(frozen=True)
class StepInfo:
    """Progress after an optimizer step. `step` counts finished steps (1-based); `examples`,
    `tokens` (non-padding) and `elapsed_s` cover this call only, so rates stay right after a resume."""

    step: int
    total_steps: int
    epoch: float
    loss: float
    lr: float
    examples: int
    tokens: int
    elapsed_s: float
    evaluation: dict[str, float] | None = None  # what `evaluate` returned after this step, if it ran


@dataclass(frozen=True)
class TrainResult:
    """`steps` and `losses` (one per step) cover the whole run, resumed parts included; `examples`,
    `tokens` (non-padding) and `seconds` only this call, so examples/s and tokens/s are this call's rates."""

    steps: int
    final_loss: float
    losses: list[float]
    examples: int
    tokens: int
    seconds: float
    resumed_from_step: int
    trim: TrimStats
    evaluations: list[tuple[int, dict[str, float]]] = field(default_factory=list)  # (step, metrics), this call


def train_classifier(
    model: Classifier,
    inputs: Sequence[ClassifierInput],
    targets: Sequence[float],
    config: TrainConfig,
    *,
    loss_fn: Loss = xent,
    prompt_suffix: str = "",
    on_step: Callable[[StepInfo], None] | None = None,
    checkpoint_dir: Path | None = None,
    evaluate: Callable[[Classifier], dict[str, float]] | None = None,
) -> TrainResult:
    """Train `model` in place on `inputs` with `targets` (probability that the candidate is correct).

    `on_step` runs after every optimizer step (on rank 0); if it raises, training stops with that
    error and the last checkpoint stays. With `checkpoint_dir`, a checkpoint is written every
    `config.checkpoint_every` steps and at the end (none if it is 0), and a checkpoint found there is resumed
    (`CheckpointMismatch` if it is another run's; use one dir per loss too, the loss is not checked).
    `evaluate(model)` runs on rank 0 (on every rank for a sharded model, whose forward needs them
    all) after every `config.eval_every` steps but the last (the caller evaluates the finished model
    itself); rank 0's metrics reach `on_step` as `StepInfo.evaluation`. It may switch to eval mode
    (`predict_proba` does, and restores training mode) but must not train.
    """
    started = time.perf_counter()
    _check_data(inputs, targets)
    ranks = current_ranks()
    if config.batch_size % ranks.world:
        raise ValueError(f"batch_size={config.batch_size} must be a multiple of the world size {ranks.world}.")
    encoded, trim = encode_inputs(
        model.tokenizer,
        inputs,
        max_length=config.max_length,
        prompt_suffix=prompt_suffix,
        answer_last=model.head == "likelihood",
    )
    plan = BatchPlan(tuple(map(len, encoded)), config.batch_size, config.epochs, config.seed, config.group_by_length)
    optimizer, progress = _start(model, config, encoded, targets, plan, checkpoint_dir, ranks)
    losses, resumed_from = list(progress.losses), progress.step
    device = next(model.parameters()).device
    whole_model_work = ranks.is_main or is_sharded(model)  # FSDP: checkpoints and evaluations need every rank
    loop = _Loop(
        _wrap(model, ranks, device),
        model,
        optimizer,
        plan,
        encoded,
        targets,
        loss_fn,
        config,
        ranks,
        device,
        answer_lengths(model, inputs),
    )
    examples = tokens = 0
    evaluations: list[tuple[int, dict[str, float]]] = []
    forked = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=forked):  # the caller's RNG state is left as it was
        for step in range(resumed_from, plan.total_steps):
            loss, step_examples, step_tokens = loop.step(step)
            losses.append(loss)
            examples, tokens = examples + step_examples, tokens + step_tokens
            if checkpoint_dir is not None and whole_model_work and _due(step + 1, config.checkpoint_every, plan):
                done = Progress(step + 1, plan.total_steps, losses, progress.fingerprint)
                save_checkpoint(checkpoint_dir, model, optimizer, done)
            evaluation = None
            if evaluate is not None and whole_model_work and _eval_due(step + 1, config.eval_every, plan):
                evaluation = evaluate(model)
                evaluations.append((step + 1, evaluation))
            info = StepInfo(
                step + 1,
                plan.total_steps,
                (step + 1) / plan.steps_per_epoch,
                loss,
                loop.lr(step),
                examples,
                tokens,
                time.perf_counter() - started,
                evaluation,
            )
            _report(on_step, info, ranks, device)
    return TrainResult(
        len(losses),
        losses[-1] if losses else math.nan,
        losses,
        examples,
        tokens,
        time.perf_counter() - started,
        resumed_from,
        trim,
        evaluations,
    )


def _start(
    model: Classifier,
    config: TrainConfig,
    encoded: list[list[int]],
    targets: Sequence[float],
    plan: BatchPlan,
    checkpoint_dir: Path | None,
    ranks: Ranks,
) -> tuple[torch.optim.AdamW, Progress]:
    """The optimizer and where training starts: step 0, or the newest checkpoint in `checkpoint_dir`."""
    params = trainable_parameters(model)
    if not params:
        raise ValueError("the model has no trainable parameters; load it with load_classifier (LoRA or full).")
    optimizer = _adamw(model, config)
    progress = Progress(0, plan.total_steps, [], _fingerprint(config, encoded, targets, params))
    if checkpoint_dir is not None:
        if ranks.is_main:
            clear_staging(checkpoint_dir)
        progress = load_checkpoint(checkpoint_dir, model, optimizer, progress.fingerprint) or progress
    if config.gradient_checkpointing:
        model.set_gradient_checkpointing(True)
    model.train()
    return optimizer, progress


def _adamw(model: Classifier, config: TrainConfig) -> torch.optim.AdamW:
    """AdamW with torch's fused kernel where it has one for the device (CUDA, CPU): one launch updates every
    parameter, as in transformers.Trainer's default optimizer, instead of ~10 per parameter tensor (a LoRA
    adapter on a 24-layer model has ~200). Sharded (FSDP) parameters keep torch's default implementation."""
    device = next(model.parameters()).device
    fused = True if device.type in ("cuda", "cpu") and not is_sharded(model) else None
    return torch.optim.AdamW(model.param_groups(), lr=config.lr, weight_decay=config.weight_decay, fused=fused)


class _Loop:
    """One optimizer step at a time; holds what every step needs so `train_classifier` stays readable."""

    def __init__(
        self,
        runner: torch.nn.Module,
        model: Classifier,
        optimizer: torch.optim.Optimizer,
        plan: BatchPlan,
        encoded: list[list[int]],
        targets: Sequence[float],
        loss_fn: Loss,
        config: TrainConfig,
        ranks: Ranks,
        device: torch.device,
        answers: list[int] | None,
    ) -> None:
        self.runner, self.model, self.optimizer, self.plan = runner, model, optimizer, plan
        self.forward = _compiled(runner) if config.compile else runner
        self.answers = answers
        self.encoded, self.loss_fn, self.config, self.ranks, self.device = encoded, loss_fn, config, ranks, device
        self.targets = torch.tensor(list(targets), dtype=torch.float32, device=device)
        self.pad_id = pad_token_id(model.tokenizer.pad_token_id, model.tokenizer.eos_token_id)
        self.warmup_steps = math.ceil(config.warmup_ratio * plan.total_steps)

    def lr(self, step: int) -> float:
        """Linear warm-up over `warmup_steps` (never 0), then cosine decay towards 0 at the end."""
        if step < self.warmup_steps:
            return self.config.lr * (step + 1) / (self.warmup_steps + 1)
        progress = (step - self.warmup_steps) / max(1, self.plan.total_steps - self.warmup_steps)
        return self.config.lr * 0.5 * (1.0 + math.cos(math.pi * progress))

    def step(self, step: int) -> tuple[float, int, int]:
        """Forward/backward on this rank's micro-batches, clip, update; (mean loss, examples, tokens) of all ranks."""
        torch.manual_seed(_step_seed(self.config.seed, step, self.ranks.rank))
        batch = self.plan.batch(step)
        micro = rank_micro_batches(
            batch,
            self.plan.lengths,
            rank=self.ranks.rank,
            world=self.ranks.world,
            micro_batch_size=self.config.micro_batch_size,
        )
        counted = len(batch) - len(batch) % self.ranks.world
        loss_sum = torch.zeros((), device=self.device)
        for number, indices in enumerate(micro):
            last = number == len(micro) - 1
            # DDP all-reduces gradients once per step; FSDP reduce-scatters after every micro-batch.
            sync = (
                self.runner.no_sync()
                if isinstance(self.runner, DistributedDataParallel) and not last
                else contextlib.nullcontext()
            )
            with sync:
                loss = self._micro_batch_loss(indices, step)
                (loss * (len(indices) * self.ranks.world / counted)).backward()
            loss_sum += loss.detach() * len(indices)
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr(step) * group["lr_scale"]
        if micro:
            torch.nn.utils.clip_grad_norm_(
                [p for group in self.optimizer.param_groups for p in group["params"]], MAX_GRAD_NORM
            )
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        tokens = sum(self.plan.lengths[i] for indices in micro for i in indices)
        total_loss, examples, total_tokens = sum_across_ranks(
            [loss_sum.item(), float(sum(map(len, micro))), float(tokens)], self.ranks, self.device
        )
        return total_loss / max(examples, 1.0), int(examples), int(total_tokens)

    def _micro_batch_loss(self, indices: list[int], step: int) -> torch.Tensor:
        input_ids, attention_mask = collate(self.encoded, indices, self.pad_id, self.device)
        logits = self.forward(input_ids, attention_mask, **answer_batch(self.answers, indices, self.device))
        targets = self.targets[torch.tensor(indices, device=self.device)]
        return self.loss_fn(logits, targets, step, self.plan.total_steps)


def _wrap(model: Classifier, ranks: Ranks, device: torch.device) -> torch.nn.Module:
    """DDP under torchrun (gradients averaged across ranks in backward), the model itself otherwise
    (single process, or sharded by FSDP, which averages gradients itself)."""
    if not ranks.distributed or is_sharded(model):
        return model
    return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)


def _compiled(runner: torch.nn.Module) -> Callable[..., torch.Tensor]:
    """The runner's forward compiled (its backward too, through AOTAutograd); parameters stay shared with it.

    Shapes are dynamic from the first call: one graph serves every padded length and batch size, so dynamic
    padding does not recompile, and a resumed run runs the very kernels the uninterrupted run did (its first
    batch shape after the resume would otherwise get a specialised graph of its own).
    """
    return torch.compile(runner, dynamic=True)


def _report(on_step: Callable[[StepInfo], None] | None, info: StepInfo, ranks: Ranks, device: torch.device) -> None:
    """Call `on_step` on rank 0; if it raises, every rank stops (the others with `TrainingStopped`)."""
    error: BaseException | None = None
    if ranks.is_main and on_step is not None:
        try:
            on_step(info)
        except BaseException as exc:  # noqa: BLE001 - re-raised below, after the other ranks have been told
            error = exc
    if ranks.distributed:
        (stopped,) = sum_across_ranks([1.0 if error is not None else 0.0], ranks, device)
        if stopped and error is None:
            raise TrainingStopped(f"rank 0 stopped training after step {info.step}.")
    if error is not None:
        raise error


def _due(done: int, every: int, plan: BatchPlan) -> bool:
    """A checkpoint every `every` steps and after the last one (so a finished run is never redone); none for 0."""
    return every > 0 and (done % every == 0 or done == plan.total_steps)


def _eval_due(done: int, every: int, plan: BatchPlan) -> bool:
    """Every `every` steps, not after the last one (the finished model is the caller's to evaluate)."""
    return every > 0 and done % every == 0 and done < plan.total_steps


def _step_seed(seed: int, step: int, rank: int) -> int:
    return ((seed * 1_000_003 + step) * 1_009 + rank) % (2**63)


def _check_data(inputs: Sequence[ClassifierInput], targets: Sequence[float]) -> None:
    if len(inputs) != len(targets):
        raise ValueError(f"{len(inputs)} inputs but {len(targets)} targets; pass one target per input.")
    if not inputs:
        raise ValueError("no training inputs.")
    bad = [t for t in targets if not 0.0 <= t <= 1.0]
    if bad:
        raise ValueError(f"targets are probabilities in [0, 1]; got e.g. {bad[0]!r}.")


def _fingerprint(
    config: TrainConfig, encoded: list[list[int]], targets: Sequence[float], params: dict[str, torch.nn.Parameter]
) -> str:
    """Hash of everything that decides the training trajectory, to refuse resuming someone else's checkpoint.

    Settings that change only memory use, summation order or what is observed (micro-batching,
    checkpointing, evaluation, and the world size, which is not hashed) are left out, so a job can
    resume on a smaller or larger machine.
    """
    memory_only = ("checkpoint_every", "eval_batch_size", "eval_every", "gradient_checkpointing", "micro_batch_size")
    settings = config.model_dump(exclude=set(memory_only))
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode())
    digest.update(array("q", map(len, encoded)).tobytes())
    digest.update(array("q", chain.from_iterable(encoded)).tobytes())
    digest.update(json.dumps([float(t) for t in targets]).encode())
    digest.update(json.dumps({name: list(p.shape) for name, p in params.items()}).encode())
    return digest.hexdigest()
