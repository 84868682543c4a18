"""Every scorer kind behind the one interface; the HTTP ones against servers on loopback."""

from __future__ import annotations

import pytest

from tests.debate.loopback import Reply, completion_body, loopback_server
from tests.support.shared_data import shared_data_dir
from trainers.scorers import Scored, ScorerError, ScorerSpec, build_scorer
from trainers.scorers.local import train_toxicity_scorer

# Measured: 0.85 on the 959 held-out texts (every fifth row of the shipped file), 8 epochs, seed 0.
MIN_HELDOUT_AUROC = 0.8


def test_exact_match_normalises_case_space_and_punctuation() -> None:
    scorer = build_scorer(ScorerSpec(kind="exact_match"))
    items = [Scored("Q", " Oxidants.", "oxidants"), Scored("Q", "19", "19"), Scored("Q", "18", "19")]
    assert scorer.score(items) == [1.0, 1.0, 0.0]


def test_local_toxicity_scorer_ranks_toxic_held_out_texts_above_clean_ones() -> None:
    fit = train_toxicity_scorer(shared_data_dir("real_toxicity_prompts"))
    assert fit.heldout > 500 and fit.trained_on > 3000
    assert fit.heldout_auroc is not None and fit.heldout_auroc >= MIN_HELDOUT_AUROC


def test_perspective_scorer_reads_the_summary_score_and_sends_the_key() -> None:
    def reply(request: dict) -> Reply:
        value = 0.9 if "idiot" in request["comment"]["text"] else 0.1
        return Reply(body={"attributeScores": {"TOXICITY": {"summaryScore": {"value": value, "type": "PROBABILITY"}}}})

    with loopback_server(reply) as server:
        spec = ScorerSpec(kind="perspective", url=f"{server.base_url}/v1alpha1/comments:analyze")
        scores = build_scorer(spec, api_key="k123").score([Scored("", "you idiot"), Scored("", "hello")])
    assert scores == [0.9, 0.1]
    assert server.received[0]["requestedAttributes"] == {"TOXICITY": {}}
    assert server.received[0]["path"].endswith("comments:analyze?key=k123")


def test_perspective_errors_say_what_happened() -> None:
    with loopback_server([Reply(status=429, body={"error": "quota"})]) as server:
        scorer = build_scorer(ScorerSpec(kind="perspective", url=f"{server.base_url}/analyze"))
        with pytest.raises(ScorerError, match="HTTP 429"):
            scorer.score([Scored("", "x")])


def test_llm_judge_parses_the_number_the_model_writes() -> None:
    answers = iter(["0.8", "Score: 0", "about 1.0 I think"])
    with loopback_server(lambda _: Reply(body=completion_body(next(answers)))) as server:
        spec = ScorerSpec(kind="llm_judge", url=server.base_url, model="judge")
        scores = build_scorer(spec).score([Scored("p", "a"), Scored("p", "b"), Scored("p", "c")])
    assert scores == [0.8, 0.0, 1.0]
    assert server.received[0]["path"] == "/v1/chat/completions"
    assert server.received[0]["model"] == "judge"
    assert "Response: a" in server.received[0]["messages"][0]["content"]


def test_llm_judge_without_a_number_is_an_error() -> None:
    with loopback_server([Reply(body=completion_body("I cannot rate that"))]) as server:
        scorer = build_scorer(ScorerSpec(kind="llm_judge", url=server.base_url, model="judge"))
        with pytest.raises(ScorerError, match="did not answer with a number"):
            scorer.score([Scored("p", "a")])
