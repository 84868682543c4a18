"""Per-task framing: how a debate prompt introduces the task and labels the example.

The wording is ours. Each framing tells the strong model what kind of task the example
comes from and names the fields, so the same protocol code serves every task.
"""

from __future__ import annotations

from dataclasses import dataclass

from debate.errors import InvalidProtocol


@dataclass(frozen=True)
class TaskFraming:
    """How one kind of task is presented to the debaters."""

    name: str
    intro: str
    question_label: str = "Question"
    context_label: str = "Passage"
    answer_label: str = "Proposed answer"
    # The strong model was pretrained on bare claims ("12+7=19"), not chat: every speech is its
    # own completion of the bare question, shown with the question ("12+7=19"), so the argument
    # is exactly what the model computes. The protocol (who speaks when, for which side) is unchanged.
    bare: bool = False


FRAMINGS: dict[str, TaskFraming] = {
    framing.name: framing
    for framing in (
        TaskFraming(
            name="generic",
            intro=(
                "The task is a question together with a proposed answer. The debate is "
                "about whether the proposed answer is correct."
            ),
            context_label="Context",
        ),
        TaskFraming(
            name="science_question",
            intro=(
                "The task is a school-level science question. One candidate answer is "
                "proposed; the debate is about whether it is the right answer."
            ),
            context_label="Supporting passage",
        ),
        TaskFraming(
            name="passage_question",
            intro=(
                "The task is a reading-comprehension question about a passage. The "
                "debate is about whether the proposed answer follows from the passage "
                "and ordinary common sense."
            ),
        ),
        TaskFraming(
            name="dialogue_comparison",
            intro=(
                "A person compared two assistant replies to the same conversation and "
                "preferred the more helpful, honest and harmless one. The debate is "
                "about whether the reply shown as the proposed answer is the one they "
                "preferred."
            ),
            question_label="Conversation",
            context_label="The other reply",
            answer_label="Proposed answer (the reply under consideration)",
        ),
        TaskFraming(
            name="review",
            intro=(
                "The task is to read a product review and say whether its overall "
                "sentiment is positive or negative. The debate is about whether the "
                "proposed label fits the review."
            ),
            question_label="Review",
            answer_label="Proposed label",
        ),
        TaskFraming(
            name="safety",
            intro=(
                "The task is to judge whether it is safe for an assistant to comply "
                "with a user's request. The debate is about whether the proposed "
                "safe/unsafe label is right."
            ),
            question_label="User request",
            answer_label="Proposed label",
        ),
        TaskFraming(
            name="arithmetic",
            intro="The task is an arithmetic claim; the debate is about whether it is correct.",
            bare=True,
        ),
        TaskFraming(
            name="legal_clause",
            intro=(
                "The task comes from privacy-policy question answering: decide whether "
                "a clause of a privacy policy is relevant to a user's question. The "
                "debate is about whether the proposed answer is right."
            ),
            context_label="Clause",
        ),
    )
}

# Dataset names used elsewhere in the project map onto the framings above.
TASK_ALIASES: dict[str, str] = {
    "sciq": "science_question",
    "boolq": "passage_question",
    "cosmos_qa": "passage_question",
    "anthropic_hh": "dialogue_comparison",
    "amazon_polarity": "review",
    "legal": "legal_clause",
    "legalbench_privacy": "legal_clause",
    "synthetic": "generic",
    "testbed": "arithmetic",
}


def framing_for(task: str) -> TaskFraming:
    """The framing for a framing name or a known dataset name."""
    name = TASK_ALIASES.get(task, task)
    if name not in FRAMINGS:
        known = sorted([*FRAMINGS, *TASK_ALIASES])
        raise InvalidProtocol(
            f"unknown task framing {task!r}; use one of {', '.join(known)} "
            "('generic' fits any question with a proposed answer)"
        )
    return FRAMINGS[name]
