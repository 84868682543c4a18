"""Our own splits (weak_train / strong_train / test) and class balance."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence

from trainers.tasks.schema import TaskDataError, TaskExample

# Burns et al.: the weak model learns on weak_train's ground truth, labels strong_train,
# the strong model learns on those labels; everyone is scored on test. Filled in this order.
SPLIT_NAMES = ("weak_train", "strong_train", "test")


def split_examples(
    examples: Sequence[TaskExample], *, sizes: Mapping[str, int], seed: int
) -> dict[str, list[TaskExample]]:
    """Exactly sizes[split] examples per split, the same for the same (examples, sizes, seed).

    All candidates of one source row stay together (no row leaks between the splits): the
    rows are shuffled by seed and dealt out in SPLIT_NAMES order; a row too big for what
    is left of a split is kept back for the next one.
    """
    unknown = sorted(set(sizes) - set(SPLIT_NAMES))
    if unknown or any(count < 0 for count in sizes.values()):
        raise TaskDataError(f"split sizes must be >= 0 and keyed by {SPLIT_NAMES}; got {dict(sizes)}")
    wanted = sum(sizes.values())
    if wanted > len(examples):
        raise TaskDataError(
            f"asked for {wanted} examples ({dict(sizes)}) but the task has only {len(examples)}; "
            "ask for fewer or load more rows (raise --limit / --size)"
        )
    pool = _groups_by_source(examples)
    random.Random(seed).shuffle(pool)
    splits = {}
    for name in (name for name in SPLIT_NAMES if name in sizes):
        splits[name], pool = _deal(pool, sizes[name])
        if len(splits[name]) != sizes[name]:
            raise TaskDataError(
                f"could fill split {name!r} with only {len(splits[name])} of {sizes[name]} "
                "examples without cutting a source row's candidates apart; choose other sizes"
            )
    return splits


def class_balance(examples: Sequence[TaskExample]) -> dict[str, float | int]:
    """Counts of each class and the positive fraction (0.0 for no examples)."""
    positive = sum(example.label for example in examples)
    return {
        "n": len(examples),
        "positive": positive,
        "negative": len(examples) - positive,
        "positive_fraction": positive / len(examples) if examples else 0.0,
    }


def _groups_by_source(examples: Sequence[TaskExample]) -> list[list[TaskExample]]:
    """Examples grouped by source_id, groups in first-seen order (so the shuffle is stable)."""
    groups: dict[str, list[TaskExample]] = {}
    for example in examples:
        groups.setdefault(example.source_id, []).append(example)
    return list(groups.values())


def _deal(pool: list[list[TaskExample]], count: int) -> tuple[list[TaskExample], list[list[TaskExample]]]:
    """Take whole groups from the front of `pool` up to `count` examples; return (taken, rest)."""
    taken: list[TaskExample] = []
    rest: list[list[TaskExample]] = []
    for group in pool:
        if len(taken) + len(group) <= count:
            taken.extend(group)
        else:
            rest.append(group)
    return taken, rest
