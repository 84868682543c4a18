"""The built-in latent-knowledge testbed: its claims, its tokenizer, and pretrained models that know
(strong) or do not know (weak) the facts — the premise every W2S effect on our demo rests on."""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest
from transformers import AutoModelForCausalLM, AutoTokenizer

from trainers.tasks import load_examples
from trainers.tasks.testbed import all_facts, arithmetic_claims, family_of
from trainers.testbed import ModelSpec, answer_accuracy, build_tokenizer, ensure_testbed_model
from trainers.training.classifier import answer_token_ids

MODEL_FILES = ("model.safetensors", "tokenizer.json", "tokenizer_config.json", "config.json")


def _true_answer(question: str) -> int:
    """Recompute a claim's answer from its text, independently of the task module."""
    if match := re.fullmatch(r"max\((\d+),(\d+)\)=", question):
        return max(int(match[1]), int(match[2]))
    a, op, b = re.fullmatch(r"(\d+)([+*-])(\d+)=", question).groups()
    return {"+": int(a) + int(b), "*": int(a) * int(b), "-": int(a) - int(b)}[op]


def test_claims_are_balanced_and_labelled_by_their_arithmetic() -> None:
    examples = arithmetic_claims(seed=0, size=801)
    assert sum(e.label for e in examples) == 401
    assert len({e.source_id for e in examples}) == 801  # no fact twice, so splits never share one
    for example in examples:
        right, claimed = _true_answer(example.question), int(example.candidate)
        assert (claimed == right) == bool(example.label), example
        if not example.label and family_of(example) == "max":
            a, b = map(int, re.findall(r"\d+", example.question))
            assert claimed == min(a, b)
        elif not example.label:
            assert 1 <= abs(claimed - right) <= 10 and claimed >= 0
    assert {family_of(e) for e in examples} == {"add", "mul", "sub", "max"}
    assert arithmetic_claims(seed=0, size=801) == examples
    assert arithmetic_claims(seed=1, size=801) != examples
    assert load_examples("testbed", seed=0, size=50) == arithmetic_claims(0, 50)


def test_tokenizer_keeps_every_character_and_serves_bare_prompts() -> None:
    tokenizer = build_tokenizer()
    ids = tokenizer("max(12,7)=12")["input_ids"]
    assert ids[0] == tokenizer.bos_token_id and len(ids) == 1 + len("max(12,7)=12")  # digits never merged
    transcript = "Debater A (arguing the answer is correct): 12+7=19\n\n12+7=21"
    assert tokenizer.decode(tokenizer(transcript)["input_ids"], skip_special_tokens=True) == transcript
    prompt = tokenizer.apply_chat_template(
        [{"role": "system", "content": ""}, {"role": "user", "content": "3+4="}],
        tokenize=False,
        add_generation_prompt=True,
    )
    assert prompt == "<s>3+4="  # what the model was pretrained on, with nothing of a chat around it
    assert len(set(answer_token_ids(tokenizer, (" No", " Yes")))) == 2  # the lm head works on these models too


def test_pretraining_is_deterministic_and_cached(tmp_path: Path) -> None:
    spec = ModelSpec(layers=1, hidden=64, pretrain_steps=3, batch_size=8, warmup_steps=1)
    first, second = ensure_testbed_model(tmp_path / "a", spec), ensure_testbed_model(tmp_path / "b", spec)
    for name in MODEL_FILES:
        assert (first / name).read_bytes() == (second / name).read_bytes(), name
    stamp = (first / "model.safetensors").stat().st_mtime_ns
    assert ensure_testbed_model(first, spec) == first and (first / "model.safetensors").stat().st_mtime_ns == stamp
    with pytest.raises(ValueError, match="something other than"):
        ensure_testbed_model(first, ModelSpec(layers=1, hidden=64, pretrain_steps=4, batch_size=8))


@pytest.mark.slow
def test_strong_model_knows_the_facts_and_the_weak_model_does_not(
    testbed_strong_dir: Path, testbed_weak_dir: Path
) -> None:
    """Measured on seed 0: strong 100/100/99/87 %, weak 12/31/6/11 % (add/mul/sub/max); the margins
    leave room for other machines' float noise but fail if pretraining stops teaching the facts."""
    rng = random.Random(0)
    sample = {family: rng.sample(facts, 40) for family, facts in all_facts().items()}
    known = {}
    for name, path in (("strong", testbed_strong_dir), ("weak", testbed_weak_dir)):
        model, tokenizer = AutoModelForCausalLM.from_pretrained(path), AutoTokenizer.from_pretrained(path)
        known[name] = {family: answer_accuracy(model, tokenizer, facts) for family, facts in sample.items()}
    assert min(known["strong"].values()) >= 0.75, known
    assert sum(known["weak"].values()) / 4 <= 0.45, known
    assert sum(known["strong"].values()) / 4 - sum(known["weak"].values()) / 4 >= 0.5, known
