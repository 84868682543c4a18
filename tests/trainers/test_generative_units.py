"""Refinement prompts, the shipped generative configs, the tasks' examples."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.shared_data import shared_data_dir
from trainers.errors import RunConfigError
from trainers.generative import load_generative_examples, split_generative
from trainers.generative.config import GenerativeRunConfig, parse_generative_config
from trainers.generative.refine import Pair, icl_prompt, infer_intents, refine_icl, refine_with_intents
from trainers.hyperparameters import SftSettings, TrainSettings
from trainers.runs import load_any_run_config

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
PAIRS = [Pair(1, "1+1=", "3"), Pair(2, "2+2=", "5"), Pair(3, "3+3=", "7")]


def test_icl_shows_the_other_pairs_of_the_batch_not_the_example_itself() -> None:
    assert icl_prompt(PAIRS[0], PAIRS, "bare") == "2+2=5\n3+3=7\n1+1="
    instruct = icl_prompt(PAIRS[1], PAIRS, "instruct")
    assert instruct.endswith("Prompt: 2+2=\nAnswer:") and "Answer:5" not in instruct and "Answer:3" in instruct


def test_refinement_answers_each_example_afresh_through_the_model() -> None:
    asked: list[str] = []

    def complete(prompts: list[str], max_tokens: int, stop: list[str]) -> list[str]:
        asked.extend(prompts)
        return [f"answer {len(asked)}-{i}" for i in range(len(prompts))]

    refined = refine_icl(PAIRS, batch_size=2, style="bare", complete=complete, max_tokens=4)
    assert set(refined) == {1, 2, 3} and asked[0] == "2+2=5\n1+1=" and asked[2] == "3+3="
    groups = [PAIRS[:2], PAIRS[2:]]
    intents = infer_intents(groups, style="instruct", complete=complete, max_tokens=8)
    assert len(intents) == 2 and "In one sentence, the supervisor's intent is:" in asked[3]
    refined = refine_with_intents(groups, intents, style="instruct", complete=complete, max_tokens=4)
    assert asked[-1].startswith(f"Answer following the supervisor's intent: {intents[1]}")


def test_shipped_generative_configs_parse() -> None:
    for name in ("toxicity.yaml", "refinement_testbed.yaml"):
        config = load_any_run_config(CONFIGS / name)
        assert isinstance(config, GenerativeRunConfig)
        assert config.conditions()[0] == "weak" and config.conditions()[-1] == "ceiling"


def test_toxicity_examples_are_the_non_toxic_continuations() -> None:
    examples = load_generative_examples("toxicity", data_dir=shared_data_dir("real_toxicity_prompts"), seed=0)
    assert len(examples) == 1263 and all(example.target.strip() for example in examples)
    splits = split_generative(examples, {"weak_train": 10, "strong_train": 10, "test": 10}, seed=0)
    ids = [example.source_id for rows in splits.values() for example in rows]
    assert len(set(ids)) == 30


def test_sft_options_are_the_shared_training_fields_with_the_generative_defaults() -> None:
    config = parse_generative_config({"kind": "generative", "task": "testbed_qa", "weak": {"train": {"epochs": 3}}})
    assert config.weak.train == SftSettings(epochs=3, lr=1e-3, batch_size=16, max_length=128)
    assert config.strong.train == SftSettings(lr=1e-3, batch_size=16, max_length=128)
    assert set(SftSettings.model_fields) < set(TrainSettings.model_fields)  # one definition, shared
    with pytest.raises(RunConfigError, match="weak.train.max_length"):
        parse_generative_config({"kind": "generative", "task": "testbed_qa", "weak": {"train": {"max_length": 1}}})
