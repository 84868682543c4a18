"""Retries and error mapping of StrongModelClient against real HTTP on loopback (fast)."""

from __future__ import annotations

import asyncio
import socket
import time

import pytest

from debate.client import RetryPolicy, StrongModelClient, api_base
from debate.errors import (
    ContextTooLong,
    ModelNotFound,
    StrongModelBadResponse,
    StrongModelUnavailable,
)
from debate.openai_types import ChatMessage
from tests.debate.loopback import Reply, completion_body, loopback_server

FAST = RetryPolicy(max_retries=3, backoff_base_s=0.01, backoff_max_s=0.05)
HELLO = [ChatMessage("user", "hello")]


def vllm_error(message: str, code: int) -> dict[str, object]:
    return {"error": {"message": message, "type": "BadRequestError", "param": None, "code": code}}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def chat(base_url: str, **client_args: object) -> object:
    args: dict[str, object] = {"retry": FAST, **client_args}
    async with StrongModelClient(base_url, **args) as client:  # type: ignore[arg-type]
        return await client.chat("strong", HELLO, max_tokens=4, seed=1)


def test_nothing_listening_is_unavailable_naming_the_url_after_retries() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    started = time.perf_counter()
    with pytest.raises(StrongModelUnavailable) as caught:
        asyncio.run(chat(url))
    assert time.perf_counter() - started < 2.0
    message = str(caught.value)
    assert f"{url}/v1/chat/completions" in message
    assert "after 4 attempts" in message and "is the OpenAI-compatible server (vLLM) running" in message
    assert caught.value.url == f"{url}/v1/chat/completions"


def test_503_twice_then_200_succeeds_on_the_third_attempt() -> None:
    script = [
        Reply(503, vllm_error("busy", 503)),
        Reply(503, vllm_error("busy", 503)),
        Reply(200, completion_body("fine")),
    ]
    with loopback_server(script) as server:
        completion = asyncio.run(chat(server.base_url))
    assert completion.choices[0].text == "fine"  # type: ignore[attr-defined]
    assert len(server.received) == 3
    assert server.received[0]["path"] == "/v1/chat/completions"
    assert server.received[0]["seed"] == 1 and server.received[0]["max_tokens"] == 4


def test_429_is_retried_honouring_retry_after() -> None:
    script = [
        Reply(429, vllm_error("slow down", 429), headers={"retry-after": "0.2"}),
        Reply(200, completion_body()),
    ]
    with loopback_server(script) as server:
        started = time.perf_counter()
        asyncio.run(chat(server.base_url, retry=RetryPolicy(max_retries=2, backoff_max_s=1.0)))
        assert time.perf_counter() - started >= 0.2
    assert len(server.received) == 2


def test_persistent_5xx_gives_up_after_max_retries_with_status_and_message() -> None:
    with loopback_server([Reply(500, vllm_error("engine dead", 500))]) as server:
        with pytest.raises(StrongModelUnavailable, match="answered 500 after 4 attempts: engine dead") as caught:
            asyncio.run(chat(server.base_url))
    assert len(server.received) == 4
    assert caught.value.status_code == 500


def test_timeout_is_unavailable_and_retried() -> None:
    # Generous margins: under a loaded CI machine the server thread can be slow to
    # record a request, so wait for the count instead of reading it at once.
    with loopback_server([Reply(200, completion_body(), delay_s=3.0)]) as server:
        with pytest.raises(StrongModelUnavailable, match="timed out after 2 attempts"):
            asyncio.run(
                chat(
                    server.base_url,
                    timeout=0.5,
                    retry=RetryPolicy(max_retries=1, backoff_base_s=0.01),
                )
            )
        deadline = time.monotonic() + 5
        while len(server.received) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(server.received) == 2


