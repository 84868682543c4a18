"""pytest fixtures: a tiny model directory and a real vLLM server on loopback.

Registered by `tests/conftest.py` through `pytest_plugins`; to use them without it,
run `pytest -p tests.support.vllm_fixtures ...`. The server is started once per
session (45-90 s on 2 CPU cores) with LoRA enabled so LoRA tests can share it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from service.local_vllm import LocalVLLM, VLLMStartError, start_local_vllm
from trainers.tiny_model import make_tiny_model

SERVED_NAME = "strong"


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random Llama (2 layers, hidden 128, 2 heads, vocab 2048, seed 0), built once."""
    return make_tiny_model(tmp_path_factory.mktemp("tiny-model") / "model")


@pytest.fixture(scope="session")
def vllm_server(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalVLLM]:
    """A vLLM server serving `tiny_model_dir` as "strong" with runtime LoRA loading on."""
    yield from _serve(tiny_model_dir, tmp_path_factory)


@pytest.fixture(scope="session")
def testbed_vllm_server(testbed_strong_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalVLLM]:
    """A vLLM server serving the testbed's pretrained strong model as "strong" (the debaters that know the facts)."""
    yield from _serve(testbed_strong_dir, tmp_path_factory)


def _serve(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalVLLM]:
    log_path = tmp_path_factory.mktemp("vllm-log") / "vllm.log"
    try:
        server = start_local_vllm(model_dir, served_name=SERVED_NAME, enable_lora=True, log_path=log_path)
    except VLLMStartError as exc:
        pytest.fail(f"could not start vLLM for the tests: {exc}", pytrace=False)
    with server:
        yield server
