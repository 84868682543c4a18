"""The training core on a tiny real Llama: heads, training, resumption, saving, prediction."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from trainers.training import (
    CheckpointMismatch,
    Classifier,
    ClassifierInput,
    LoraSettings,
    StepInfo,
    TrainConfig,
    load_classifier,
    load_saved_classifier,
    predict_proba,
    train_classifier,
)

WORDS = "water fire earth air plant animal cell energy light heat sound force mass gravity atom".split()
SUFFIX = "\nAnswer:"


@pytest.fixture(autouse=True, scope="module")
def one_thread() -> Iterator[None]:
    """One intra-op thread: on a busy 2-core machine more threads spin-wait and slow every test down."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def snapshot(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in model.named_parameters()}


def changed(before: dict[str, torch.Tensor], model: torch.nn.Module) -> set[str]:
    return {name for name, p in model.named_parameters() if not torch.equal(before[name], p.detach())}


def keyword_set(n: int, seed: int) -> tuple[list[ClassifierInput], list[float]]:
    """Learnable from the text alone: label 1 iff the sentence says "yes"."""
    rng = random.Random(seed)
    inputs, targets = [], []
    for _ in range(n):
        label = rng.random() < 0.5
        filler = " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 12)))
        inputs.append(ClassifierInput(f"{filler} {'yes' if label else 'no'}"))
        targets.append(float(label))
    return inputs, targets


def debate_set(n: int, seed: int, *, with_context: bool) -> tuple[list[ClassifierInput], list[float]]:
    """The text alone says nothing about the label; the first turn of the context states it, and
    an uninformative second turn follows, so the verdict is not simply the last thing read."""
    rng = random.Random(seed)
    inputs, targets = [], []
    for _ in range(n):
        label = rng.random() < 0.5
        text = "Question: " + " ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 14))) + "?"
        verdict = "Debater A: The answer is correct." if label else "Debater A: The answer is wrong."
        rebuttal = "Debater B: " + " ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 10))) + "."
        inputs.append(ClassifierInput(text, (verdict, rebuttal) if with_context else ()))
        targets.append(float(label))
    return inputs, targets


def accuracy(probs: list[float], targets: list[float]) -> float:
    return sum((p > 0.5) == (t > 0.5) for p, t in zip(probs, targets, strict=True)) / len(targets)


def fast_config(**overrides: float) -> TrainConfig:
    return TrainConfig(**{"epochs": 2, "lr": 1e-3, "batch_size": 16, "max_length": 64, **overrides})


def test_zero_initialised_linear_head_says_one_half(tiny_model_dir: Path) -> None:
    model = load_classifier(tiny_model_dir, head="linear")
    inputs, _ = keyword_set(5, seed=0)
    assert predict_proba(model, inputs, max_length=64) == [0.5] * 5
    assert torch.count_nonzero(model.score.weight) == 0 and torch.count_nonzero(model.score.bias) == 0


def test_full_finetune_changes_weights_and_lowers_loss(tiny_model_dir: Path) -> None:
    model = load_classifier(tiny_model_dir, head="linear")
    before = snapshot(model)
    inputs, targets = keyword_set(128, seed=0)
    steps: list[StepInfo] = []
    result = train_classifier(model, inputs, targets, fast_config(epochs=3, warmup_ratio=0.1), on_step=steps.append)
    assert result.steps == len(steps) == len(result.losses) == 3 * 8
    assert sum(result.losses[-4:]) / 4 < 0.5 * result.losses[0]
    assert {"score.weight", "score.bias", "backbone.layers.0.self_attn.q_proj.weight"} <= changed(before, model)
    assert steps[-1].examples == result.examples == 3 * 128 and steps[-1].tokens == result.tokens > 3 * 128
    assert steps[0].lr < steps[2].lr and steps[-1].lr < steps[2].lr  # warm-up, then cosine decay
    test_inputs, test_targets = keyword_set(64, seed=1)
    assert accuracy(predict_proba(model, test_inputs, max_length=64), test_targets) >= 0.8


def test_lora_lm_head_saves_an_adapter_vllm_can_load(tiny_model_dir: Path, tmp_path: Path) -> None:
    model = load_classifier(tiny_model_dir, head="lm", lora=LoraSettings(r=4, alpha=8))
    before = snapshot(model)
    inputs, targets = keyword_set(64, seed=0)
    train_classifier(model, inputs, targets, fast_config(epochs=1, micro_batch_size=8), prompt_suffix=SUFFIX)
    updated = changed(before, model)
    assert updated and all("lora_" in name for name in updated)  # the base model is frozen
    model.save(tmp_path / "adapter")
    config = json.loads((tmp_path / "adapter" / "adapter_config.json").read_text())
    assert (tmp_path / "adapter" / "adapter_model.safetensors").is_file()
    assert config["base_model_name_or_path"] == str(tiny_model_dir.resolve())
    assert config["r"] == 4 and config["peft_type"] == "LORA" and config["task_type"] == "CAUSAL_LM"
    reloaded = load_saved_classifier(tmp_path / "adapter")
    probe, _ = keyword_set(12, seed=3)
    ours = predict_proba(model, probe, max_length=64, prompt_suffix=SUFFIX)
    assert predict_proba(reloaded, probe, max_length=64, prompt_suffix=SUFFIX) == pytest.approx(ours, abs=1e-6)
    assert len(set(ours)) > 1


