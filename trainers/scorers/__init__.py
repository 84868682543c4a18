"""Scorers turn generated texts into numbers, all behind one interface (`Scorer.score`).

    scorer = build_scorer(ScorerSpec(kind="exact_match"))
    scorer.score([Scored(prompt="12+7=", text="19", reference="19")])   # [1.0]

Kinds: `exact_match` (tasks with one answer), `local` (a toxicity classifier trained in-process from
the scored texts of RealToxicityPrompts rows, or any Hugging Face sequence classifier a user points
at), `perspective` (an HTTP server compatible with the Perspective API), `llm_judge` (any
OpenAI-compatible chat endpoint, prompted to return a score).
"""

from trainers.scorers.base import Scored, Scorer, ScorerError, ScorerSpec, build_scorer

__all__ = ["Scored", "Scorer", "ScorerError", "ScorerSpec", "build_scorer"]
