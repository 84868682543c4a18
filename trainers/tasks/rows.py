"""Source rows (the datasets' ORIGINAL fields) -> binary TaskExamples, one function per task.

The same functions serve rows read from local JSONL files and rows from the Hugging Face
hub, so both paths give identical examples. Each source row yields ONE example: a coin,
seeded by (seed, source_id), decides whether the candidate shown is a right or a wrong
answer, as Burns et al. do, so classes are balanced in expectation and a row's example
does not change when other rows are added or removed.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from trainers.tasks.schema import TaskDataError, TaskExample

Row = Mapping[str, Any]
SourceRow = tuple[str, Row]  # (source_id, the row's original fields)
RowConverter = Callable[[str, Row, random.Random], TaskExample]

ASSISTANT_TAG = "\n\nAssistant:"


def sciq_example(source_id: str, row: Row, rng: random.Random) -> TaskExample:
    """The correct answer or one of the three distractors; support passage as context."""
    correct = row["correct_answer"].strip()
    # 16 official rows repeat the correct answer among their distractors; showing it as
    # "wrong" would be label noise, so such distractors are never picked.
    distractors = [
        (f"distractor{k}", row[f"distractor{k}"].strip())
        for k in (1, 2, 3)
        if row[f"distractor{k}"].strip().lower() != correct.lower()
    ]
    show_correct = rng.random() < 0.5
    if show_correct or not distractors:
        candidate_id, candidate, label = "correct", correct, 1
    else:
        candidate_id, candidate = rng.choice(distractors)
        label = 0
    return TaskExample(
        task="sciq",
        source_id=source_id,
        candidate_id=candidate_id,
        question=row["question"].strip(),
        candidate=candidate,
        label=label,
        context=row["support"].strip() or None,
    )


def boolq_example(source_id: str, row: Row, rng: random.Random) -> TaskExample:
    """A yes/no question about a passage; the candidate is "yes" or "no" at random."""
    truth = "yes" if _as_bool(row["answer"], "answer") else "no"
    return _class_example("boolq", source_id, rng, ("yes", "no"), truth, _as_question(row["question"]),
                          context=row["passage"].strip())


def cosmos_qa_example(source_id: str, row: Row, rng: random.Random) -> TaskExample:
    """The right answer of four, or one of the three wrong ones; the story as context."""
    right = int(row["label"])
    if right not in range(4):
        raise TaskDataError(f"label must be 0-3, got {row['label']!r}")
    wrong = [k for k in range(4) if k != right]
    index = right if rng.random() < 0.5 else rng.choice(wrong)
    return TaskExample(
        task="cosmos_qa",
        source_id=source_id,
        candidate_id=f"answer{index}",
        question=row["question"].strip(),
        candidate=row[f"answer{index}"].strip(),
        label=int(index == right),
        context=row["context"].strip(),
    )


def anthropic_hh_example(source_id: str, row: Row, rng: random.Random) -> TaskExample:
    """The conversation is the question; the chosen or the rejected final reply is the candidate.

    The question is the conversation BOTH transcripts share, cut at the last
    "\\n\\nAssistant:" inside their common prefix. Usually that is just before the final
    replies; in the few rows (17 of the 8,552 test rows) whose transcripts already differ
    in an earlier assistant turn, the cut moves back to that turn and each candidate is
    the whole diverging continuation, so the question never contains either side's text.
    Rows whose two transcripts are identical (36 in test) are kept, label noise and all:
    dropping rows here would make the example set differ silently from the source's.
    """
    chosen, rejected = row["chosen"], row["rejected"]
    cut = os.path.commonprefix([chosen, rejected]).rfind(ASSISTANT_TAG)
    if cut < 0:
        raise TaskDataError(
            "chosen and rejected share no assistant turn to split the conversation at"
        )
    show_chosen = rng.random() < 0.5
    reply = (chosen if show_chosen else rejected)[cut + len(ASSISTANT_TAG) :]
    return TaskExample(
        task="anthropic_hh",
        source_id=source_id,
        candidate_id="chosen" if show_chosen else "rejected",
        question=chosen[:cut].strip(),
        candidate=reply.strip(),
        label=int(show_chosen),
    )


def amazon_polarity_example(source_id: str, row: Row, rng: random.Random) -> TaskExample:
    """The review (title, then body) is the question; "positive" or "negative" the candidate."""
    truth = {0: "negative", 1: "positive"}.get(int(row["label"]))
    if truth is None:
        raise TaskDataError(f"label must be 0 (negative) or 1 (positive), got {row['label']!r}")
    review = "\n".join(part.strip() for part in (row["title"], row["content"]) if part.strip())
    return _class_example("amazon_polarity", source_id, rng, ("positive", "negative"), truth, review)


def safety_example(source_id: str, row: Row, rng: random.Random) -> TaskExample:
    """A user request (WTS safety.csv: prompt, is_safe); candidate "safe" or "unsafe"."""
    truth = "safe" if _as_bool(row["is_safe"], "is_safe") else "unsafe"
    return _class_example("safety", source_id, rng, ("safe", "unsafe"), truth, row["prompt"].strip())


def legal_example(source_id: str, row: Row, rng: random.Random) -> TaskExample:
    """LegalBench privacy_policy_qa: is the clause (`text`) relevant to the user's question?"""
    truth = row["answer"].strip().lower()
    if truth not in ("relevant", "irrelevant"):
        raise TaskDataError(f"answer must be Relevant or Irrelevant, got {row['answer']!r}")
    return _class_example("legal", source_id, rng, ("relevant", "irrelevant"), truth, row["question"].strip(),
                          context=row["text"].strip())


ROW_CONVERTERS: dict[str, RowConverter] = {
    "sciq": sciq_example,
    "boolq": boolq_example,
    "cosmos_qa": cosmos_qa_example,
    "anthropic_hh": anthropic_hh_example,
    "amazon_polarity": amazon_polarity_example,
    "safety": safety_example,
    "legal": legal_example,
}


def convert_rows(task: str, rows: Iterable[SourceRow], seed: int) -> Iterator[TaskExample]:
    """Examples of `task` from (source_id, row) pairs; a bad row raises TaskDataError naming it."""
    convert = ROW_CONVERTERS[task]
    for source_id, row in rows:
        try:
            yield convert(source_id, row, random.Random(f"{seed}:{source_id}"))
        except KeyError as exc:
            raise TaskDataError(
                f"{task} row {source_id} has no field {exc}; the data must keep the dataset's "
                f"original fields (see /work/shared/data/SOURCES.md)"
            ) from exc
        except (TypeError, ValueError, AttributeError) as exc:
            raise TaskDataError(f"{task} row {source_id} is malformed: {exc}") from exc
        except TaskDataError as exc:
            raise TaskDataError(f"{task} row {source_id}: {exc}") from exc


def _class_example(task: str, source_id: str, rng: random.Random, classes: tuple[str, str], truth: str,
                   question: str, *, context: str | None = None) -> TaskExample:
    """A class-label task: the candidate is one of `classes` at random, correct iff it is `truth`."""
    candidate = rng.choice(classes)
    return TaskExample(task=task, source_id=source_id, candidate_id=candidate, question=question,
                       candidate=candidate, label=int(candidate == truth), context=context)


def _as_bool(value: Any, field: str) -> bool:
    """JSON booleans, or the "True"/"False" strings a CSV export leaves behind."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise TaskDataError(f"field {field!r} must be a boolean, got {value!r}")


def _as_question(text: str) -> str:
    """BoolQ questions come lower-case without a question mark; add the mark only."""
    text = text.strip()
    return text if text.endswith("?") else f"{text}?"
