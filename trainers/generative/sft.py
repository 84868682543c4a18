"""Supervised finetuning on (prompt, target) pairs with the loss on target tokens only, and greedy generation.

    row = encode_pair(tokenizer, "12+7=", "19", max_length=64)   # labels are -100 on every prompt token
    losses = sft_train(model, tokenizer, rows, SftConfig(epochs=2, lr=1e-3))
    texts = generate(model, tokenizer, ["12+7="], max_new_tokens=8)

The prompt is masked by construction: `encode_pair` gives every prompt position the label -100,
which the causal-LM loss ignores, so only the target tokens (and EOS) are learnt.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from pydantic import Field

from trainers.hyperparameters import SftSettings
from trainers.training.inputs import special_prefix

IGNORE = -100  # the label torch's cross-entropy skips


@dataclass(frozen=True)
class SftRow:
    input_ids: list[int]
    labels: list[int]  # IGNORE on the prompt, the token itself on the target (+ EOS)


class SftConfig(SftSettings):
    """SftSettings plus the seed: what `sft_train` takes (max_length is `encode_pair`'s)."""

    seed: int = Field(0, description="Seeds the data order.")


def encode_pair(tokenizer: Any, prompt: str, target: str, *, max_length: int) -> SftRow:
    """prefix + prompt + target + EOS within `max_length`: a target keeps at most half of it (its start, then no
    EOS), and the prompt is cut from the left to fit the rest."""
    prompt_ids = list(tokenizer(prompt, add_special_tokens=False)["input_ids"])
    target_ids = [*tokenizer(target, add_special_tokens=False)["input_ids"], tokenizer.eos_token_id]
    target_ids = target_ids[: max_length // 2]
    prefix = special_prefix(tokenizer)
    room = max_length - len(prefix) - len(target_ids)
    prompt_ids = prefix + prompt_ids[max(0, len(prompt_ids) - room) :]
    return SftRow(prompt_ids + target_ids, [IGNORE] * len(prompt_ids) + target_ids)


def collate(rows: Sequence[SftRow], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-padded input_ids, attention_mask and labels (IGNORE on padding)."""
    width = max(len(row.input_ids) for row in rows)
    input_ids = torch.full((len(rows), width), pad_id)
    labels = torch.full((len(rows), width), IGNORE)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for index, row in enumerate(rows):
        input_ids[index, : len(row.input_ids)] = torch.tensor(row.input_ids)
        labels[index, : len(row.labels)] = torch.tensor(row.labels)
        mask[index, : len(row.input_ids)] = 1
    return {"input_ids": input_ids, "attention_mask": mask, "labels": labels}


def target_loss(model: Any, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Mean next-token cross-entropy over the target tokens of the batch."""
    return model(**batch).loss


def sft_train(
    model: Any,
    tokenizer: Any,
    rows: Sequence[SftRow],
    config: SftConfig,
    on_step: Callable[[int, int, float], None] | None = None,
) -> list[float]:
    """Train `model` in place on `rows`; the loss of every step."""
    order = random.Random(f"sft:{config.seed}")
    steps = max(1, round(config.epochs * len(rows) / config.batch_size))
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=config.lr)
    model.train()
    losses, pool = [], []
    for step in range(steps):
        if len(pool) < config.batch_size:
            pool += order.sample(list(rows), len(rows))
        batch, pool = pool[: config.batch_size], pool[config.batch_size :]
        loss = target_loss(model, collate(batch, tokenizer.pad_token_id))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.item())
        if on_step is not None:
            on_step(step + 1, steps, losses[-1])
    model.eval()
    return losses


@torch.no_grad()
def generate(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[str],
    *,
    max_new_tokens: int,
    batch_size: int = 32,
    max_prompt_tokens: int = 256,
) -> list[str]:
    """Greedy continuations (without the prompt or special tokens), batched with left padding."""
    model.eval()
    prefix = special_prefix(tokenizer)
    outputs = []
    for start in range(0, len(prompts), batch_size):
        encoded = [
            prefix + list(tokenizer(p, add_special_tokens=False)["input_ids"])[-max_prompt_tokens:]
            for p in prompts[start : start + batch_size]
        ]
        width = max(map(len, encoded))
        ids = torch.tensor([[tokenizer.pad_token_id] * (width - len(e)) + e for e in encoded])
        mask = torch.tensor([[0] * (width - len(e)) + [1] * len(e) for e in encoded])
        out = model.generate(
            input_ids=ids,
            attention_mask=mask,
            max_new_tokens=max_new_tokens,
            do_sample=False,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
        )
        outputs += tokenizer.batch_decode(out[:, width:], skip_special_tokens=True)
    return outputs
