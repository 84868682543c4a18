"""The text a weak or strong classifier reads for one example.

Deterministic and label-free: it is built from the question, the context and the
candidate only, with the candidate last so the classifier's last token sits right after
the claim it judges. Debate transcripts, when used, are appended by the trainer.
"""

from __future__ import annotations

from typing import NamedTuple

from trainers.tasks.schema import TaskDataError, TaskExample


class Layout(NamedTuple):
    """Headings for the context (shown first, when present), the question and the candidate."""

    context: str
    question: str
    candidate: str


LAYOUTS: dict[str, Layout] = {
    "sciq": Layout("Background", "Q", "A"),
    "boolq": Layout("Passage", "Q", "A"),
    "cosmos_qa": Layout("Story", "Q", "A"),
    "amazon_polarity": Layout("Context", "Review", "Sentiment"),
    "safety": Layout("Context", "User request", "Judgement"),
    "legal": Layout("Privacy-policy clause", "User question", "Relevance of the clause"),
    "synthetic": Layout("Context", "Q", "A"),
}


def format_example(example: TaskExample) -> str:
    """The classifier input for `example`, e.g. "Background: ...\\n\\nQ: ...\\nA: <candidate>"."""
    if example.task == "anthropic_hh":
        # The question already reads "Human: ...\n\nAssistant: ...\n\nHuman: ..."; the
        # candidate continues the conversation as its next assistant turn.
        return f"{example.question}\n\nAssistant: {example.candidate}"
    if example.task not in LAYOUTS:
        raise TaskDataError(
            f"no text layout for task {example.task!r}; known: anthropic_hh, {', '.join(LAYOUTS)}"
        )
    layout = LAYOUTS[example.task]
    claim = f"{layout.question}: {example.question}\n{layout.candidate}: {example.candidate}"
    return f"{layout.context}: {example.context}\n\n{claim}" if example.context else claim
