"""Resumable training checkpoints: trainable weights, AdamW state and the run's progress. No pickles.

A checkpoint is a directory `step-<n>` inside the run's checkpoint dir:

    trainable.safetensors   the parameters that training updates, by name
    optimizer.safetensors   AdamW's per-parameter state ("<param index>.<key>": step, exp_avg, exp_avg_sq)
    state.json              step, losses so far, and a fingerprint of the config and data

It is written into a temporary sibling and renamed into place, so a directory named `step-<n>`
is always complete; the newest one is kept, older ones are removed after the rename. The
learning rate is a pure function of the step and every step reseeds the RNG from
(seed, step, rank) (see `loop.py`), so weights + optimizer + step are the whole state.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from trainers.errors import CheckpointMismatch
from trainers.training.distributed import current_ranks, gather_full, scatter_like

FORMAT = 1
PREFIX = "step-"


@dataclass(frozen=True)
class Progress:
    """Where a run stands after `step` optimizer steps."""

    step: int
    total_steps: int
    losses: list[float]
    fingerprint: str


def save_checkpoint(
    checkpoint_dir: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer, progress: Progress
) -> Path | None:
    """Write `step-<progress.step>` atomically and delete older checkpoints; return its path.

    Call it on rank 0, or on every rank for an FSDP-sharded model (the shards are gathered; rank 0
    writes, the others get None).
    """
    trainable = gather_full({name: p.detach() for name, p in model.named_parameters() if p.requires_grad})
    optimizer_state = _optimizer_tensors(optimizer)
    if not current_ranks().is_main:
        return None
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".tmp-{PREFIX}", dir=checkpoint_dir))
    try:
        save_file(trainable, staging / "trainable.safetensors")
        save_file(optimizer_state, staging / "optimizer.safetensors")
        (staging / "state.json").write_text(json.dumps({"format": FORMAT, **asdict(progress)}) + "\n")
        final = checkpoint_dir / f"{PREFIX}{progress.step:08d}"
        if final.exists():  # a re-run of the same step after a crash: replace it
            shutil.rmtree(final)
        staging.rename(final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    for older in _checkpoints(checkpoint_dir)[:-1]:
        shutil.rmtree(older, ignore_errors=True)
    return final


def load_checkpoint(
    checkpoint_dir: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer, fingerprint: str
) -> Progress | None:
    """Restore the newest checkpoint into `model` and `optimizer`; None if there is none.

    Every rank calls it (and reads the files); sharded parameters take their slice.

    Raises `CheckpointMismatch` if it belongs to another run, since continuing it would
    silently mix two trainings.
    """
    found = _checkpoints(checkpoint_dir) if checkpoint_dir.is_dir() else []
    if not found:
        return None
    path = found[-1]
    state = json.loads((path / "state.json").read_text())
    if state.pop("format") != FORMAT or state["fingerprint"] != fingerprint:
        raise CheckpointMismatch(
            f"{path} was written by a different run (config, data or loss changed); pass another "
            "checkpoint_dir or delete this one to start over."
        )
    _load_trainable(model, load_file(path / "trainable.safetensors"), path)
    _load_optimizer(optimizer, load_file(path / "optimizer.safetensors"))
    return Progress(**state)


def clear_staging(checkpoint_dir: Path) -> None:
    """Remove temporary dirs a killed writer left behind."""
    if checkpoint_dir.is_dir():
        for stale in checkpoint_dir.glob(f".tmp-{PREFIX}*"):
            shutil.rmtree(stale, ignore_errors=True)


def _checkpoints(checkpoint_dir: Path) -> list[Path]:
    """Complete checkpoints, oldest first (the zero-padded step sorts by name)."""
    return sorted(path for path in checkpoint_dir.glob(f"{PREFIX}*") if path.is_dir())


def _optimizer_tensors(optimizer: torch.optim.Optimizer) -> dict[str, torch.Tensor]:
    """AdamW keeps only tensors per parameter; hyper-parameters come from the config on resume."""
    return gather_full(
        {
            f"{index}.{key}": value.detach()
            for index, state in optimizer.state_dict()["state"].items()
            for key, value in state.items()
        }
    )


def _load_optimizer(optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor]) -> None:
    params = [param for group in optimizer.param_groups for param in group["params"]]
    state: dict[int, dict[str, torch.Tensor]] = {}
    for name, tensor in tensors.items():
        index, key = name.split(".", 1)
        param = params[int(index)]
        # exp_avg / exp_avg_sq are sharded like their parameter; the step count is a plain scalar.
        state.setdefault(int(index), {})[key] = scatter_like(tensor, param) if tensor.shape == param.shape else tensor
    current = optimizer.state_dict()
    optimizer.load_state_dict({"state": state, "param_groups": current["param_groups"]})


def _load_trainable(model: torch.nn.Module, tensors: dict[str, torch.Tensor], path: Path) -> None:
    params = {name: p for name, p in model.named_parameters() if p.requires_grad}
    if set(params) != set(tensors):
        missing, extra = sorted(set(params) - set(tensors)), sorted(set(tensors) - set(params))
        raise CheckpointMismatch(
            f"{path} does not match the model's trainable parameters (missing {missing[:3]}, unexpected {extra[:3]})."
        )
    with torch.no_grad():
        for name, param in params.items():
            param.copy_(scatter_like(tensors[name], param))
