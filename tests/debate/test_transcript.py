"""Transcript values: JSON round trip and the weak model's rendering (pure)."""

from __future__ import annotations

import json

import pytest

from debate.errors import InvalidProtocol
from debate.spec import DebateSpec, SamplingParams
from debate.transcript import DebateFailure, DebateResult, Turn, render_for_weak

SPEC = DebateSpec(
    question="Is the sky green?",
    candidate_answer="yes",
    task="boolq",
    context="The sky looks blue because of Rayleigh scattering.",
    swap=True,
    seed=7,
    verify_quotes=True,
    sampling=SamplingParams(temperature=0.3, top_p=0.9, max_tokens=64),
)
TURNS = (
    Turn(
        index=0,
        speaker="A",
        stance="incorrect",
        content="It is <v_quote>blue</v_quote>.",
        prompt_tokens=100,
        completion_tokens=12,
        finish_reason="stop",
        latency_s=0.5,
        quotes_verified=1,
    ),
    Turn(
        index=1,
        speaker="B",
        stance="correct",
        content="At dusk it can look green.",
        prompt_tokens=130,
        completion_tokens=64,
        finish_reason="length",
        latency_s=0.75,
    ),
)


def test_debate_result_round_trips_through_json() -> None:
    result = DebateResult(spec=SPEC, turns=TURNS, latency_s=1.5)
    data = json.loads(json.dumps(result.to_dict()))
    assert data["prompt_tokens"] == 230 and data["completion_tokens"] == 76
    assert data["spec"]["sampling"] == {"temperature": 0.3, "top_p": 0.9, "max_tokens": 64}
    assert data["turns"][0]["quotes_verified"] == 1
    assert DebateResult.from_dict(data) == result


def test_failure_round_trips_and_bad_dicts_raise_invalid_protocol() -> None:
    failure = DebateFailure(spec=SPEC, turns=TURNS[:1], error_type="ContextTooLong", message="too long")
    assert DebateFailure.from_dict(json.loads(json.dumps(failure.to_dict()))) == failure
    with pytest.raises(InvalidProtocol, match="not a debate spec"):
        DebateSpec.from_dict({**SPEC.to_dict(), "judge": "human"})
    with pytest.raises(InvalidProtocol, match="not a turn"):
        Turn.from_dict({"index": 0})


def test_render_for_weak_labels_each_speech_with_speaker_and_side() -> None:
    assert render_for_weak(TURNS) == (
        "Debater A (arguing the answer is incorrect): It is <v_quote>blue</v_quote>.\n\n"
        "Debater B (arguing the answer is correct): At dusk it can look green."
    )
    consultant = Turn(index=0, speaker="consultant", stance="correct", content="  Yes.\n")
    assert render_for_weak([consultant]) == "Consultant (arguing the answer is correct): Yes."
    assert render_for_weak([]) == ""
