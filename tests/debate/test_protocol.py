"""Turn order, stances and visibility of every protocol (pure, no server)."""

from __future__ import annotations

import pytest

from debate.errors import InvalidProtocol
from debate.protocol import (
    consultant_stance,
    finish_turn,
    next_turns,
    request_seed,
    sample_specs,
    schedule,
)
from debate.spec import DebateSpec, SamplingParams
from debate.transcript import Turn


def make_spec(**fields: object) -> DebateSpec:
    base: dict[str, object] = {
        "question": "Which gas do green plants take in for photosynthesis?",
        "candidate_answer": "Oxygen",
        "task": "sciq",
    }
    return DebateSpec(**{**base, **fields})


def play(spec: DebateSpec) -> list[list[tuple[str, str, int, str]]]:
    """Run the protocol with canned speeches; per step: (speaker, stance, index, user prompt)."""
    turns: list[Turn] = []
    steps = []
    while requests := next_turns(spec, turns):
        steps.append([(r.speaker, r.stance, r.index, r.messages[1].content) for r in requests])
        turns += [
            Turn(
                index=r.index,
                speaker=r.speaker,
                stance=r.stance,
                content=f"speech-{r.index}-{r.speaker}",
            )
            for r in requests
        ]
    return steps


def speakers(steps: list[list[tuple[str, str, int, str]]]) -> list[list[tuple[str, str]]]:
    return [[(speaker, stance) for speaker, stance, _, _ in step] for step in steps]


def test_sequential_debate_default_is_a_b_a_with_a_arguing_correct() -> None:
    steps = play(make_spec())
    assert speakers(steps) == [
        [("A", "correct")],
        [("B", "incorrect")],
        [("A", "correct")],
    ]
    assert [step[0][2] for step in steps] == [0, 1, 2]


def test_swap_flips_which_debater_argues_correct() -> None:
    steps = play(make_spec(swap=True, turns=4))
    assert speakers(steps) == [
        [("A", "incorrect")],
        [("B", "correct")],
        [("A", "incorrect")],
        [("B", "correct")],
    ]


def test_sequential_speaker_sees_every_earlier_speech_and_b_attacks_a() -> None:
    steps = play(make_spec())
    turn_b, turn_a2 = steps[1][0][3], steps[2][0][3]
    assert "speech-0-A" in turn_b and "Debater B" in turn_b
    assert "point out the flaws in Debater A's argument" in turn_b
    assert "speech-0-A" in turn_a2 and "speech-1-B" in turn_a2
    assert "rebut Debater B's latest points" in turn_a2


def test_simultaneous_rounds_see_only_previous_rounds() -> None:
    steps = play(make_spec(order="simultaneous", turns=3))
    assert speakers(steps) == [[("A", "correct"), ("B", "incorrect")]] * 3
    assert [[index for _, _, index, _ in step] for step in steps] == [[0, 1], [2, 3], [4, 5]]
    round_two_a, round_two_b = steps[1][0][3], steps[1][1][3]
    for prompt in (round_two_a, round_two_b):
        assert "speech-0-A" in prompt and "speech-1-B" in prompt
        assert "speech-2-A" not in prompt and "speech-3-B" not in prompt
    assert "speech-2-A" not in steps[1][1][3]
    assert "cannot see it yet" in round_two_a


def test_simultaneous_resumes_a_half_finished_round_without_showing_it() -> None:
    spec = make_spec(order="simultaneous", turns=2)
    turns = [
        Turn(index=0, speaker="A", stance="correct", content="first-A"),
        Turn(index=1, speaker="B", stance="incorrect", content="first-B"),
        Turn(index=2, speaker="A", stance="correct", content="second-A"),
    ]
    (request,) = next_turns(spec, turns)
    assert (request.index, request.speaker, request.round) == (3, "B", 1)
    assert "first-A" in request.messages[1].content
    assert "second-A" not in request.messages[1].content


def consultancy(question: str, seed: int = 0, **fields: object) -> DebateSpec:
    return make_spec(protocol="consultancy", question=question, seed=seed, **fields)


def test_consultancy_side_given_or_drawn_per_example_deterministically() -> None:
    assert (
        speakers(play(make_spec(protocol="consultancy", consultant_side="incorrect")))
        == [[("consultant", "incorrect")]] * 3
    )
    questions = [f"What is {i} + {i}?" for i in range(60)]
    for seed in range(4):  # every seed argues both sides, in about equal numbers
        drawn = [consultant_stance(consultancy(q, seed)) for q in questions]
        assert drawn == [consultant_stance(consultancy(q, seed)) for q in questions]
        assert 15 <= drawn.count("correct") <= 45, (seed, drawn.count("correct"))
    one = questions[0]
    assert {consultant_stance(consultancy(one, seed)) for seed in range(20)} == {"correct", "incorrect"}
    # the candidate and the passage are part of the example: one question, several passages
    assert len({consultant_stance(consultancy(one, candidate_answer=f"{k}")) for k in range(20)}) == 2
    assert len({consultant_stance(consultancy(one, context=f"Passage {k}.")) for k in range(20)}) == 2


def test_consultant_side_does_not_depend_on_the_process_hash_seed() -> None:
    # Pinned values (Python randomises str hashes per process, so a hash-based draw would
    # fail here on most runs); if these change, stored consultancy debates stop replaying.
    sides = [consultant_stance(consultancy(f"What is {i} + {i}?", seed=i % 2)) for i in range(6)]
    assert sides == EXPECTED_CONSULTANT_SIDES


EXPECTED_CONSULTANT_SIDES = ["incorrect", "correct", "correct", "correct", "correct", "incorrect"]


