"""Refinement of weak supervision by the strong model before it is finetuned (Somerstep, Maia Polo et al. 2024).

    refined = refine_icl(pairs, batch_size=8, style="instruct", complete=complete, max_tokens=24)
    intents = infer_intents(batches(pairs, 8), style="instruct", complete=complete, max_tokens=48)
    refined = refine_with_intents(batches(pairs, 8), intents, style="instruct", complete=complete, max_tokens=24)

* ICL: each example is answered afresh with the OTHER weak (prompt, output) pairs of its batch shown
  as demonstrations.
* intent-and-refine: the strong model reads a batch of weak pairs and states the supervisor's intent in
  one sentence; it then answers each prompt of the batch with that intent in front of it.

`complete(prompts, max_tokens, stop)` is the served strong model (`trainers.generative.serving`). The
prompt style is "instruct" (labelled pairs, an instruction) or "bare" (raw `prompt+output` lines, for
models pretrained on bare text, like the testbed's, which cannot read instructions).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

Complete = Callable[[Sequence[str], int, Sequence[str]], list[str]]
ANSWER_STOP = ("\n",)


@dataclass(frozen=True)
class Pair:
    example_id: int
    prompt: str
    output: str  # what the weak model wrote


def batches(pairs: Sequence[Pair], size: int) -> list[list[Pair]]:
    return [list(pairs[start : start + size]) for start in range(0, len(pairs), size)]


def _shown(pair: Pair, style: str) -> str:
    one_line = pair.output.replace("\n", " ")
    return f"{pair.prompt}{one_line}" if style == "bare" else f"Prompt: {pair.prompt}\nAnswer:{one_line}"


def _asked(prompt: str, style: str) -> str:
    return prompt if style == "bare" else f"Prompt: {prompt}\nAnswer:"


def _separator(style: str) -> str:
    return "\n" if style == "bare" else "\n\n"


def icl_prompt(pair: Pair, demonstrations: Sequence[Pair], style: str) -> str:
    shown = [_shown(demo, style) for demo in demonstrations if demo.example_id != pair.example_id]
    return _separator(style).join([*shown, _asked(pair.prompt, style)])


def intent_prompt(batch: Sequence[Pair], style: str) -> str:
    shown = _separator(style).join(_shown(pair, style) for pair in batch)
    if style == "bare":
        return f"{shown}\n"
    return (
        f"Here are a supervisor's answers to some prompts.\n\n{shown}\n\nIn one sentence, the supervisor's intent is:"
    )


def intent_refine_prompt(intent: str, pair: Pair, style: str) -> str:
    if style == "bare":
        return f"{intent}\n{pair.prompt}"
    return f"Answer following the supervisor's intent: {intent}\n\n{_asked(pair.prompt, style)}"


def refine_icl(
    pairs: Sequence[Pair], *, batch_size: int, style: str, complete: Complete, max_tokens: int
) -> dict[int, str]:
    """example id -> the strong model's answer with the rest of its batch as demonstrations."""
    asked = [(pair, icl_prompt(pair, batch, style)) for batch in batches(pairs, batch_size) for pair in batch]
    answers = complete([prompt for _, prompt in asked], max_tokens, ANSWER_STOP)
    return {pair.example_id: answer for (pair, _), answer in zip(asked, answers, strict=True)}


def infer_intents(groups: Sequence[Sequence[Pair]], *, style: str, complete: Complete, max_tokens: int) -> list[str]:
    """One sentence per batch: the first line the strong model writes after reading the batch."""
    answers = complete([intent_prompt(batch, style) for batch in groups], max_tokens, ANSWER_STOP)
    return [answer.strip() for answer in answers]


def refine_with_intents(
    groups: Sequence[Sequence[Pair]], intents: Sequence[str], *, style: str, complete: Complete, max_tokens: int
) -> dict[int, str]:
    """example id -> the strong model's answer with its batch's intent in front of the prompt."""
    asked = [
        (pair, intent_refine_prompt(intent, pair, style))
        for batch, intent in zip(groups, intents, strict=True)
        for pair in batch
    ]
    answers = complete([prompt for _, prompt in asked], max_tokens, ANSWER_STOP)
    return {pair.example_id: answer for (pair, _), answer in zip(asked, answers, strict=True)}
