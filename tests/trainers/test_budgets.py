"""Length budgets: which examples every model can take, the counts of the others, and configs no example can meet."""

import pytest

from trainers.pipeline import RunConfigError, parse_run_config
from trainers.pipeline.budgets import MIN_STRONG_LENGTH, TRANSCRIPT_RESERVE, Budget, apply_budgets, dropped_note
from trainers.tasks import TaskExample, format_example, load_examples


def words(texts: list[str]) -> list[int]:
    return [len(text.split()) for text in texts]


def characters(texts: list[str]) -> list[int]:
    return [len(text) for text in texts]


def test_an_example_must_fit_every_budget_and_each_budget_is_counted_alone() -> None:
    examples = load_examples("synthetic", size=300)
    texts = [format_example(e) for e in examples]
    word_limit = sorted(words(texts))[200]
    char_limit = sorted(characters(texts))[250]
    budgets = [
        Budget("weak.train.max_length", word_limit, words),
        Budget("strong.train.max_length", char_limit, characters),
    ]
    kept, summary = apply_budgets(examples, budgets)

    over_words = {i for i, text in enumerate(texts) if len(text.split()) > word_limit}
    over_chars = {i for i, text in enumerate(texts) if len(text) > char_limit}
    dropped = over_words | over_chars
    assert over_words and over_chars and over_words != over_chars
    assert kept == [e for i, e in enumerate(examples) if i not in dropped]
    assert summary["examples"] == 300 and summary["dropped"] == len(dropped)
    assert summary["too_long_for"] == {
        "weak.train.max_length": len(over_words),
        "strong.train.max_length": len(over_chars),
    }
    assert summary["text_limits"] == {"weak.train.max_length": word_limit, "strong.train.max_length": char_limit}
    positive_dropped = sum(examples[i].label for i in dropped)
    assert summary["dropped_balance"]["positive"] == positive_dropped
    assert summary["kept_balance"]["positive"] == sum(e.label for e in kept)
    assert apply_budgets(examples, [Budget("weak.train.max_length", max(words(texts)), words)])[0] == examples


def test_the_note_counts_dropped_rows_and_the_class_balance_of_kept_vs_dropped() -> None:
    examples = [
        TaskExample(
            task="synthetic",
            source_id=f"s:{i}",
            candidate_id="c",
            question="q " * (1 + 9 * (i < 4)),
            candidate="a",
            label=int(i < 3 or i >= 8),
        )
        for i in range(10)
    ]
    _, summary = apply_budgets(examples, [Budget("strong.train.max_length", 5, words)])
    # rows 0-3 are long (3 positive of 4); of the 6 kept, rows 8 and 9 are positive.
    assert dropped_note(summary) == (
        "ingest dropped 4 of 10 examples (40.0%) that do not fit a model's length budget: 4 too long for "
        "strong.train.max_length (text limit 5 tokens); positive class 33.3% of the kept, 75.0% of the dropped"
    )
    assert dropped_note(apply_budgets(examples, [Budget("strong.train.max_length", 99, words)])[1]) is None


BASE = {"task": "synthetic", "splits": {"weak_train": 8, "strong_train": 8, "test": 8}}


@pytest.mark.parametrize(
    ("section", "length", "field"),
    [
        ("weak", TRANSCRIPT_RESERVE, "weak.train.max_length=64"),
        ("strong", MIN_STRONG_LENGTH - 1, f"strong.train.max_length={MIN_STRONG_LENGTH - 1}"),
    ],
)
def test_budgets_no_example_can_meet_fail_at_submission_naming_the_field(section: str, length: int, field: str) -> None:
    with pytest.raises(RunConfigError, match=field):
        parse_run_config({**BASE, section: {"train": {"max_length": length}}})
    parse_run_config({**BASE, section: {"train": {"max_length": length + 1}}})  # one more token is enough
