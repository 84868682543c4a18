"""The likelihood head: the causal LM's own log-probabilities of the candidate answer, calibrated.

Checked by construction against the model's full next-token distribution, for the layout that
puts the debate context before the answer, and for what it is for: reading a pretrained model's
knowledge that the last-token linear head cannot (the testbed's ceiling).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from trainers.tasks import format_example, split_examples
from trainers.tasks.testbed import arithmetic_claims
from trainers.training import (
    ClassifierInput,
    TrainConfig,
    encode_inputs,
    load_classifier,
    predict_proba,
    train_classifier,
)
from trainers.training.classifier import HEAD_LR_SCALE, LIKELIHOOD_FEATURE_SCALE, load_saved_classifier
from trainers.training.inputs import special_prefix


def _claims(size: int, seed: int = 0) -> list[ClassifierInput]:
    return [ClassifierInput(format_example(e), (), e.candidate) for e in arithmetic_claims(seed, size)]


def test_answer_goes_last_after_the_context(testbed_weak_dir: Path) -> None:
    model = load_classifier(testbed_weak_dir, head="likelihood")
    item = ClassifierInput("12+7=21", ("A: 12+7=19", "B: 12+7=19"), "21")
    (ids,), _ = encode_inputs(model.tokenizer, [item], max_length=64, answer_last=True)
    expected = model.tokenizer("A: 12+7=19\n\nB: 12+7=19\n\n12+7=21")["input_ids"]
    assert ids == expected and ids[: len(special_prefix(model.tokenizer))] == special_prefix(model.tokenizer)
    with pytest.raises(ValueError, match="has no answer"):
        encode_inputs(model.tokenizer, [ClassifierInput("12+7=21")], max_length=64, answer_last=True)
    with pytest.raises(ValueError, match="must end with its answer"):
        ClassifierInput("12+7=21", (), "19")


def test_features_are_the_models_log_probabilities_of_the_answer(testbed_strong_dir: Path) -> None:
    model = load_classifier(testbed_strong_dir, head="likelihood").eval()
    items = [ClassifierInput("12+7=19", (), "19"), ClassifierInput("max(3,41)=4", ("3*3=9",), "4")]
    encoded, _ = encode_inputs(model.tokenizer, items, max_length=64, answer_last=True)
    captured = {}
    model.score.register_forward_hook(lambda _m, args, _out: captured.setdefault("features", args[0]))
    with torch.no_grad():
        predict_proba(model, items, max_length=64)
        for row, (ids, item) in enumerate(zip(encoded, items, strict=True)):
            logits = model.backbone(input_ids=torch.tensor([ids])).logits[0]
            n = len(item.answer)  # one token per character
            log_probs = [torch.log_softmax(logits[p - 1], -1)[ids[p]].item() for p in range(len(ids) - n, len(ids))]
            features = captured["features"][[1, 0][row]]  # predict_proba runs the longest input first
            assert features.tolist() == pytest.approx(
                [LIKELIHOOD_FEATURE_SCALE * sum(log_probs), LIKELIHOOD_FEATURE_SCALE * min(log_probs)], abs=1e-4
            )


def test_calibration_learns_faster_and_survives_saving(testbed_weak_dir: Path, tmp_path: Path) -> None:
    model = load_classifier(testbed_weak_dir, head="likelihood")
    scales = {group["lr_scale"]: len(group["params"]) for group in model.param_groups()}
    assert scales[HEAD_LR_SCALE] == 2 and scales[1.0] > 2  # the 2x2 layer's weight and bias, then the backbone
    examples = arithmetic_claims(0, 64)
    inputs = [ClassifierInput(format_example(e), (), e.candidate) for e in examples]
    train_classifier(
        model,
        inputs,
        [float(e.label) for e in examples],
        TrainConfig(epochs=1, lr=1e-3, batch_size=16, max_length=32, checkpoint_every=0),
    )
    model.save(tmp_path / "saved")
    reloaded = load_saved_classifier(tmp_path / "saved")
    assert predict_proba(reloaded, inputs, max_length=32) == pytest.approx(
        predict_proba(model, inputs, max_length=32), abs=1e-6
    )


@pytest.mark.slow
def test_it_reads_the_strong_models_knowledge_where_the_linear_head_does_not(testbed_strong_dir: Path) -> None:
    """The testbed's ceiling: 0.89-0.91 (likelihood) on 2,000 claims over 3 seeds, the linear head ~0.55."""
    examples = split_examples(
        arithmetic_claims(0, 1400), sizes={"weak_train": 2, "strong_train": 1000, "test": 398}, seed=0
    )
    train = [ClassifierInput(format_example(e), (), e.candidate) for e in examples["strong_train"]]
    test = [ClassifierInput(format_example(e), (), e.candidate) for e in examples["test"]]
    gold = [e.label for e in examples["test"]]
    accuracy = {}
    for head, lr in (("likelihood", 1e-4), ("linear", 1e-4)):
        model = load_classifier(testbed_strong_dir, head=head)
        train_classifier(
            model,
            train,
            [float(e.label) for e in examples["strong_train"]],
            TrainConfig(epochs=1, lr=lr, batch_size=32, max_length=32, checkpoint_every=0),
        )
        probs = predict_proba(model, test, max_length=32)
        accuracy[head] = sum((p >= 0.5) == y for p, y in zip(probs, gold, strict=True)) / len(gold)
    assert accuracy["likelihood"] >= 0.8, accuracy
    assert accuracy["likelihood"] - accuracy["linear"] >= 0.2, accuracy
