"""`predict_proba`: a classifier's probability that each candidate answer is correct; `held_out_evaluator`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from trainers.classification_metrics import binary_metrics
from trainers.training.batching import answer_batch, answer_lengths, collate, pad_token_id
from trainers.training.classifier import Classifier
from trainers.training.inputs import ClassifierInput, encode_inputs


def predict_proba(
    model: Classifier,
    inputs: Sequence[ClassifierInput],
    *,
    max_length: int,
    batch_size: int = 64,
    prompt_suffix: str = "",
) -> list[float]:
    """Softmax probability of column 1 ("correct") for every input, in input order.

    Inputs are encoded exactly as in training (same trimming, same `prompt_suffix`), run
    longest first so each batch pads little, and the results put back in input order.
    Runs in eval mode without gradients; the model's previous mode is restored.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size={batch_size}: pass at least 1.")
    encoded, _ = encode_inputs(
        model.tokenizer,
        inputs,
        max_length=max_length,
        prompt_suffix=prompt_suffix,
        answer_last=model.head == "likelihood",
    )
    answers = answer_lengths(model, inputs)
    order = sorted(range(len(encoded)), key=lambda i: -len(encoded[i]))
    device = next(model.parameters()).device
    pad_id = pad_token_id(model.tokenizer.pad_token_id, model.tokenizer.eos_token_id)
    probs = [0.0] * len(encoded)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for start in range(0, len(order), batch_size):
                indices = order[start : start + batch_size]
                input_ids, attention_mask = collate(encoded, indices, pad_id, device)
                logits = model(input_ids, attention_mask, **answer_batch(answers, indices, device))
                column = torch.softmax(logits, dim=-1)[:, 1].tolist()
                for i, p in zip(indices, column, strict=True):
                    probs[i] = p
    finally:
        model.train(was_training)
    return probs


def held_out_evaluator(
    inputs: Sequence[ClassifierInput],
    gold: Sequence[int],
    *,
    max_length: int,
    batch_size: int = 64,
    prompt_suffix: str = "",
) -> Callable[[Classifier], dict[str, Any]] | None:
    """`train_classifier`'s `evaluate`: `binary_metrics` on held-out inputs; None when there are none."""
    if not inputs:
        return None

    def evaluate(model: Classifier) -> dict[str, Any]:
        probs = predict_proba(model, inputs, max_length=max_length, batch_size=batch_size, prompt_suffix=prompt_suffix)
        return binary_metrics(gold, probs)

    return evaluate
