"""What a weak model reads: the example text, then every debate speech rendered as the debaters saw it."""

from __future__ import annotations

from pathlib import Path

from transformers import AutoTokenizer

from debate import Turn, render_for_weak
from trainers.jobs.weak_inputs import transcript_context, weak_input
from trainers.training import ClassifierInput, encode_inputs
from trainers.training.inputs import SEPARATOR

TURNS = (
    Turn(index=1, speaker="B", stance="incorrect", content="  It is not water, the passage says fire. "),
    Turn(index=0, speaker="A", stance="correct", content="The answer is water."),
    Turn(index=2, speaker="A", stance="correct", content="The passage says water twice."),
)


def test_each_turn_is_one_context_part_in_debate_order() -> None:
    assert transcript_context(TURNS) == (
        "Debater A (arguing the answer is correct): The answer is water.",
        "Debater B (arguing the answer is incorrect): It is not water, the passage says fire.",
        "Debater A (arguing the answer is correct): The passage says water twice.",
    )
    ordered = sorted(TURNS, key=lambda turn: turn.index)
    assert SEPARATOR.join(transcript_context(TURNS)) == render_for_weak(ordered)


def test_weak_input_with_and_without_a_debate() -> None:
    assert weak_input("Q: what is wet? A: water", None) == ClassifierInput("Q: what is wet? A: water")
    assert weak_input("Q", []) == ClassifierInput("Q")
    assert weak_input("Q", TURNS).context == transcript_context(TURNS)


def test_untrimmed_weak_input_reads_as_text_then_transcript(tiny_model_dir: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    ordered = sorted(TURNS, key=lambda turn: turn.index)
    (encoded,), stats = encode_inputs(tokenizer, [weak_input("Q: what is wet?", TURNS)], max_length=512)
    decoded = tokenizer.decode(encoded, skip_special_tokens=True)
    assert decoded == "Q: what is wet?" + SEPARATOR + render_for_weak(ordered)
    assert stats.inputs_trimmed == 0
