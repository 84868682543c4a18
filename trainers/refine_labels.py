"""Refinement of a classification run's weak labels by the strong model before it is finetuned on them
(Somerstep, Maia Polo et al. 2024), with the prompts of `trainers.generative.refine`.

    claims = [Claim(example.id, example.question, example.candidate, weak=0.8), ...]
    refined = refine_claims(claims, "icl", settings, complete)    # labels, answers, intents
    refined.labels                                                # example id -> 0.0 / 1.0

A claim is a question with a candidate answer; the weak supervisor's label says whether the candidate
is right. The strong model sees the weak verdicts of the other claims of its batch and labels each claim
afresh, in one of two prompt styles (`RefineSettings.prompt_style`):

* instruct: each demonstration is "Prompt: {question} / Proposed answer: {candidate} / Is it correct?"
  answered " Yes" or " No" as the weak supervisor said; the strong model's first word is the label.
* bare, for models pretrained on bare text (the testbed): only the claims the weak supervisor accepted
  are shown, written as it would write them (`12+7=19`); the strong model answers the question itself
  and the claim is right when its answer is the candidate.

With `icl` the demonstrations are the batch's other claims; with `intent` the strong model first states
in one line what the batch's supervisor intends, then labels each claim with that line in front. An
instruct answer that is neither yes nor no keeps the weak label (counted in `RefinedLabels.unparsed`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from trainers.generative.refine import (
    ANSWER_STOP,
    Complete,
    Pair,
    batches,
    icl_prompt,
    infer_intents,
    intent_refine_prompt,
)
from trainers.hyperparameters import RefineSettings

VERDICT_TOKENS = 3  # " Yes" / " No" and a little slack
ANSWER_SLACK = 4  # tokens a bare answer may have beyond the longest candidate's characters


@dataclass(frozen=True)
class Claim:
    example_id: int
    question: str
    candidate: str
    weak: float  # the weak supervisor's soft label: P(the candidate is right)

    def pair(self, style: str) -> Pair:
        """The claim as a (prompt, output) pair: as a demonstration it shows the weak verdict."""
        if style == "bare":
            return Pair(self.example_id, self.question, self.candidate)
        verdict = " Yes" if self.weak >= 0.5 else " No"
        prompt = f"{self.question}\nProposed answer: {self.candidate}\nIs the proposed answer correct?"
        return Pair(self.example_id, prompt, verdict)


@dataclass(frozen=True)
class RefinedLabels:
    labels: dict[int, float]  # example id -> the strong model's label (the weak one where unparsed)
    answers: dict[int, str]  # example id -> what the strong model wrote
    intents: list[str]  # one per batch (intent method only)
    intent_of: dict[int, int]  # example id -> index of its batch's intent (intent method only)
    unparsed: int  # instruct answers that were neither yes nor no


def demonstrations(batch: Sequence[Claim], style: str) -> list[Pair]:
    """What the strong model is shown of a batch: every weak verdict (instruct), or only the accepted claims (bare)."""
    return [claim.pair(style) for claim in batch if style != "bare" or claim.weak >= 0.5]


def verdict(answer: str) -> float | None:
    """1.0 for an answer starting with yes, 0.0 for no, None otherwise."""
    words = answer.strip().lower().split()
    first = words[0].strip(".,!:;") if words else ""
    return {"yes": 1.0, "no": 0.0}.get(first)


def refine_claims(claims: Sequence[Claim], method: str, settings: RefineSettings, complete: Complete) -> RefinedLabels:
    """The strong model's label for every claim, its answers and (intent) the stated intents."""
    style = settings.prompt_style
    groups = batches(claims, settings.batch_size)
    intents: list[str] = []
    if method == "icl":
        prompts = [
            icl_prompt(claim.pair(style), demonstrations(batch, style), style) for batch in groups for claim in batch
        ]
    else:
        shown = [demonstrations(batch, style) for batch in groups]
        intents = infer_intents(shown, style=style, complete=complete, max_tokens=settings.intent_tokens)
        prompts = [
            intent_refine_prompt(intent, claim.pair(style), style)
            for batch, intent in zip(groups, intents, strict=True)
            for claim in batch
        ]
    answers = complete(prompts, _answer_tokens(claims, style), ANSWER_STOP)  # in claim order, as the batches are
    labels, unparsed = {}, 0
    for claim, answer in zip(claims, answers, strict=True):
        label = _label(claim, answer, style)
        unparsed += label is None
        labels[claim.example_id] = claim.weak if label is None else label
    intent_of = {claim.example_id: index for index, batch in enumerate(groups) for claim in batch} if intents else {}
    return RefinedLabels(
        labels=labels,
        answers={claim.example_id: answer for claim, answer in zip(claims, answers, strict=True)},
        intents=intents,
        intent_of=intent_of,
        unparsed=unparsed,
    )


def _answer_tokens(claims: Sequence[Claim], style: str) -> int:
    if style == "bare":
        return max(len(claim.candidate) for claim in claims) + ANSWER_SLACK
    return VERDICT_TOKENS


def _label(claim: Claim, answer: str, style: str) -> float | None:
    if style == "bare":
        return float(answer.strip() == claim.candidate.strip())
    return verdict(answer)
