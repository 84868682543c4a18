"""Who speaks when, for which side, and seeing what: pure functions of a spec.

The runner loops on `next_turns(spec, turns_so_far)` until it returns nothing:

* debate, sequential (Lang et al. 2025): A, B, A, B, ... one speech per step; each
  speaker sees every earlier speech.
* debate, simultaneous (Khan et al. 2024): A and B speak in the same step and see only
  earlier steps ("rounds").
* consultancy: one consultant, side given or drawn per example and seed.
* market-making: one consultant arguing the side the weak prediction did not choose.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass

from debate.errors import InvalidProtocol
from debate.framing import framing_for
from debate.openai_types import ChatMessage
from debate.prompts import build_messages
from debate.quotes import verify_quotes
from debate.spec import DebateSpec, Speaker, Stance
from debate.transcript import Turn


@dataclass(frozen=True)
class Slot:
    """A planned speech: `index` orders all speeches, `round` groups simultaneous ones."""

    index: int
    round: int
    speaker: Speaker
    stance: Stance


@dataclass(frozen=True, kw_only=True)
class TurnRequest:
    """Everything needed to ask the strong model for one speech."""

    index: int
    round: int
    speaker: Speaker
    stance: Stance
    messages: tuple[ChatMessage, ...]
    seed: int


def opposite(stance: Stance) -> Stance:
    return "incorrect" if stance == "correct" else "correct"


def debater_stances(spec: DebateSpec) -> dict[Speaker, Stance]:
    """A argues "correct" and B "incorrect", flipped by `swap` to control position bias."""
    first: Stance = "incorrect" if spec.swap else "correct"
    return {"A": first, "B": opposite(first)}


def consultant_stance(spec: DebateSpec) -> Stance:
    """The consultant's side: given, drawn per example and seed, or against the weak prediction."""
    if spec.protocol == "market_making":
        assert spec.weak_prediction is not None  # validate_spec guarantees it
        return "incorrect" if spec.weak_prediction >= 0.5 else "correct"
    if spec.consultant_side is not None:
        return spec.consultant_side
    return drawn_side(spec)


def drawn_side(spec: DebateSpec) -> Stance:
    """A fair coin per (seed, example), as Lang et al. draw the consultant's side per example.

    Drawn from the seed alone, one seed would argue one side for every example, and a weak
    model could learn "the consultant is always right (or wrong)" instead of the task. The
    example is its question, candidate and context (one question may come with several
    passages). SHA-256 of their JSON, not hash(): the same in every process, so stored
    debates replay.
    """
    key = json.dumps([spec.seed, spec.question, spec.candidate_answer, spec.context])
    digest = hashlib.sha256(f"consultant-side:{key}".encode()).digest()
    return "correct" if digest[0] & 1 else "incorrect"


def schedule(spec: DebateSpec) -> tuple[Slot, ...]:
    """Every speech the protocol will ask for, in index order."""
    if spec.protocol != "debate":
        stance = consultant_stance(spec)
        return tuple(Slot(step, step, "consultant", stance) for step in range(spec.turns))
    stances = debater_stances(spec)
    speakers: tuple[Speaker, Speaker] = ("A", "B")
    if spec.order == "simultaneous":
        return tuple(
            Slot(2 * step + offset, step, speaker, stances[speaker])
            for step in range(spec.turns)
            for offset, speaker in enumerate(speakers)
        )
    return tuple(Slot(step, step, speakers[step % 2], stances[speakers[step % 2]]) for step in range(spec.turns))


def next_turns(spec: DebateSpec, turns_so_far: Sequence[Turn]) -> list[TurnRequest]:
    """The speeches to request now (two in a simultaneous round); empty when finished.

    `turns_so_far` must be the finished turns in index order, as returned earlier.
    """
    plan = schedule(spec)
    _check_follows(plan, turns_so_far)
    if len(turns_so_far) == len(plan):
        return []
    current = plan[len(turns_so_far)].round
    visible = [turn for turn, slot in zip(turns_so_far, plan, strict=False) if slot.round < current]
    return [
        TurnRequest(
            index=slot.index,
            round=slot.round,
            speaker=slot.speaker,
            stance=slot.stance,
            messages=build_messages(spec, slot.speaker, slot.stance, visible),
            seed=request_seed(spec.seed, slot.index),
        )
        for slot in plan[len(turns_so_far) :]
        if slot.round == current
    ]


def request_seed(debate_seed: int, turn_index: int) -> int:
    """Per-request sampling seed: distinct per turn and per debate seed, reproducible."""
    digest = hashlib.sha256(f"debate-seed:{debate_seed}:turn:{turn_index}".encode()).digest()
    # 31 bits fit every server's seed type (some use int32).
    return int.from_bytes(digest[:4], "big") & 0x7FFF_FFFF


def finish_turn(
    spec: DebateSpec,
    request: TurnRequest,
    text: str,
    *,
    prompt_tokens: int,
    completion_tokens: int,
    finish_reason: str | None,
    latency_s: float,
) -> Turn:
    """The stored turn for a generated speech, quotes checked when the spec asks."""
    content, verified, unverified = text.strip(), 0, 0
    if framing_for(spec.task).bare:
        content = f"{spec.question.strip()}{content}"  # the speech shows the computation: "12+7=19"
    if spec.verify_quotes and spec.context:
        check = verify_quotes(content, spec.context)
        content, verified, unverified = check.content, check.verified, check.unverified
    return Turn(
        index=request.index,
        speaker=request.speaker,
        stance=request.stance,
        content=content,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        finish_reason=finish_reason,
        latency_s=latency_s,
        quotes_verified=verified,
        quotes_unverified=unverified,
    )


def sample_specs(spec: DebateSpec, k: int) -> list[DebateSpec]:
    """k debate samples of one example: seeds spec.seed, spec.seed + 1, ..."""
    if k < 1:
        raise InvalidProtocol(f"k (debate samples per example) must be >= 1, got {k}")
    return [dataclasses.replace(spec, seed=spec.seed + offset) for offset in range(k)]


def _check_follows(plan: Sequence[Slot], turns: Sequence[Turn]) -> None:
    """Reject turns that are not a prefix of the plan: the protocol would mis-assign sides."""
    if len(turns) > len(plan):
        raise InvalidProtocol(f"{len(turns)} turns given but the spec plans only {len(plan)}")
    for turn, slot in zip(turns, plan, strict=False):
        if (turn.index, turn.speaker, turn.stance) != (slot.index, slot.speaker, slot.stance):
            raise InvalidProtocol(
                f"turn {turn.index} is {turn.speaker}/{turn.stance} but the spec plans "
                f"turn {slot.index} as {slot.speaker}/{slot.stance}; pass the turns of "
                "this spec in index order"
            )
