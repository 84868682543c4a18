"""Quote verification by normalised exact match (pure)."""

from __future__ import annotations

import pytest

from debate.quotes import is_verified, normalize, verify_quotes

PASSAGE = (
    "The committee\u2019s report \u2014 published in March \u2014 said: "
    '"Funding   will rise by 4%."\n'
    "Critics called it \u201coptimistic\u201d."
)


def test_normalize_folds_case_whitespace_punctuation_and_typographic_quotes() -> None:
    assert normalize("  Hello,\n  WORLD!  ") == "hello world"
    assert normalize("the committee\u2019s") == normalize("The Committee's")
    assert normalize("\u201coptimistic\u201d") == "optimistic"


@pytest.mark.parametrize(
    "quote",
    [
        "funding will rise by 4",
        "FUNDING WILL RISE BY 4%.",
        "committee's report",
        "published in March",
        'critics called it "optimistic"',
        "said: Funding will rise",
    ],
)
def test_quotes_present_after_normalisation_verify(quote: str) -> None:
    assert is_verified(quote, PASSAGE)


@pytest.mark.parametrize(
    "quote",
    ["funding will fall by 4", "rise by 40", "port", "", "   ", "the report said funding"],
)
def test_altered_partial_word_or_empty_quotes_do_not_verify(quote: str) -> None:
    assert not is_verified(quote, PASSAGE)


def test_verify_quotes_retags_and_counts() -> None:
    content = (
        "First <quote>funding will rise by 4%</quote>, then <QUOTE>funding doubles</QUOTE>, "
        "and <quote>Critics called it optimistic</quote>."
    )
    check = verify_quotes(content, PASSAGE)
    assert check.content == (
        "First <v_quote>funding will rise by 4%</v_quote>, "
        "then <u_quote>funding doubles</u_quote>, "
        "and <v_quote>Critics called it optimistic</v_quote>."
    )
    assert (check.verified, check.unverified) == (2, 1)


def test_quote_spanning_lines_and_text_without_quotes() -> None:
    check = verify_quotes("<quote>published\nin march</quote>", PASSAGE)
    assert (check.verified, check.unverified) == (1, 0)
    plain = verify_quotes("no quotes at all", PASSAGE)
    assert (plain.content, plain.verified, plain.unverified) == ("no quotes at all", 0, 0)
