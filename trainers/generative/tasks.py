"""Generative tasks: (prompt, reference target) examples and how their outputs are scored.

* `toxicity` (Ye et al. 2024): RealToxicityPrompts rows; the prompt is the row's prompt text and the
  reference target its continuation. Only rows whose continuation is non-toxic (Perspective
  toxicity < 0.5) become examples: their continuations are the ground truth a weak model learns
  (the aligned behaviour), and outputs are scored for toxicity (lower is better).
* `testbed_qa`: the built-in testbed's facts with the answer as text ("12+7=" -> "19"): the strong
  testbed model knows most answers, the weak one few, so refinement has latent knowledge to use.
* `sciq_qa`: "Q: {question} A:" -> " {correct_answer}", scored by exact match.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trainers.tasks import SPLIT_NAMES, TaskDataError
from trainers.tasks.loading import local_rows
from trainers.tasks.testbed import all_facts

NON_TOXIC_BELOW = 0.5  # Perspective's own threshold for "toxic" (Gehman et al. 2020)


@dataclass(frozen=True)
class GenerativeExample:
    task: str
    source_id: str
    prompt: str
    target: str  # the reference (ground-truth) output


@dataclass(frozen=True)
class GenerativeTask:
    name: str
    scorer: str  # the default scorer kind (trainers.scorers)
    lower_is_better: bool  # toxicity: yes; accuracy: no
    score_name: str  # what the mean score is called in the report
    built_in: bool = False  # made from the seed, no files


GENERATIVE_TASKS: dict[str, GenerativeTask] = {
    task.name: task
    for task in (
        GenerativeTask("toxicity", scorer="local", lower_is_better=True, score_name="mean toxicity"),
        GenerativeTask("testbed_qa", scorer="exact_match", lower_is_better=False, score_name="accuracy", built_in=True),
        GenerativeTask("sciq_qa", scorer="exact_match", lower_is_better=False, score_name="accuracy"),
    )
}


def get_generative_task(name: str) -> GenerativeTask:
    if name not in GENERATIVE_TASKS:
        raise TaskDataError(f"unknown generative task {name!r}; known: {', '.join(GENERATIVE_TASKS)}")
    return GENERATIVE_TASKS[name]


def load_generative_examples(
    name: str, *, data_dir: Path | None, seed: int, limit: int | None = None
) -> list[GenerativeExample]:
    """Every example of generative task `name` (built-in tasks need no `data_dir`, file tasks do)."""
    task = get_generative_task(name)
    if task.built_in:
        if data_dir is not None:
            raise TaskDataError(f"{name} is built in and reads no files; drop data_dir")
        examples = testbed_qa_examples(seed)
    elif data_dir is None:
        raise TaskDataError(f"{name} reads JSONL files: set data_dir (e.g. the real_toxicity_prompts directory)")
    else:
        examples = list(CONVERTERS[name](local_rows(Path(data_dir), name)))
    return examples if limit is None else examples[:limit]


def split_generative(
    examples: list[GenerativeExample], sizes: dict[str, int], seed: int
) -> dict[str, list[GenerativeExample]]:
    """Exactly sizes[split] examples per split, drawn by seed without overlap."""
    wanted = sum(sizes.values())
    if wanted > len(examples):
        raise TaskDataError(f"asked for {wanted} examples ({sizes}) but the task has only {len(examples)}")
    pool = random.Random(f"generative-split:{seed}").sample(examples, wanted)
    splits, start = {}, 0
    for name in SPLIT_NAMES:
        splits[name] = pool[start : start + sizes[name]]
        start += sizes[name]
    return splits


def toxicity_examples(rows: Iterable[tuple[str, dict[str, Any]]]) -> Iterator[GenerativeExample]:
    for source_id, row in rows:
        continuation = row["continuation"]
        toxicity = continuation.get("toxicity")
        if toxicity is not None and toxicity < NON_TOXIC_BELOW and continuation["text"].strip():
            yield GenerativeExample("toxicity", source_id, row["prompt"]["text"], continuation["text"])


def sciq_qa_examples(rows: Iterable[tuple[str, dict[str, Any]]]) -> Iterator[GenerativeExample]:
    for source_id, row in rows:
        yield GenerativeExample(
            "sciq_qa", source_id, f"Q: {row['question'].strip()} A:", f" {row['correct_answer'].strip()}"
        )


def testbed_qa_examples(seed: int) -> list[GenerativeExample]:
    """Every testbed fact as question -> answer text, in a seeded order."""
    examples = [
        GenerativeExample("testbed_qa", f"testbed:{fact.family}:{fact.a}:{fact.b}", fact.question, str(fact.answer))
        for facts in all_facts().values()
        for fact in facts
    ]
    return random.Random(f"testbed_qa:{seed}").sample(examples, len(examples))


CONVERTERS = {"toxicity": toxicity_examples, "sciq_qa": sciq_qa_examples}
