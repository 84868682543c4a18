"""The `testbed` task: "is this arithmetic claim correct?", for models that know arithmetic.

The built-in latent-knowledge testbed (Burns et al.'s premise, on a CPU): a tiny strong model
pretrained on TRUE facts of a few small families knows most of them; a smaller, briefly
pretrained weak model knows few. The binary task asks whether a claim `12+7=19` is right;
a wrong claim is off by 1..10 (never negative), or names the other number for `max`.

Facts are written exactly as the models were pretrained on them (`12+7=`, then the answer),
so a model can score a claim by its own likelihood of the claimed answer
(`trainers.training.classifier`'s `likelihood` head) and a debater can compute the answer
it argues about. The models themselves are built by `trainers.testbed`.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from trainers.tasks.schema import TaskExample

TASK = "testbed"


@dataclass(frozen=True)
class Family:
    """One kind of fact: its operands and how a question and its answer are written."""

    name: str
    operands: Callable[[], list[tuple[int, int]]]
    question: Callable[[int, int], str]
    answer: Callable[[int, int], int]


FAMILIES: tuple[Family, ...] = (
    Family("add", lambda: [(a, b) for a in range(20) for b in range(20)], lambda a, b: f"{a}+{b}=", lambda a, b: a + b),
    Family(
        "mul",
        lambda: [(a, b) for a in range(1, 13) for b in range(1, 13)],
        lambda a, b: f"{a}*{b}=",
        lambda a, b: a * b,
    ),
    Family(
        "sub", lambda: [(a, b) for a in range(30) for b in range(a + 1)], lambda a, b: f"{a}-{b}=", lambda a, b: a - b
    ),
    Family(
        "max", lambda: [(a, b) for a in range(100) for b in range(100) if a != b], lambda a, b: f"max({a},{b})=", max
    ),
)


@dataclass(frozen=True)
class Fact:
    family: str
    a: int
    b: int
    question: str  # "12+7="
    answer: int  # 19

    @property
    def text(self) -> str:
        return f"{self.question}{self.answer}"


def facts(family: Family) -> list[Fact]:
    """Every true fact of `family`, in a fixed order."""
    return [Fact(family.name, a, b, family.question(a, b), family.answer(a, b)) for a, b in family.operands()]


def all_facts() -> dict[str, list[Fact]]:
    """family name -> its facts."""
    return {family.name: facts(family) for family in FAMILIES}


def wrong_answer(fact: Fact, rng: random.Random) -> int:
    """A plausible wrong answer: the other operand for max, else off by 1..10 and never negative."""
    if fact.family == "max":
        return min(fact.a, fact.b)
    offsets = [d for d in range(-10, 11) if d and fact.answer + d >= 0]
    return fact.answer + rng.choice(offsets)


def arithmetic_claims(seed: int, size: int) -> list[TaskExample]:
    """`size` claims, exactly balanced (one more correct claim when `size` is odd), identical for
    one seed. Each draws a family uniformly, then a fact of it, without repeating a fact;
    source ids name the fact ("testbed:add:12:7") so splits never share one."""
    by_family = all_facts()
    if size > sum(map(len, by_family.values())):
        raise ValueError(f"testbed has {sum(map(len, by_family.values()))} facts; asked for {size} examples")
    rng = random.Random(f"testbed:{seed}")
    pools = {name: rng.sample(items, len(items)) for name, items in by_family.items()}
    labels = [1] * (size - size // 2) + [0] * (size // 2)
    rng.shuffle(labels)
    examples = []
    for label in labels:
        name = rng.choice([name for name, pool in pools.items() if pool])
        fact = pools[name].pop()
        candidate = fact.answer if label else wrong_answer(fact, rng)
        examples.append(
            TaskExample(
                task=TASK,
                source_id=f"{TASK}:{fact.family}:{fact.a}:{fact.b}",
                candidate_id="correct" if label else "wrong",
                question=fact.question,
                candidate=str(candidate),
                label=label,
            )
        )
    return examples


def family_of(example: TaskExample) -> str:
    """The fact family of a testbed example (from its source id)."""
    return example.source_id.split(":")[1]