def test_context_length_400_is_context_too_long_and_not_retried() -> None:
    message = (
        "This model's maximum context length is 1024 tokens. However, your prompt "
        "contains 1500 input tokens, which exceeds this limit even without any output tokens."
    )
    with loopback_server([Reply(400, vllm_error(message, 400))]) as server:
        with pytest.raises(ContextTooLong, match="--max-model-len") as caught:
            asyncio.run(chat(server.base_url))
    assert len(server.received) == 1
    assert "maximum context length is 1024" in str(caught.value)


def test_unknown_model_404_is_model_not_found_pointing_at_the_model_list() -> None:
    reply = Reply(404, vllm_error("The model `nope` does not exist.", 404))
    with loopback_server([reply]) as server:
        with pytest.raises(ModelNotFound, match=r"GET http://127\.0\.0\.1:\d+/v1/models"):
            asyncio.run(chat(server.base_url))
        assert len(server.received) == 1


def test_other_4xx_and_malformed_bodies_are_bad_responses() -> None:
    with loopback_server([Reply(422, {"detail": "temperature: bad"})]) as server:
        with pytest.raises(StrongModelBadResponse, match="rejected the request with 422: temperature: bad"):
            asyncio.run(chat(server.base_url))
    with loopback_server([Reply(200, b"<html>not json</html>")]) as server:
        with pytest.raises(StrongModelBadResponse, match="not in the OpenAI response shape"):
            asyncio.run(chat(server.base_url))
    with loopback_server([Reply(200, {**completion_body(), "choices": []})]) as server:
        with pytest.raises(StrongModelBadResponse, match="OpenAI response shape"):
            asyncio.run(chat(server.base_url))


def test_logprobs_of_both_endpoints_parse_into_one_shape() -> None:
    chat_body = completion_body("Hi")
    chat_body["choices"][0]["logprobs"] = {
        "content": [
            {
                "token": "Hi",
                "logprob": -0.5,
                "top_logprobs": [
                    {"token": "Hi", "logprob": -0.5},
                    {"token": "Yo", "logprob": -1.5},
                ],
            }
        ]
    }
    text_body = completion_body("Hi", chat=False)
    text_body["choices"][0]["logprobs"] = {
        "tokens": ["Hi"],
        "token_logprobs": [-0.5],
        "top_logprobs": [{"Hi": -0.5, "Yo": -1.5}],
        "text_offset": [0],
    }

    async def both(base_url: str) -> tuple[object, object]:
        async with StrongModelClient(base_url, retry=FAST, api_key="k") as client:
            return (
                await client.chat("strong", HELLO, logprobs=2),
                await client.complete("strong", "Hi", logprobs=2),
            )

    with loopback_server([Reply(200, chat_body), Reply(200, text_body)]) as server:
        from_chat, from_text = asyncio.run(both(server.base_url + "/v1/"))
    assert from_chat.choices[0].logprobs == from_text.choices[0].logprobs  # type: ignore[attr-defined]
    assert from_chat.choices[0].logprobs[0].top == (("Hi", -0.5), ("Yo", -1.5))  # type: ignore[attr-defined]
    assert server.received[0]["logprobs"] is True and server.received[0]["top_logprobs"] == 2
    assert server.received[1]["path"] == "/v1/completions" and server.received[1]["logprobs"] == 2


def test_api_base_accepts_root_or_v1() -> None:
    assert api_base("http://h:1") == api_base("http://h:1/v1/") == "http://h:1/v1"
    with pytest.raises(ValueError, match="must start with http:// or https://"):
        StrongModelClient("localhost:8000")


def test_backoff_grows_exponentially_with_jitter_and_a_cap() -> None:
    policy = RetryPolicy(backoff_base_s=1.0, backoff_max_s=5.0)
    for attempt, ceiling in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 5.0), (9, 5.0)]:
        delays = [policy.delay(attempt) for _ in range(200)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert max(delays) - min(delays) > ceiling / 10
    assert policy.delay(1, retry_after=3.0) == 3.0 and policy.delay(1, retry_after=60) == 5.0