def test_lm_head_logits_are_the_causal_lm_next_token_logits(tiny_model_dir: Path) -> None:
    """What vLLM serves from the same weights: the next-token logits of " No" and " Yes"."""
    model = load_classifier(tiny_model_dir, head="lm")
    ids = model.tokenizer(["The sky is blue" + SUFFIX], return_tensors="pt").to(next(model.parameters()).device)
    logits = model.backbone(**ids).logits[0, -1]
    no, yes = (model.tokenizer(w, add_special_tokens=False)["input_ids"][0] for w in (" No", " Yes"))
    assert torch.allclose(model(ids["input_ids"], ids["attention_mask"])[0], logits[[no, yes]], atol=1e-5)


def test_gradient_checkpointing_and_micro_batches_change_memory_not_results(tiny_model_dir: Path) -> None:
    inputs, targets = keyword_set(32, seed=0)
    losses = []
    for checkpointing, micro in ((False, None), (True, 4)):
        model = load_classifier(tiny_model_dir, head="lm", lora=LoraSettings(r=4), gradient_checkpointing=checkpointing)
        config = fast_config(epochs=1, micro_batch_size=micro, gradient_checkpointing=checkpointing)
        losses.append(train_classifier(model, inputs, targets, config, prompt_suffix=SUFFIX).losses)
    assert losses[0] == pytest.approx(losses[1], abs=1e-5)


def test_full_linear_classifier_round_trips(tiny_model_dir: Path, tmp_path: Path) -> None:
    model = load_classifier(tiny_model_dir, head="linear")
    inputs, targets = keyword_set(32, seed=0)
    train_classifier(model, inputs, targets, fast_config(epochs=1))
    model.save(tmp_path / "full")
    assert not list((tmp_path / "full").glob("*.bin")) and not list((tmp_path / "full").glob("*.pt"))
    reloaded = load_saved_classifier(tmp_path / "full")
    assert predict_proba(reloaded, inputs, max_length=64) == pytest.approx(
        predict_proba(model, inputs, max_length=64), abs=1e-6
    )


def test_answer_words_with_the_same_first_token_are_refused(tiny_model_dir: Path) -> None:
    with pytest.raises(ValueError, match="both start with token"):
        load_classifier(tiny_model_dir, head="lm", answer_words=(" water", " water fire"))


def train_lora(model_dir: Path, seed: int, **kwargs: object) -> tuple[Classifier, object]:
    """LoRA with dropout on the linear head: exercises the RNG as well as the optimizer state."""
    model = load_classifier(model_dir, head="linear", lora=LoraSettings(r=4, dropout=0.1), seed=seed)
    inputs, targets = keyword_set(48, seed=0)
    config = fast_config(epochs=2, batch_size=8, micro_batch_size=4, warmup_ratio=0.2, checkpoint_every=2, seed=seed)
    return model, train_classifier(model, inputs, targets, config, **kwargs)


def test_same_seed_same_weights_other_seed_other_weights(tiny_model_dir: Path) -> None:
    first, _ = train_lora(tiny_model_dir, seed=0)
    again, _ = train_lora(tiny_model_dir, seed=0)
    other, _ = train_lora(tiny_model_dir, seed=1)
    assert changed(snapshot(first), again) == set()
    assert changed(snapshot(first), other)


