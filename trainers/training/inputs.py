"""Classifier inputs and their tokenisation: the example text in full, the debate transcript trimmed to fit.

Layout of one encoded input (right before the model):

    [special prefix, e.g. BOS] text  SEP turn_1  SEP turn_2 ... SEP turn_n  prompt_suffix

or, with `answer_last` (the likelihood head, which scores the candidate answer by the causal
LM's own probability of it, so everything it should condition on must come before it):

    [special prefix] turn_1 SEP turn_2 SEP ... turn_n SEP  text-before-the-answer  answer

`SEP` is "\\n\\n", the paragraph break `debate.render_for_weak` puts between speeches, so the
weak model reads the transcript exactly as the debaters wrote it. Every piece is tokenised
on its own, so the same input always gives the same tokens whatever it is batched with.
The text is never cut: an input whose text and suffix alone are longer than `max_length`
raises `InputTooLong`. The transcript is cut by the rule in `fit_context`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from transformers import PreTrainedTokenizerBase

from trainers.errors import InputTooLong

SEPARATOR = "\n\n"
ELLIPSIS = " ..."


@dataclass(frozen=True)
class ClassifierInput:
    """One example for a classifier: `text` (kept whole) and its debate `context` (one string per turn).

    `answer`: the candidate answer that `text` ends with ("" when unknown); the likelihood head
    reads the model's log-probabilities of exactly these characters.
    """

    text: str
    context: tuple[str, ...] = ()
    answer: str = ""

    def __post_init__(self) -> None:
        if not self.text.endswith(self.answer):
            raise ValueError(f"the text must end with its answer {self.answer!r}; got ...{self.text[-40:]!r}")


@dataclass(frozen=True)
class TrimStats:
    """How much debate context had to go: `context_tokens` is the transcript tokens before trimming
    (turn contents only, no separators), `context_tokens_trimmed` how many of them were cut."""

    inputs: int
    inputs_trimmed: int
    context_tokens: int
    context_tokens_trimmed: int

    def __add__(self, other: TrimStats) -> TrimStats:
        return TrimStats(
            self.inputs + other.inputs,
            self.inputs_trimmed + other.inputs_trimmed,
            self.context_tokens + other.context_tokens,
            self.context_tokens_trimmed + other.context_tokens_trimmed,
        )


def encode_inputs(
    tokenizer: PreTrainedTokenizerBase,
    inputs: Sequence[ClassifierInput],
    *,
    max_length: int,
    prompt_suffix: str = "",
    answer_last: bool = False,
) -> tuple[list[list[int]], TrimStats]:
    """Token ids of every input (layout in the module docstring), at most `max_length` each.

    With `answer_last` the answer is tokenised on its own, so it is exactly the last
    `len(answer_ids(...)[i])` tokens of input i. Raises `InputTooLong` naming the first input whose
    text + suffix do not fit, and by how much.
    """
    if answer_last and prompt_suffix:
        raise ValueError("answer_last puts the answer last; a prompt_suffix after it has no place.")
    prefix = special_prefix(tokenizer)
    separator, ellipsis = _ids(tokenizer, SEPARATOR), _ids(tokenizer, ELLIPSIS)
    suffix = _ids(tokenizer, prompt_suffix) if prompt_suffix else []
    if answer_last:
        heads = _batch_ids(tokenizer, [item.text[: len(item.text) - len(item.answer)] for item in inputs])
        texts = [head + answer for head, answer in zip(heads, answer_ids(tokenizer, inputs), strict=True)]
    else:
        texts = _batch_ids(tokenizer, [item.text for item in inputs])
    turns = iter(_batch_ids(tokenizer, [turn for item in inputs for turn in item.context]))
    encoded, trimmed, total, cut = [], 0, 0, 0
    for number, (item, text) in enumerate(zip(inputs, texts, strict=True)):
        budget = max_length - len(prefix) - len(text) - len(suffix)
        if budget < 0:
            raise InputTooLong(
                f"input {number}: its text and prompt suffix take {max_length - budget} tokens, {-budget} more "
                f"than max_length={max_length}; raise max_length or shorten the example text (only the debate "
                "context is ever trimmed)."
            )
        contents = [next(turns) for _ in item.context]
        context, kept = fit_context(contents, budget, separator, ellipsis)
        if answer_last:  # the same tokens, each separator moved behind its turn
            encoded.append(prefix + context[len(separator) :] + separator + text if context else prefix + text)
        else:
            encoded.append(prefix + text + context + suffix)
        total += sum(map(len, contents))
        cut += sum(map(len, contents)) - kept
        trimmed += kept < sum(map(len, contents))
    return encoded, TrimStats(len(encoded), trimmed, total, cut)


def answer_ids(tokenizer: PreTrainedTokenizerBase, inputs: Sequence[ClassifierInput]) -> list[list[int]]:
    """The tokens of each input's answer, tokenised on its own; every answer must be non-empty."""
    missing = [number for number, item in enumerate(inputs) if not item.answer]
    if missing:
        raise ValueError(
            f"input {missing[0]} has no answer: the likelihood head scores the candidate answer, so "
            "build inputs with ClassifierInput(text, context, answer=<the candidate text ends with>)."
        )
    return _batch_ids(tokenizer, [item.answer for item in inputs])


