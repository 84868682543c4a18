"""Prompt layout: shared prefixes for vLLM's prefix cache, framing, limits (pure)."""

from __future__ import annotations

import os

from debate.framing import FRAMINGS, TASK_ALIASES, framing_for
from debate.openai_types import ChatMessage
from debate.prompts import example_text, system_text
from debate.protocol import next_turns
from debate.spec import DebateSpec
from debate.transcript import Turn

PASSAGE = "Photosynthesis uses carbon dioxide and water; oxygen is released as a by-product."


def make_spec(**fields: object) -> DebateSpec:
    base: dict[str, object] = {
        "question": "Which gas do green plants take in for photosynthesis?",
        "candidate_answer": "Oxygen",
        "context": PASSAGE,
        "task": "sciq",
        "word_limit": 120,
    }
    return DebateSpec(**{**base, **fields})


def rendered(messages: tuple[ChatMessage, ...]) -> str:
    """What a chat template sees, in order: system text, then user text."""
    return "\n".join(f"<{m.role}>{m.content}" for m in messages)


def all_prompts(spec: DebateSpec) -> list[str]:
    turns: list[Turn] = []
    prompts = []
    while requests := next_turns(spec, turns):
        prompts += [rendered(r.messages) for r in requests]
        turns += [
            Turn(
                index=r.index,
                speaker=r.speaker,
                stance=r.stance,
                content=f"Speech number {r.index}.",
            )
            for r in requests
        ]
    return prompts


def test_every_turn_of_a_debate_shares_a_prefix_covering_the_whole_example() -> None:
    spec = make_spec()
    first, second, third = all_prompts(spec)
    shared = os.path.commonprefix([first, second, third])
    for part in (spec.question, PASSAGE, "Proposed answer:\nOxygen", system_text(spec)):
        assert part in shared
    # Nothing that names the speaker or side may come before the example ends.
    assert "Debater A (arguing" not in shared and "Debater B (arguing" not in shared


def test_a_later_turn_extends_the_earlier_turns_prompt_up_to_the_new_speech() -> None:
    second, third = all_prompts(make_spec(turns=3))[1:]
    # Turn 3's prompt is turn 2's prompt with only its instruction replaced: the
    # transcript is appended to, never rewritten.
    before_instruction = second[: second.index("Your turn:")]
    assert before_instruction.rstrip().endswith("Speech number 0.")
    assert third.startswith(before_instruction)
    assert third[len(before_instruction) :].startswith("Debater B (arguing the answer is incorrect): Speech number 1.")


def test_both_simultaneous_debaters_share_the_prefix_through_the_transcript() -> None:
    prompts = all_prompts(make_spec(order="simultaneous", turns=2))
    round_two_a, round_two_b = prompts[2], prompts[3]
    shared = os.path.commonprefix([round_two_a, round_two_b])
    assert "Speech number 0." in shared and "Speech number 1." in shared


def test_word_limit_and_quote_rules_are_stated() -> None:
    prompt = all_prompts(make_spec(verify_quotes=True, turns=1))[0]
    assert "Keep every speech under 120 words." in prompt
    assert "at most 120 words" in prompt
    assert "<quote></quote>" in prompt
    assert "<quote>" not in all_prompts(make_spec(turns=1))[0]
    no_limit = all_prompts(make_spec(word_limit=None, turns=1))[0]
    assert "words" not in no_limit


def test_consultancy_prompt_names_the_consultant_and_its_side() -> None:
    prompt = all_prompts(make_spec(protocol="consultancy", consultant_side="incorrect", turns=1))[0]
    assert "You are Consultant (arguing the answer is incorrect)." in prompt
    assert "Argue that the proposed answer is INCORRECT." in prompt
    assert "expert consultant" in prompt and "Two debaters" not in prompt


def test_framings_label_the_example_and_aliases_resolve() -> None:
    spec = make_spec(task="anthropic_hh", question="Human: hi\nAssistant: hello", context="Go away.")
    text = example_text(spec)
    assert text.startswith(FRAMINGS["dialogue_comparison"].intro)
    assert "Conversation:\nHuman: hi" in text and "The other reply:\nGo away." in text
    assert framing_for("boolq").name == "passage_question"
    assert all(alias_target in FRAMINGS for alias_target in TASK_ALIASES.values())
    assert {
        "generic",
        "science_question",
        "passage_question",
        "dialogue_comparison",
        "review",
        "safety",
        "legal_clause",
    } <= set(FRAMINGS)


def test_example_without_context_has_no_passage_section() -> None:
    text = example_text(make_spec(context=None, task="amazon_polarity", question="Great blender."))
    assert "Review:\nGreat blender." in text
    assert "Passage" not in text and "Proposed label:\nOxygen" in text
