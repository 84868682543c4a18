"""Source rows (the datasets' ORIGINAL fields) -> binary TaskExamples, one function per task.

The same functions serve rows read from local JSONL files and rows from the Hugging Face
hub, so both paths give identical examples. Each source row yields ONE example, built as
Burns et al.'s reference code (openai/weak-to-strong, datasets.py) builds it:

* candidate tasks (sciq, cosmos_qa, anthropic_hh): a coin, seeded by (seed, source_id),
  decides whether the candidate shown is a right or a wrong answer, so classes are balanced
  in expectation and a row's example does not change when other rows are added or removed;
* label-only tasks (boolq, amazon_polarity, safety, legal): the label is the row's own
  class (1 = the positive class) and the candidate is always the positive class's name.
  A constant candidate carries no information, so the data's class prior stays the prior
  instead of becoming a one-word cue, and debaters still argue for ("correct") or against
  the positive class with the protocol unchanged.
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
# Cosmos QA's "none of the above" answers: as in the reference, a row whose true answer is one
# is never shown with it (label 0, another option as candidate): "None of the above" is only
# right in relation to the other options, which the classifier never sees.
NONE_OF_THE_ABOVE = "None of the above choices ."
# The class whose label is 1 in each label-only task; it is also the candidate every example
# shows, so "the candidate is correct" means "the example is of this class".
POSITIVE_CLASS = {"boolq": "yes", "amazon_polarity": "positive", "safety": "safe", "legal": "relevant"}


def sciq_example(source_id: str, row: Row, rng: random.Random) -> TaskExample:
    """ "Q: ... A: ..." with the correct answer or a distractor; no support passage (Burns et al.)."""
    return _sciq_example("sciq", source_id, row, rng, context=None)


def sciq_support_example(source_id: str, row: Row, rng: random.Random) -> TaskExample:
    """sciq with the support passage as context: NOT the reference format (the correct answer
    appears verbatim in the passage for most rows, which makes the task string matching)."""
    return _sciq_example("sciq_support", source_id, row, rng, context=row["support"].strip() or None)


def _sciq_example(task: str, source_id: str, row: Row, rng: random.Random, *, context: str | None) -> TaskExample:
    """The correct answer with p = 0.5, else one of the three distractors at random."""
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
        task=task,
        source_id=source_id,
        candidate_id=candidate_id,
        question=row["question"].strip(),
        candidate=candidate,
        label=label,
        context=context,
    )


def boolq_example(source_id: str, row: Row, rng: random.Random) -> TaskExample:
    """Passage + question; label = the dataset's own yes/no answer (Burns et al.)."""
    return _label_example(
        "boolq", source_id, _as_bool(row["answer"], "answer"), row["question"].strip(), context=row["passage"].strip()
    )


def cosmos_qa_example(source_id: str, row: Row, rng: random.Random) -> TaskExample:
    """The right answer of four with p = 0.5, else another option; the story as context.

    A right answer of "None of the above choices ." forces label 0 (see NONE_OF_THE_ABOVE).
    """
    right = int(row["label"])
    if right not in range(4):
        raise TaskDataError(f"label must be 0-3, got {row['label']!r}")
    true_answer = row[f"answer{right}"]
    label = 0 if NONE_OF_THE_ABOVE in true_answer else int(rng.random() < 0.5)
    others = [k for k in range(4) if row[f"answer{k}"] != true_answer]
    if not label and not others:
        raise TaskDataError("all four answers are the same text; there is no wrong answer to show")
    index = right if label else rng.choice(others)
    return TaskExample(
        task="cosmos_qa",
        source_id=source_id,
        candidate_id=f"answer{index}",
        question=row["question"].strip(),
        candidate=row[f"answer{index}"].strip(),
        label=label,
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
        raise TaskDataError("chosen and rejected share no assistant turn to split the conversation at")
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
    """The review, "{title} {content}"; label = its polarity (1 = positive), as Burns et al."""
    if int(row["label"]) not in (0, 1):
        raise TaskDataError(f"label must be 0 (negative) or 1 (positive), got {row['label']!r}")
    review = " ".join(part.strip() for part in (row["title"], row["content"]) if part.strip())
    return _label_example("amazon_polarity", source_id, bool(int(row["label"])), review)


def safety_example(source_id: str, row: Row, rng: random.Random) -> TaskExample:
    """A user request (WTS safety.csv: prompt, is_safe); label 1 = safe, as in WTS."""
    return _label_example("safety", source_id, _as_bool(row["is_safe"], "is_safe"), row["prompt"].strip())


def legal_example(source_id: str, row: Row, rng: random.Random) -> TaskExample:
    """LegalBench privacy_policy_qa: is the clause (`text`) relevant to the question? 1 = Relevant, as in WTS."""
    answer = row["answer"].strip().lower()
    if answer not in ("relevant", "irrelevant"):
        raise TaskDataError(f"answer must be Relevant or Irrelevant, got {row['answer']!r}")
    return _label_example(
        "legal", source_id, answer == "relevant", row["question"].strip(), context=row["text"].strip()
    )


ROW_CONVERTERS: dict[str, RowConverter] = {
    "sciq": sciq_example,
    "sciq_support": sciq_support_example,
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
                f"original fields (see docs/DATA.md)"
            ) from exc
        except (TypeError, ValueError, AttributeError) as exc:
            raise TaskDataError(f"{task} row {source_id} is malformed: {exc}") from exc
        except TaskDataError as exc:
            raise TaskDataError(f"{task} row {source_id}: {exc}") from exc


def _label_example(
    task: str, source_id: str, positive: bool, question: str, *, context: str | None = None
) -> TaskExample:
    """A label-only task's example: the candidate is the positive class, label 1 iff the row is of that class."""
    claim = POSITIVE_CLASS[task]
    return TaskExample(
        task=task,
        source_id=source_id,
        candidate_id=claim,
        question=question,
        candidate=claim,
        label=int(positive),
        context=context,
    )


def _as_bool(value: Any, field: str) -> bool:
    """JSON booleans, or the "True"/"False" strings a CSV export leaves behind."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise TaskDataError(f"field {field!r} must be a boolean, got {value!r}")
