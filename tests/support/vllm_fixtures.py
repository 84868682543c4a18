"""pytest fixtures: a tiny model directory and a real vLLM server on loopback.

Registered by `tests/conftest.py` through `pytest_plugins`; to use them without it,
run `pytest -p tests.support.vllm_fixtures ...`. The server is started once per
session (45-90 s on 2 CPU cores) with LoRA enabled so LoRA tests can share it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from service.local_vllm import LocalVLLM, VLLMStartError, start_local_vllm
from trainers.tiny_model import make_tiny_model

SERVED_NAME = "strong"


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random Llama (2 layers, hidden 128, 2 heads, vocab 2048, seed 0), built once."""
    return make_tiny_model(tmp_path_factory.mktemp("tiny-model") / "model")


@pytest.fixture(scope="session")
def lora_dir(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A rank-8 LoRA adapter for the tiny model whose B matrices are random, so it changes outputs."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    model = get_peft_model(base, LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, target_modules=["q_proj", "v_proj"]))
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:  # peft initialises B to zero: the adapter would be a no-op
                param.copy_(torch.randn(param.shape, generator=generator))
    out = tmp_path_factory.mktemp("lora") / "adapter"
    model.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def vllm_server(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalVLLM]:
    """A vLLM server serving `tiny_model_dir` as "strong" with runtime LoRA loading on."""
    yield from _serve(tiny_model_dir, tmp_path_factory)


@pytest.fixture(scope="session")
def testbed_vllm_server(testbed_strong_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalVLLM]:
    """A vLLM server serving the testbed's pretrained strong model as "strong" (the debaters that know the facts)."""
    yield from _serve(testbed_strong_dir, tmp_path_factory)


def _serve(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalVLLM]:
    with start_test_vllm(model_dir, tmp_path_factory) as server:
        yield server


def start_test_vllm(model_dir: Path, tmp_path_factory: pytest.TempPathFactory, **options: Any) -> LocalVLLM:
    """A vLLM like the session's (LoRA on, its own log file), or the test fails saying why it did not start."""
    log_path = tmp_path_factory.mktemp("vllm-log") / "vllm.log"
    try:
        return start_local_vllm(model_dir, served_name=SERVED_NAME, enable_lora=True, log_path=log_path, **options)
    except VLLMStartError as exc:
        pytest.fail(f"could not start vLLM for the tests: {exc}", pytrace=False)
