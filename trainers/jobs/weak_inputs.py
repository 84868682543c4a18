"""Classifier inputs for weak models: example text plus the debate transcript as context."""

from __future__ import annotations

from collections.abc import Sequence

from debate.transcript import Turn, render_turn
from trainers.training.inputs import ClassifierInput


def transcript_context(turns: Sequence[Turn]) -> tuple[str, ...]:
    """Each turn rendered as the debaters saw it ("Debater A (arguing the answer is correct): ..."), in debate order.

    Joined by the core's "\\n\\n" separator this is exactly `debate.render_for_weak(turns)`.
    """
    return tuple(render_turn(turn) for turn in sorted(turns, key=lambda turn: turn.index))


def weak_input(text: str, turns: Sequence[Turn] | None, answer: str = "") -> ClassifierInput:
    """The weak model's input for one example (`text` ends with the candidate `answer`); `turns=None`
    (or empty) is the no-debate baseline."""
    return ClassifierInput(text=text, context=transcript_context(turns) if turns else (), answer=answer)