def fit_context(
    turns: Sequence[list[int]], budget: int, separator: list[int], ellipsis: list[int]
) -> tuple[list[int], int]:
    """The turns, each preceded by `separator`, in at most `budget` tokens; and how many turn tokens were kept.

    The trimming rule, the same for every turn:

    1. If all turns with their separators fit, nothing is cut.
    2. Otherwise every turn first gets `min(len, 1 + len(ellipsis))` tokens ("some text" plus
       the ellipsis); if even these minimums and the separators do not fit, turns are dropped
       from the end until they do (no turn at all if none fits).
    3. The rest of the budget is shared among the kept turns in proportion to how many tokens
       each has beyond its minimum, rounded down, the leftover tokens going one each to the turns
       with the largest remainders (the earlier turn on a tie). The shares then sum to the
       budget exactly, so a trimmed input is exactly `max_length` tokens long.
    4. A turn whose share is shorter than the turn keeps its first `share - len(ellipsis)`
       tokens followed by the ellipsis: the start of every speech survives.
    """
    if sum(len(separator) + len(turn) for turn in turns) > budget:
        minimums = [min(len(turn), 1 + len(ellipsis)) for turn in turns]
        while turns and sum(minimums[: len(turns)]) + len(turns) * len(separator) > budget:
            turns = turns[:-1]
    if sum(len(separator) + len(turn) for turn in turns) <= budget:  # everything left fits whole
        return [token for turn in turns for token in separator + list(turn)], sum(map(len, turns))
    minimums = minimums[: len(turns)]
    spare = budget - len(turns) * len(separator) - sum(minimums)
    shares = _proportional_shares([len(turn) - low for turn, low in zip(turns, minimums, strict=True)], spare)
    out: list[int] = []
    kept = 0
    for turn, low, share in zip(turns, minimums, shares, strict=True):
        size = low + share
        if size >= len(turn):
            out += separator + list(turn)
            kept += len(turn)
        else:
            out += separator + list(turn[: size - len(ellipsis)]) + ellipsis
            kept += size - len(ellipsis)
    return out, kept


def _proportional_shares(weights: list[int], total: int) -> list[int]:
    """Split `total` in proportion to `weights` (largest-remainder rounding, earlier wins ties); sums to `total`."""
    weight_sum = sum(weights)
    floors = [total * weight // weight_sum for weight in weights]
    remainders = [total * weight % weight_sum for weight in weights]
    by_remainder = sorted(range(len(weights)), key=lambda i: (-remainders[i], i))
    for i in by_remainder[: total - sum(floors)]:
        floors[i] += 1
    return floors


def special_prefix(tokenizer: PreTrainedTokenizerBase) -> list[int]:
    """The special tokens the tokenizer puts before any text (BOS for Llama, nothing for Qwen)."""
    plain = tokenizer("a", add_special_tokens=False)["input_ids"]
    full = tokenizer("a", add_special_tokens=True)["input_ids"]
    for start in range(len(full) - len(plain) + 1):
        if full[start : start + len(plain)] == plain:
            return list(full[:start])
    raise ValueError(f"{type(tokenizer).__name__} does not keep the text's own tokens when adding special tokens.")


def _ids(tokenizer: PreTrainedTokenizerBase, text: str) -> list[int]:
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def _batch_ids(tokenizer: PreTrainedTokenizerBase, texts: list[str]) -> list[list[int]]:
    """Token ids of many texts in one call (fast tokenizers batch in Rust, in parallel)."""
    if not texts:
        return []
    return [list(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]]
