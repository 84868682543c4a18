"""StrongModelClient against a real vLLM on loopback (tiny random Llama, max_model_len 1024).

Run: .venv/bin/python -m pytest tests/debate -p tests.support.vllm_fixtures -m vllm
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from debate.client import RetryPolicy, StrongModelClient
from debate.errors import ContextTooLong, ModelNotFound
from debate.openai_types import ChatMessage, Completion

pytestmark = pytest.mark.vllm

QUESTION = [ChatMessage("system", "You answer briefly."), ChatMessage("user", "Name a planet.")]


def with_client(server: Any, action: Any) -> Any:
    async def go() -> Any:
        retry = RetryPolicy(max_retries=1, backoff_base_s=0.05)
        async with StrongModelClient(server.base_url, retry=retry, timeout=60) as client:
            return await action(client)

    return asyncio.run(go())


def texts(completion: Completion) -> list[str]:
    return [choice.text for choice in completion.choices]


def test_check_ready_and_list_models(vllm_server: Any) -> None:
    async def action(client: StrongModelClient) -> list[str]:
        await client.check_ready(vllm_server.served_name)
        await client.check_ready(vllm_server.served_name, endpoint="completions")
        return await client.list_models()

    assert vllm_server.served_name in with_client(vllm_server, action)


def test_chat_is_reproducible_per_seed_and_records_usage(vllm_server: Any) -> None:
    async def action(client: StrongModelClient) -> list[Completion]:
        return [await client.chat("strong", QUESTION, temperature=1.0, max_tokens=12, seed=seed) for seed in (1, 1, 2)]

    first, again, other = with_client(vllm_server, action)
    assert texts(first) == texts(again) != texts(other)
    assert first.model == "strong"
    assert first.usage.completion_tokens == 12 and first.usage.prompt_tokens > 5
    assert first.choices[0].finish_reason == "length"


def test_completion_with_n_and_logprobs(vllm_server: Any) -> None:
    async def action(client: StrongModelClient) -> list[Completion]:
        return [
            await client.complete("strong", "The sky is", temperature=1.0, max_tokens=6, seed=7, n=2, logprobs=3)
            for _ in range(2)
        ]

    first, again = with_client(vllm_server, action)
    assert texts(first) == texts(again)
    assert len(first.choices) == 2 and texts(first)[0] != texts(first)[1]
    assert first.usage.completion_tokens == 12
    tokens = first.choices[0].logprobs
    assert tokens is not None and len(tokens) == 6
    assert all(token.logprob <= 0 and 3 <= len(token.top) <= 4 for token in tokens)
    assert "".join(token.token for token in tokens) == first.choices[0].text


def test_chat_logprobs(vllm_server: Any) -> None:
    async def action(client: StrongModelClient) -> Completion:
        return await client.chat("strong", QUESTION, max_tokens=4, logprobs=2, seed=3)

    completion = with_client(vllm_server, action)
    tokens = completion.choices[0].logprobs
    assert tokens is not None and len(tokens) == 4
    assert all(len(token.top) == 2 and token.logprob <= 0 for token in tokens)
    assert "".join(token.token for token in tokens) == completion.choices[0].text


def test_unknown_model_is_model_not_found(vllm_server: Any) -> None:
    async def action(client: StrongModelClient) -> None:
        await client.chat("no-such-model", QUESTION, max_tokens=1)

    with pytest.raises(ModelNotFound, match=r"no-such-model.*does not exist") as caught:
        with_client(vllm_server, action)
    assert caught.value.status_code == 404
    assert f"{vllm_server.base_url}/v1/models" in str(caught.value)


@pytest.mark.parametrize("endpoint", ["chat", "completions"])
def test_prompt_longer_than_max_model_len_is_context_too_long(vllm_server: Any, endpoint: str) -> None:
    # ~2,500 tokens of text against max_model_len 1024.
    long_text = "the weather report said that it will rain tomorrow " * 250

    async def action(client: StrongModelClient) -> None:
        if endpoint == "chat":
            await client.chat("strong", [ChatMessage("user", long_text)], max_tokens=4)
        else:
            await client.complete("strong", long_text, max_tokens=4)

    with pytest.raises(ContextTooLong, match="maximum context length is 1024") as caught:
        with_client(vllm_server, action)
    assert caught.value.status_code == 400
    assert "--max-model-len" in str(caught.value)
