"""The lm head + LoRA classifier, saved, is an adapter vLLM serves with the same " Yes"/" No" probabilities."""

from __future__ import annotations

import math
from pathlib import Path

import httpx
import pytest

from service.local_vllm import LocalVLLM
from tests.trainers.test_training import SUFFIX, keyword_set
from trainers.training import LoraSettings, TrainConfig, encode_inputs, load_classifier, predict_proba, train_classifier
from trainers.training.classifier import answer_token_ids

ADAPTER_NAME = "classifier-under-test"


def served_probability(server: LocalVLLM, model: str, prompt: list[int], answers: tuple[int, int]) -> float:
    """softmax over the two answer tokens of the served model's next-token log-probabilities."""
    logprobs = []
    for answer in answers:
        body = {"model": model, "prompt": prompt + [answer], "max_tokens": 1, "temperature": 0, "prompt_logprobs": 0}
        response = httpx.post(f"{server.base_url}/v1/completions", json=body, timeout=120)
        response.raise_for_status()
        logprobs.append(response.json()["choices"][0]["prompt_logprobs"][-1][str(answer)]["logprob"])
    return 1.0 / (1.0 + math.exp(logprobs[0] - logprobs[1]))


@pytest.mark.vllm
def test_vllm_serves_the_saved_adapter_with_the_trained_probabilities(
    vllm_server: LocalVLLM, tiny_model_dir: Path, tmp_path: Path
) -> None:
    model = load_classifier(tiny_model_dir, head="lm", lora=LoraSettings(r=8), device="cpu")
    inputs, targets = keyword_set(64, seed=0)
    config = TrainConfig(epochs=2, lr=5e-3, batch_size=16, max_length=64)
    train_classifier(model, inputs, targets, config, prompt_suffix=SUFFIX)
    model.save(tmp_path / "adapter")
    loaded = httpx.post(
        f"{vllm_server.base_url}/v1/load_lora_adapter",
        json={"lora_name": ADAPTER_NAME, "lora_path": str(tmp_path / "adapter")},
        timeout=120,
    )
    assert loaded.status_code == 200, loaded.text

    probes, _ = keyword_set(4, seed=7)
    ours = predict_proba(model, probes, max_length=64, prompt_suffix=SUFFIX)
    prompts, _ = encode_inputs(model.tokenizer, probes, max_length=64, prompt_suffix=SUFFIX)
    answers = answer_token_ids(model.tokenizer, model.spec.answer_words)
    served = [served_probability(vllm_server, ADAPTER_NAME, prompt, answers) for prompt in prompts]
    base = [served_probability(vllm_server, vllm_server.served_name, prompt, answers) for prompt in prompts]
    assert served == pytest.approx(ours, abs=0.02)
    assert max(abs(s - b) for s, b in zip(served, base, strict=True)) > 0.1  # the adapter is what moved them