@pytest.mark.parametrize(
    ("weak_prediction", "argued"),
    [(0.9, "incorrect"), (0.5, "incorrect"), (0.49, "correct"), (0.0, "correct")],
)
def test_market_maker_argues_against_the_weak_prediction(weak_prediction: float, argued: str) -> None:
    steps = play(make_spec(protocol="market_making", weak_prediction=weak_prediction, turns=2))
    assert speakers(steps) == [[("consultant", argued)]] * 2
    weak_side = "correct" if argued == "incorrect" else "incorrect"
    assert f"A weaker model judged the proposed answer {weak_side}" in steps[0][0][3]


def test_next_turns_is_empty_when_done_and_rejects_turns_out_of_plan() -> None:
    spec = make_spec(turns=1)
    done = [Turn(index=0, speaker="A", stance="correct", content="x")]
    assert next_turns(spec, done) == []
    with pytest.raises(InvalidProtocol, match="plans turn 0 as A/correct"):
        next_turns(spec, [Turn(index=0, speaker="B", stance="incorrect", content="x")])
    with pytest.raises(InvalidProtocol, match="plans only 1"):
        next_turns(spec, done * 2)


def test_request_seeds_differ_per_turn_and_per_debate_seed_and_are_stable() -> None:
    seeds = {request_seed(debate_seed, turn) for debate_seed in range(4) for turn in range(6)}
    assert len(seeds) == 24
    assert request_seed(3, 2) == request_seed(3, 2)
    assert all(0 <= seed < 2**31 for seed in seeds)
    first = next_turns(make_spec(seed=0), [])[0].seed
    assert first == request_seed(0, 0) != next_turns(make_spec(seed=1), [])[0].seed


def test_sample_specs_gives_k_consecutive_seeds() -> None:
    samples = sample_specs(make_spec(seed=10), 4)
    assert [spec.seed for spec in samples] == [10, 11, 12, 13]
    assert {spec.question for spec in samples} == {make_spec().question}
    with pytest.raises(InvalidProtocol, match="k"):
        sample_specs(make_spec(), 0)


def test_schedule_counts() -> None:
    assert len(schedule(make_spec(turns=5))) == 5
    assert len(schedule(make_spec(order="simultaneous", turns=2))) == 4
    assert len(schedule(make_spec(protocol="consultancy", turns=1))) == 1


def test_finish_turn_records_usage_and_verifies_quotes_when_asked() -> None:
    spec = make_spec(context="Plants take in carbon dioxide and release oxygen.", verify_quotes=True)
    (request,) = next_turns(spec, [])
    turn = finish_turn(
        spec,
        request,
        "  As the text says, <quote>plants take in Carbon Dioxide</quote> and <quote>eat rocks</quote>. ",
        prompt_tokens=120,
        completion_tokens=17,
        finish_reason="stop",
        latency_s=0.25,
    )
    assert turn.content == (
        "As the text says, <v_quote>plants take in Carbon Dioxide</v_quote> and <u_quote>eat rocks</u_quote>."
    )
    assert (turn.quotes_verified, turn.quotes_unverified) == (1, 1)
    assert (turn.prompt_tokens, turn.completion_tokens, turn.finish_reason) == (120, 17, "stop")
    assert (turn.index, turn.speaker, turn.stance, turn.latency_s) == (0, "A", "correct", 0.25)


def test_finish_turn_leaves_quotes_alone_without_verification() -> None:
    spec = make_spec(context="Plants take in carbon dioxide.")
    (request,) = next_turns(spec, [])
    turn = finish_turn(
        spec,
        request,
        "<quote>x</quote>",
        prompt_tokens=1,
        completion_tokens=1,
        finish_reason="length",
        latency_s=0.0,
    )
    assert turn.content == "<quote>x</quote>"
    assert (turn.quotes_verified, turn.quotes_unverified) == (0, 0)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (
            {"protocol": "judge"},
            "protocol must be one of debate, consultancy, market_making; got 'judge'",
        ),
        ({"order": "random"}, "order must be one of sequential, simultaneous"),
        ({"turns": 0}, "turns must be >= 1"),
        ({"task": "chess"}, "unknown task framing 'chess'"),
        ({"question": "  "}, "question is empty"),
        ({"candidate_answer": ""}, "candidate_answer is empty"),
        ({"verify_quotes": True}, "verify_quotes=True needs a passage"),
        ({"protocol": "consultancy", "order": "simultaneous"}, "has a single consultant"),
        ({"protocol": "consultancy", "swap": True}, "swap only applies to protocol='debate'"),
        ({"consultant_side": "correct"}, "consultant_side is only used by protocol='consultancy'"),
        ({"protocol": "consultancy", "consultant_side": "maybe"}, "consultant_side must be one of"),
        ({"protocol": "market_making"}, "needs weak_prediction"),
        ({"protocol": "market_making", "weak_prediction": 1.5}, r"probability in \[0, 1\]"),
        ({"weak_prediction": 0.3}, "weak_prediction is only used by protocol='market_making'"),
        ({"word_limit": 0}, "word_limit must be >= 1"),
        ({"sampling": {"temperature": -1}}, "temperature must be >= 0"),
        ({"sampling": {"top_p": 0}}, r"top_p must be in \(0, 1\]"),
        ({"sampling": {"max_tokens": 0}}, "max_tokens must be >= 1"),
    ],
)
def test_invalid_specs_raise_invalid_protocol(fields: dict[str, object], message: str) -> None:
    if isinstance(fields.get("sampling"), dict):
        with pytest.raises(InvalidProtocol, match=message):
            SamplingParams(**fields["sampling"])  # type: ignore[arg-type]
        return
    with pytest.raises(InvalidProtocol, match=message) as caught:
        make_spec(**fields)
    assert isinstance(caught.value, ValueError)
