"""Runner scheduling against a scripted loopback server: exact timing on cue (fast).

The real-vLLM runner tests (test_runner_vllm.py) show the same properties on the real
server; here delays are chosen per debate, so the assertions are exact.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from debate.client import RetryPolicy, StrongModelClient
from debate.errors import ModelNotFound
from debate.protocol import request_seed
from debate.runner import run_debates
from debate.spec import DebateSpec, SamplingParams
from debate.transcript import DebateFailure, DebateResult
from tests.debate.loopback import Reply, completion_body, loopback_server
from tests.debate.recording import RecordingTransport

FAST = RetryPolicy(max_retries=1, backoff_base_s=0.01)


def spec(name: str, seed: int = 0, **fields: Any) -> DebateSpec:
    return DebateSpec(
        question=f"Question {name}?",
        candidate_answer="yes",
        seed=seed,
        sampling=SamplingParams(max_tokens=8),
        **fields,
    )


def question_of(payload: dict[str, Any]) -> str:
    user = payload["messages"][1]["content"]
    return user.split("Question:\n", 1)[1].split("\n", 1)[0]


async def run(base_url: str, specs: list[DebateSpec], max_in_flight: int, transport: RecordingTransport) -> list[Any]:
    async with StrongModelClient(base_url, retry=FAST, transport=transport) as client:
        return await run_debates(client, specs, max_in_flight=max_in_flight)


def test_in_flight_is_bounded_and_saturated() -> None:
    transport = RecordingTransport()
    specs = [spec(str(i), seed=i) for i in range(20)]
    with loopback_server(lambda payload: Reply(200, completion_body("speech"), delay_s=0.03)) as server:
        outcomes = asyncio.run(run(server.base_url, specs, 4, transport))
    assert transport.peak_in_flight == 4
    assert len(transport.exchanges) == 60
    assert [o.spec for o in outcomes] == specs
    assert all(isinstance(o, DebateResult) and len(o.turns) == 3 for o in outcomes)


def test_a_slow_debate_does_not_hold_back_the_others() -> None:
    transport = RecordingTransport()
    specs = [spec("slow")] + [spec(f"fast{i}", seed=i) for i in range(5)]

    def reply(payload: dict[str, Any]) -> Reply:
        return Reply(
            200,
            completion_body("speech"),
            delay_s=0.25 if question_of(payload) == "Question slow?" else 0.01,
        )

    with loopback_server(reply) as server:
        asyncio.run(run(server.base_url, specs, 8, transport))
    slow = [e for e in transport.exchanges if question_of(e.payload) == "Question slow?"]
    fast = [e for e in transport.exchanges if question_of(e.payload) != "Question slow?"]
    assert len(slow) == 3 and len(fast) == 15
    # Every fast debate finished all three turns before the slow one even started turn 2:
    # with a barrier per turn they would all have waited for the slow turn 1.
    assert max(e.finished for e in fast) < slow[1].started


def test_simultaneous_round_sends_both_speeches_at_once() -> None:
    transport = RecordingTransport()
    with loopback_server(lambda p: Reply(200, completion_body("speech"), delay_s=0.1)) as server:
        (outcome,) = asyncio.run(run(server.base_url, [spec("sim", order="simultaneous", turns=2)], 8, transport))
    first_a, first_b, second_a, _ = transport.exchanges
    assert first_b.started < first_a.finished  # A and B of round 1 overlap
    assert second_a.started >= max(first_a.finished, first_b.finished)
    assert [(t.index, t.speaker) for t in outcome.turns] == [(0, "A"), (1, "B"), (2, "A"), (3, "B")]
    seeds = [e.payload["seed"] for e in transport.exchanges]
    assert seeds == [request_seed(0, index) for index in range(4)]


def test_context_error_fails_one_debate_and_model_error_stops_the_batch() -> None:
    too_long = {
        "error": {
            "message": "This model's maximum context length is 1024 tokens. However, "
            "your prompt contains at least 1025 input tokens",
            "code": 400,
        }
    }

    def reply(payload: dict[str, Any]) -> Reply:
        if (
            question_of(payload) == "Question long?"
            and "Debater A (arguing" in payload["messages"][1]["content"].split("Your turn:")[0]
        ):
            return Reply(400, too_long)  # the second turn no longer fits
        return Reply(200, completion_body("speech"))

    with loopback_server(reply) as server:
        outcomes = asyncio.run(run(server.base_url, [spec("ok"), spec("long")], 8, RecordingTransport()))
    ok, long = outcomes
    assert isinstance(ok, DebateResult) and len(ok.turns) == 3
    assert isinstance(long, DebateFailure) and long.error_type == "ContextTooLong"
    assert [t.speaker for t in long.turns] == ["A"]
    assert "--max-model-len" in long.message

    missing = {"error": {"message": "The model `strong` does not exist.", "code": 404}}
    with loopback_server([Reply(404, missing)]) as server:
        with pytest.raises(ModelNotFound):
            asyncio.run(run(server.base_url, [spec(str(i)) for i in range(5)], 2, RecordingTransport()))