def test_killed_and_resumed_run_ends_with_the_same_weights(tiny_model_dir: Path, tmp_path: Path) -> None:
    uninterrupted, expected = train_lora(tiny_model_dir, seed=0)

    def cancel_at_step_5(info: StepInfo) -> None:
        if info.step == 5:
            raise KeyboardInterrupt("job cancelled")

    with pytest.raises(KeyboardInterrupt):
        train_lora(tiny_model_dir, seed=0, on_step=cancel_at_step_5, checkpoint_dir=tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step-00000004"]
    resumed, result = train_lora(tiny_model_dir, seed=0, checkpoint_dir=tmp_path)
    assert result.resumed_from_step == 4 and result.steps == expected.steps == 12
    assert result.losses == expected.losses
    assert changed(snapshot(uninterrupted), resumed) == set()
    again, finished = train_lora(tiny_model_dir, seed=0, checkpoint_dir=tmp_path)  # already done: nothing to train
    assert finished.resumed_from_step == 12 and finished.examples == 0
    assert changed(snapshot(uninterrupted), again) == set()


def test_evaluation_every_n_steps_sees_the_model_train_and_changes_nothing(tiny_model_dir: Path) -> None:
    plain, expected = train_lora(tiny_model_dir, seed=0)
    model = load_classifier(tiny_model_dir, head="linear", lora=LoraSettings(r=4, dropout=0.1), seed=0)
    inputs, targets = keyword_set(48, seed=0)
    held_out, _ = keyword_set(8, seed=1)
    seen: list[tuple[int, float]] = []

    def evaluate(classifier: Classifier) -> dict[str, float]:
        return {"mean_p": sum(predict_proba(classifier, held_out, max_length=64)) / len(held_out)}

    def on_step(info: StepInfo) -> None:
        if info.evaluation is not None:
            seen.append((info.step, info.evaluation["mean_p"]))
        assert model.training  # evaluation put the model back into training mode (dropout on)

    config = fast_config(
        epochs=2, batch_size=8, micro_batch_size=4, warmup_ratio=0.2, checkpoint_every=2, seed=0, eval_every=5
    )
    result = train_classifier(model, inputs, targets, config, on_step=on_step, evaluate=evaluate)
    assert [step for step, _ in seen] == [5, 10]  # not after the last step (12): the caller evaluates that
    assert [(step, metrics["mean_p"]) for step, metrics in result.evaluations] == seen
    assert seen[0][1] != seen[1][1] != 0.5  # the model under evaluation is the one being trained
    assert result.losses == expected.losses and changed(snapshot(plain), model) == set()


def test_checkpoint_of_another_run_is_refused(tiny_model_dir: Path, tmp_path: Path) -> None:
    model = load_classifier(tiny_model_dir, head="linear")
    inputs, targets = keyword_set(16, seed=0)
    train_classifier(model, inputs, targets, fast_config(epochs=1), checkpoint_dir=tmp_path)
    with pytest.raises(CheckpointMismatch, match="different run"):
        train_classifier(model, inputs, targets, fast_config(epochs=1, lr=5e-4), checkpoint_dir=tmp_path)


def test_predict_proba_keeps_input_order(tiny_model_dir: Path) -> None:
    model = load_classifier(tiny_model_dir, head="lm")
    inputs, _ = keyword_set(20, seed=4)  # mixed lengths, so sorting by length reorders them
    one_by_one = [predict_proba(model, [item], max_length=64, prompt_suffix=SUFFIX)[0] for item in inputs]
    batched = predict_proba(model, inputs, max_length=64, batch_size=7, prompt_suffix=SUFFIX)
    assert batched == pytest.approx(one_by_one, abs=1e-5)
    assert len(set(round(p, 6) for p in batched)) > 10


def test_debate_context_that_states_the_answer_beats_no_context(tiny_model_dir: Path) -> None:
    """The product's premise in miniature: a weak model that reads an informative transcript learns
    what the text alone cannot teach it."""
    config = fast_config(epochs=3, batch_size=16)
    accuracies = {}
    for with_context in (True, False):
        model = load_classifier(tiny_model_dir, head="linear")
        train_inputs, train_targets = debate_set(256, seed=0, with_context=with_context)
        train_classifier(model, train_inputs, train_targets, config)
        test_inputs, test_targets = debate_set(128, seed=1, with_context=with_context)
        accuracies[with_context] = accuracy(predict_proba(model, test_inputs, max_length=64), test_targets)
    assert accuracies[True] >= 0.95
    assert accuracies[False] <= 0.65


def test_bad_settings_and_data_fail_before_training(tiny_model_dir: Path) -> None:
    with pytest.raises(ValueError, match="must be >= 1 and divide batch_size=32"):
        TrainConfig(batch_size=32, micro_batch_size=5)
    assert LoraSettings(target_modules=["q_proj"]).target_modules == ("q_proj",)  # as read from JSON
    model = load_classifier(tiny_model_dir, head="linear")
    with pytest.raises(ValueError, match="2 inputs but 1 targets"):
        train_classifier(model, [ClassifierInput("a"), ClassifierInput("b")], [1.0], fast_config())
    with pytest.raises(ValueError, match=r"probabilities in \[0, 1\]; got e.g. 2.0"):
        train_classifier(model, [ClassifierInput("a")], [2.0], fast_config())
    with pytest.raises(ValueError, match="head='mlp'"):
        load_classifier(tiny_model_dir, head="mlp")
