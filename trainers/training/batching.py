"""Which inputs go into which optimizer step, and how a micro-batch becomes padded tensors.

The data order is a pure function of (seed, epoch), so a resumed run finds its place from
the step number alone. With `group_by_length` each epoch is: a seeded shuffle, cut into
mega-batches of `MEGABATCH_BATCHES` batches, each sorted by length and cut into batches,
and the batches shuffled (the same scheme as transformers' LengthGroupedSampler): batches
hold similar lengths, so dynamic padding wastes little, yet their order stays random.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from trainers.training.inputs import ClassifierInput, answer_ids

MEGABATCH_BATCHES = 50


@dataclass(frozen=True)
class BatchPlan:
    """The batches of a run: `batch(step)` is the list of input indices of optimizer step `step`."""

    lengths: tuple[int, ...]
    batch_size: int
    epochs: float
    seed: int
    group_by_length: bool
    _epochs_cache: dict[int, list[list[int]]] = field(default_factory=dict, compare=False, repr=False)

    @property
    def steps_per_epoch(self) -> int:
        return math.ceil(len(self.lengths) / self.batch_size)

    @property
    def total_steps(self) -> int:
        return max(1, math.ceil(self.epochs * self.steps_per_epoch))

    def batch(self, step: int) -> list[int]:
        epoch, index = divmod(step, self.steps_per_epoch)
        if epoch not in self._epochs_cache:
            self._epochs_cache.clear()  # one epoch at a time is all a run needs
            self._epochs_cache[epoch] = self._epoch_batches(epoch)
        return self._epochs_cache[epoch][index]

    def _epoch_batches(self, epoch: int) -> list[list[int]]:
        rng = random.Random(f"w2s-batches:{self.seed}:{epoch}")
        order = list(range(len(self.lengths)))
        rng.shuffle(order)
        if not self.group_by_length:
            return _chunks(order, self.batch_size)
        mega = self.batch_size * MEGABATCH_BATCHES
        longest_first = [sorted(chunk, key=self.lengths.__getitem__, reverse=True) for chunk in _chunks(order, mega)]
        grouped = [i for chunk in longest_first for i in chunk]
        batches = _chunks(grouped, self.batch_size)
        rng.shuffle(batches)
        return batches


def rank_micro_batches(
    batch: list[int], lengths: tuple[int, ...], *, rank: int, world: int, micro_batch_size: int | None
) -> list[list[int]]:
    """This rank's share of one optimizer step, cut into micro-batches of similar lengths.

    The batch is sorted by length and dealt round-robin, so every rank gets the same number of
    inputs and a similar mix of lengths; with `world` > 1, the `len(batch) % world` shortest
    inputs are left out so all ranks run the same number of passes (DDP and FSDP sync on every one).
    """
    ordered = sorted(batch, key=lambda i: (-lengths[i], i))
    ordered = ordered[: len(ordered) - len(ordered) % world]
    mine = ordered[rank::world]
    return _chunks(mine, micro_batch_size or len(mine)) if mine else []


def collate(
    encoded: list[list[int]], indices: list[int], pad_id: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded `input_ids` and `attention_mask` for `indices`, padded only to the longest of them."""
    width = max(len(encoded[i]) for i in indices)
    input_ids = torch.full((len(indices), width), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((len(indices), width), dtype=torch.long)
    for row, i in enumerate(indices):
        input_ids[row, : len(encoded[i])] = torch.tensor(encoded[i])
        attention_mask[row, : len(encoded[i])] = 1
    return input_ids.to(device, non_blocking=True), attention_mask.to(device, non_blocking=True)


def answer_lengths(model: Any, inputs: Sequence[ClassifierInput]) -> list[int] | None:
    """How many tokens each input's answer has, for a likelihood-head `model`; None for the other heads."""
    if model.head != "likelihood":
        return None
    return [len(ids) for ids in answer_ids(model.tokenizer, inputs)]


def answer_batch(answers: list[int] | None, indices: list[int], device: torch.device) -> dict[str, torch.Tensor]:
    """The keyword arguments the model's forward needs besides the tokens: `answer_lengths`, if any."""
    if answers is None:
        return {}
    return {"answer_lengths": torch.tensor([answers[i] for i in indices], device=device)}


def pad_token_id(tokenizer_pad: int | None, tokenizer_eos: int | None) -> int:
    """The id to pad with; any id works under the attention mask, so fall back to EOS, then 0."""
    if tokenizer_pad is not None:
        return tokenizer_pad
    return tokenizer_eos if tokenizer_eos is not None else 0


def _chunks(items: list[int], size: int) -> list[list[int]]:
    return [items[start : start + size] for start in range(0, len(items), size)]
