"""`encode_inputs`: the text is never cut, the transcript is cut by the documented rule, to the token."""

from __future__ import annotations

from pathlib import Path

import pytest
from transformers import AutoTokenizer, PreTrainedTokenizerBase

from trainers.training import ClassifierInput, InputTooLong, TrimStats, encode_inputs
from trainers.training.inputs import ELLIPSIS, SEPARATOR, fit_context


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir: Path) -> PreTrainedTokenizerBase:
    return AutoTokenizer.from_pretrained(tiny_model_dir)


def ids(tokenizer: PreTrainedTokenizerBase, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def words(word: str, n: int) -> str:
    return f" {word}" * n


def test_token_sizes_the_other_tests_rely_on(tokenizer: PreTrainedTokenizerBase) -> None:
    assert tokenizer("a")["input_ids"][0] == tokenizer.bos_token_id  # one BOS before the text
    assert len(ids(tokenizer, SEPARATOR)) == 2 and len(ids(tokenizer, ELLIPSIS)) == 4
    for word in ("water", "fire", "earth", "light"):
        assert len(ids(tokenizer, words(word, 7))) == 7


def test_everything_fits_nothing_is_cut(tokenizer: PreTrainedTokenizerBase) -> None:
    item = ClassifierInput(words("light", 5), (words("water", 3), words("fire", 2)))
    (encoded,), stats = encode_inputs(tokenizer, [item], max_length=64, prompt_suffix="\nAnswer:")
    expected = (
        [tokenizer.bos_token_id]
        + ids(tokenizer, words("light", 5))
        + ids(tokenizer, SEPARATOR)
        + ids(tokenizer, words("water", 3))
        + ids(tokenizer, SEPARATOR)
        + ids(tokenizer, words("fire", 2))
        + ids(tokenizer, "\nAnswer:")
    )
    assert encoded == expected
    assert stats == TrimStats(inputs=1, inputs_trimmed=0, context_tokens=5, context_tokens_trimmed=0)


@pytest.mark.parametrize(
    ("spare", "sizes"),
    [
        # turns of 40, 20, 4 tokens; minimums 5, 5, 4; room beyond them 35, 15, 0 (of 50).
        (10, (12, 8, 4)),  # 10 * 35/50 = 7, 10 * 15/50 = 3: exact
        (11, (13, 8, 4)),  # 7.7 and 3.3: floors 7 + 3, the leftover token goes to the larger remainder
        (0, (5, 5, 4)),  # only the minimums: one token of each long turn plus the ellipsis
    ],
)
def test_context_is_cut_in_proportion_to_turn_length(
    tokenizer: PreTrainedTokenizerBase, spare: int, sizes: tuple[int, int, int]
) -> None:
    turns = (words("water", 40), words("fire", 20), words("earth", 4))
    text = words("light", 5)
    budget = 3 * 2 + (5 + 5 + 4) + spare  # separators + minimums + spare
    max_length = 1 + 5 + budget + 3  # BOS + text + context + "\nAnswer:"
    (encoded,), stats = encode_inputs(
        tokenizer, [ClassifierInput(text, turns)], max_length=max_length, prompt_suffix="\nAnswer:"
    )
    assert len(encoded) == max_length  # the budget is used exactly
    ellipsis, separator = ids(tokenizer, ELLIPSIS), ids(tokenizer, SEPARATOR)
    expected = [tokenizer.bos_token_id] + ids(tokenizer, text)
    kept = 0
    for turn, size in zip(turns, sizes, strict=True):
        turn_ids = ids(tokenizer, turn)
        cut = size < len(turn_ids)
        expected += separator + (turn_ids[: size - len(ellipsis)] + ellipsis if cut else turn_ids)
        kept += size - len(ellipsis) if cut else size
    assert encoded == expected + ids(tokenizer, "\nAnswer:")
    assert stats == TrimStats(inputs=1, inputs_trimmed=1, context_tokens=64, context_tokens_trimmed=64 - kept)


def test_turns_that_cannot_keep_any_text_are_dropped_from_the_end() -> None:
    separator, ellipsis = [0, 0], [9, 9, 9, 9]
    turns = [list(range(100, 140)), list(range(200, 220)), list(range(300, 304))]
    context, kept = fit_context(turns, 2 * 2 + 5 + 5, separator, ellipsis)  # room for two minimums only
    assert context == [0, 0, 100, 9, 9, 9, 9, 0, 0, 200, 9, 9, 9, 9]
    assert kept == 2
    assert fit_context(turns, 6, separator, ellipsis) == ([], 0)  # not even one turn's minimum


def test_text_is_never_cut_and_too_long_text_raises(tokenizer: PreTrainedTokenizerBase) -> None:
    fits = ClassifierInput(words("light", 20), (words("water", 50),))
    (encoded,), stats = encode_inputs(tokenizer, [fits], max_length=1 + 20 + 3)  # no room for any context
    assert encoded == [tokenizer.bos_token_id] + ids(tokenizer, words("light", 20))
    assert stats.context_tokens_trimmed == 50 and stats.inputs_trimmed == 1
    with pytest.raises(InputTooLong, match=r"input 1: .* 24 tokens, 2 more than max_length=22"):
        encode_inputs(tokenizer, [ClassifierInput("a"), fits], max_length=22, prompt_suffix="\nAnswer:")


def test_trim_stats_add_up_over_inputs(tokenizer: PreTrainedTokenizerBase) -> None:
    inputs = [
        ClassifierInput(words("light", 2), (words("water", 30),)),
        ClassifierInput(words("light", 2)),
        ClassifierInput(words("light", 2), (words("fire", 3),)),
    ]
    encoded, stats = encode_inputs(tokenizer, inputs, max_length=16)
    assert [len(e) for e in encoded] == [16, 3, 8]
    assert stats == TrimStats(inputs=3, inputs_trimmed=1, context_tokens=33, context_tokens_trimmed=30 - (13 - 2 - 4))
