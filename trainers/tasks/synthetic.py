"""The `synthetic` task: checkable arithmetic claims made from the seed, no files, no hub.

For demos and tests that must run anywhere. Every question has one right number; the
wrong candidate is a near miss (off by 1-10) or, for comparisons, the other number, so a
tiny model learns the task only weakly. Labels are exactly balanced (one more positive
when `size` is odd).
"""

from __future__ import annotations

import random
from collections.abc import Callable

from trainers.tasks.schema import TaskExample

Claim = tuple[str, int, int]  # (question, right answer, wrong answer)

NAMES = ("Ana", "Ben", "Chen", "Dara", "Eli", "Fatima", "Goran", "Hana")
ITEMS = ("apples", "marbles", "stamps", "books", "coins", "shells")


def synthetic_examples(seed: int, size: int) -> list[TaskExample]:
    """`size` examples, identical for the same seed; source ids "synthetic:0", "synthetic:1", ..."""
    rng = random.Random(f"synthetic:{seed}")
    labels = [1] * (size - size // 2) + [0] * (size // 2)
    rng.shuffle(labels)
    examples = []
    for index, label in enumerate(labels):
        question, right, wrong = rng.choice(CLAIMS)(rng)
        examples.append(
            TaskExample(
                task="synthetic",
                source_id=f"synthetic:{index}",
                candidate_id="correct" if label else "wrong",
                question=question,
                candidate=str(right if label else wrong),
                label=label,
            )
        )
    return examples


def _number(rng: random.Random) -> int:
    """One to three digits, two most often, so question lengths vary a little."""
    digits = rng.choice((1, 2, 2, 3))
    return rng.randint(0 if digits == 1 else 10 ** (digits - 1), 10**digits - 1)


def _near_miss(rng: random.Random, right: int) -> int:
    """A wrong answer close enough to the right one that it cannot be told by its size."""
    delta = rng.choice([d for d in range(-10, 11) if d])
    return right + delta if right + delta >= 0 else right - delta


def _sum(rng: random.Random) -> Claim:
    a, b = _number(rng), _number(rng)
    return f"What is {a} + {b}?", a + b, _near_miss(rng, a + b)


def _difference(rng: random.Random) -> Claim:
    a, b = sorted((_number(rng), _number(rng)), reverse=True)
    return f"What is {a} - {b}?", a - b, _near_miss(rng, a - b)


def _product(rng: random.Random) -> Claim:
    a, b = rng.randint(2, 12), rng.randint(2, 25)
    return f"What is {a} times {b}?", a * b, _near_miss(rng, a * b)


def _larger(rng: random.Random) -> Claim:
    a, b = rng.sample(range(1000), 2)
    return f"Which number is larger, {a} or {b}?", max(a, b), min(a, b)


def _story(rng: random.Random) -> Claim:
    name, item = rng.choice(NAMES), rng.choice(ITEMS)
    a, b = _number(rng), _number(rng)
    question = f"{name} has {a} {item} and is given {b} more. How many {item} does {name} have now?"
    return question, a + b, _near_miss(rng, a + b)


CLAIMS: tuple[Callable[[random.Random], Claim], ...] = (
    _sum,
    _difference,
    _product,
    _larger,
    _story,
)
