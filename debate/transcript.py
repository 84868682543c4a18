"""Transcript values (turns, finished and failed debates) and their plain-text rendering.

All values are frozen and round-trip through JSON with `to_dict` / `from_dict`; the
field names are the column names the store uses.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from debate.errors import InvalidProtocol
from debate.spec import DebateSpec, Speaker, Stance


@dataclass(frozen=True, kw_only=True)
class Turn:
    """One speech. `index` is 0-based over the whole debate; `stance` "correct" means the
    speaker argues that the candidate answer is correct."""

    index: int
    speaker: Speaker
    stance: Stance
    content: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str | None = None
    latency_s: float = 0.0
    quotes_verified: int = 0
    quotes_unverified: int = 0

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Turn:
        try:
            return cls(**data)
        except TypeError as exc:
            raise InvalidProtocol(f"not a turn: {exc}") from exc


@dataclass(frozen=True, kw_only=True)
class DebateResult:
    """A finished debate. `latency_s` is its wall-clock time from its first request
    (waits for a free request slot included); token totals are sums over the turns."""

    spec: DebateSpec
    turns: tuple[Turn, ...]
    latency_s: float = 0.0

    @property
    def prompt_tokens(self) -> int:
        return sum(turn.prompt_tokens for turn in self.turns)

    @property
    def completion_tokens(self) -> int:
        return sum(turn.completion_tokens for turn in self.turns)

    def to_dict(self) -> dict[str, Any]:
        return {
            "spec": self.spec.to_dict(),
            "turns": [turn.to_dict() for turn in self.turns],
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "latency_s": self.latency_s,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DebateResult:
        """Inverse of `to_dict`; the token totals are recomputed from the turns."""
        return cls(
            spec=DebateSpec.from_dict(data["spec"]),
            turns=tuple(Turn.from_dict(turn) for turn in data["turns"]),
            latency_s=data.get("latency_s", 0.0),
        )


@dataclass(frozen=True, kw_only=True)
class DebateFailure:
    """A debate the server could not finish for reasons tied to this example (e.g. the
    prompt outgrew the context window); `turns` are those that did finish."""

    spec: DebateSpec
    turns: tuple[Turn, ...]
    error_type: str
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "spec": self.spec.to_dict(),
            "turns": [turn.to_dict() for turn in self.turns],
            "error_type": self.error_type,
            "message": self.message,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DebateFailure:
        return cls(
            spec=DebateSpec.from_dict(data["spec"]),
            turns=tuple(Turn.from_dict(turn) for turn in data["turns"]),
            error_type=data["error_type"],
            message=data["message"],
        )


DebateOutcome = DebateResult | DebateFailure

_SPEAKER_NAMES: dict[str, str] = {"A": "Debater A", "B": "Debater B", "consultant": "Consultant"}


def speaker_label(speaker: Speaker, stance: Stance) -> str:
    """E.g. "Debater A (arguing the answer is correct)"."""
    return f"{_SPEAKER_NAMES[speaker]} (arguing the answer is {stance})"


def render_turn(turn: Turn) -> str:
    return f"{speaker_label(turn.speaker, turn.stance)}: {turn.content.strip()}"


def render_for_weak(turns: Iterable[Turn]) -> str:
    """The transcript as the plain text a weak model reads, one speech per paragraph.

    Debaters see the same rendering of earlier turns, so what the weak model is trained
    on is exactly what the debaters answered to.
    """
    return "\n\n".join(render_turn(turn) for turn in turns)
