"""The text a weak or strong classifier reads for one example.

Deterministic and label-free: it is built from the question, the context and the
candidate only, with the candidate last so the classifier's last token sits right after
the claim it judges. Debate transcripts, when used, are appended by the trainer.

sciq, cosmos_qa, boolq and amazon_polarity read as the reference code's texts
(openai/weak-to-strong, datasets.py). A label-only task's reference text has no candidate;
ours ends with one line naming the positive class (the same for every example, so it tells
the classifier nothing) because the strong model's LM head asks whether "the proposed
answer" is correct.
"""

from __future__ import annotations

from trainers.tasks.schema import TaskDataError, TaskExample

TEMPLATES: dict[str, str] = {
    "sciq": "Q: {question} A: {candidate}",
    "sciq_support": "Q: {question} A: {candidate}",
    "cosmos_qa": "Context: {context}\nQuestion: {question}\nAnswer: {candidate}",
    "boolq": "Passage: {context}\nQuestion: {question}\nProposed answer: {candidate}",
    "amazon_polarity": "{question}\nProposed label: {candidate}",
    "safety": "User request: {question}\nProposed label: {candidate}",
    "legal": "Clause: {context}\nQuestion: {question}\nProposed answer: {candidate}",
    "synthetic": "Q: {question}\nA: {candidate}",
    "testbed": "{question}{candidate}",  # "12+7=19": the bare format the testbed's models were pretrained on
}
# A passage whose task's reference text has no place for it (sciq_support) comes first.
BACKGROUND = "Background: {context}\n\n"


def format_example(example: TaskExample) -> str:
    """The classifier input for `example`, e.g. "Q: What ...? A: <candidate>"."""
    if example.task == "anthropic_hh":
        # The question already reads "Human: ...\n\nAssistant: ...\n\nHuman: ..."; the
        # candidate continues the conversation as its next assistant turn.
        return f"{example.question}\n\nAssistant: {example.candidate}"
    if example.task not in TEMPLATES:
        raise TaskDataError(f"no text layout for task {example.task!r}; known: anthropic_hh, {', '.join(TEMPLATES)}")
    template = TEMPLATES[example.task]
    if example.context and "{context}" not in template:
        template = BACKGROUND + template
    return template.format(question=example.question, candidate=example.candidate, context=example.context or "")
