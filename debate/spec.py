"""What to debate and how: the `DebateSpec` value and its validation.

A spec is checked once, when it is built, so the protocol and the runner never see an
impossible combination. Every problem raises `InvalidProtocol` saying what to change.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from debate.errors import InvalidProtocol
from debate.framing import framing_for

Protocol = Literal["debate", "consultancy", "market_making"]
Order = Literal["sequential", "simultaneous"]
Stance = Literal["correct", "incorrect"]
Speaker = Literal["A", "B", "consultant"]


@dataclass(frozen=True, kw_only=True)
class SamplingParams:
    """Sampling of every turn; `max_tokens` is the token limit of one turn."""

    temperature: float = 0.7
    top_p: float = 1.0
    max_tokens: int = 256

    def __post_init__(self) -> None:
        if not (math.isfinite(self.temperature) and self.temperature >= 0):
            raise InvalidProtocol(f"temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise InvalidProtocol(f"top_p must be in (0, 1], got {self.top_p}")
        if self.max_tokens < 1:
            raise InvalidProtocol(f"max_tokens must be >= 1, got {self.max_tokens}")


@dataclass(frozen=True, kw_only=True)
class DebateSpec:
    """One debate (or consultancy) about one example, fully determined by its fields.

    `turns` counts speaking steps: one speech each in sequential debate and consultancy
    (default 3: A, B, A), one speech from *each* debater per step in simultaneous debate.
    `weak_prediction` is the weak model's probability that the candidate answer is
    correct; market-making argues the side it did not choose (it chose "correct" when
    the probability is >= 0.5).
    """

    question: str
    candidate_answer: str
    task: str = "generic"
    context: str | None = None
    protocol: Protocol = "debate"
    order: Order = "sequential"
    turns: int = 3
    swap: bool = False
    consultant_side: Stance | None = None
    weak_prediction: float | None = None
    seed: int = 0
    word_limit: int | None = 150
    verify_quotes: bool = False
    model: str = "strong"
    sampling: SamplingParams = field(default_factory=SamplingParams)

    def __post_init__(self) -> None:
        validate_spec(self)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict (sampling nested under "sampling")."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DebateSpec:
        """Inverse of `to_dict`; unknown or missing fields raise `InvalidProtocol`."""
        fields = dict(data)
        try:
            fields["sampling"] = SamplingParams(**fields.get("sampling", {}))
            return cls(**fields)
        except TypeError as exc:
            raise InvalidProtocol(f"not a debate spec: {exc}") from exc


def validate_spec(spec: DebateSpec) -> None:
    """Raise `InvalidProtocol` naming the first field that makes `spec` unrunnable."""
    _check_choice("protocol", spec.protocol, Protocol)
    _check_choice("order", spec.order, Order)
    if spec.consultant_side is not None:
        _check_choice("consultant_side", spec.consultant_side, Stance)
    framing_for(spec.task)
    if not spec.question.strip():
        raise InvalidProtocol("question is empty; every debate needs the example's question")
    if not spec.candidate_answer.strip():
        raise InvalidProtocol("candidate_answer is empty; the debate is about that answer")
    if spec.turns < 1:
        raise InvalidProtocol(f"turns must be >= 1, got {spec.turns}")
    if spec.word_limit is not None and spec.word_limit < 1:
        raise InvalidProtocol(f"word_limit must be >= 1 or None, got {spec.word_limit}")
    if spec.verify_quotes and not (spec.context and spec.context.strip()):
        raise InvalidProtocol(
            "verify_quotes=True needs a passage to check quotes against; set context or turn verify_quotes off"
        )
    _check_protocol_fields(spec)


def _check_protocol_fields(spec: DebateSpec) -> None:
    """Fields that only some protocols use must be absent from the others."""
    if spec.protocol != "debate":
        if spec.order != "sequential":
            raise InvalidProtocol(
                f"order={spec.order!r} needs two debaters; protocol={spec.protocol!r} "
                "has a single consultant, use order='sequential'"
            )
        if spec.swap:
            raise InvalidProtocol(
                f"swap only applies to protocol='debate'; for {spec.protocol!r} the "
                "side is set by consultant_side / weak_prediction"
            )
    if spec.protocol != "consultancy" and spec.consultant_side is not None:
        raise InvalidProtocol(f"consultant_side is only used by protocol='consultancy', not {spec.protocol!r}")
    if spec.protocol == "market_making":
        if spec.weak_prediction is None:
            raise InvalidProtocol(
                "protocol='market_making' needs weak_prediction: the weak model's "
                "probability that the candidate answer is correct"
            )
        if not 0.0 <= spec.weak_prediction <= 1.0:
            raise InvalidProtocol(f"weak_prediction is a probability in [0, 1], got {spec.weak_prediction}")
    elif spec.weak_prediction is not None:
        raise InvalidProtocol(f"weak_prediction is only used by protocol='market_making', not {spec.protocol!r}")


def _check_choice(name: str, value: object, allowed: object) -> None:
    choices = get_args(allowed)
    if value not in choices:
        raise InvalidProtocol(f"{name} must be one of {', '.join(choices)}; got {value!r}")
