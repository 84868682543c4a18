"""Cross-fitting: out-of-sample predictions of a model on the very examples it learns from.

Market-making's consultant argues the side the naive weak model did NOT pick (Lang et al.
2025), so the naive predictions must be out-of-sample on every split. On strong_train and
test they are: the naive model learns on weak_train only. On weak_train its own predictions
are fitted to the ground truth it trained on, so the market-maker would argue the wrong side
for almost every training example, a cue the weak members could learn instead of the task.
There, weak_train is cut into folds and each fold is predicted by a model trained on the
other folds only.

Pure bookkeeping, no training: the caller passes `fit_predict`, which trains one fold model
and predicts the held-out fold.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

from trainers.pipeline.plan import Member, weak_model_name

CROSSFIT_FOLDS = 4
# fit_predict(train_ids, held_out_ids, fold) -> {held-out id: P(class 1)}
FitPredict = Callable[[list[int], list[int], int], dict[int, float]]


def fold_assignment(ids: Sequence[int], k: int, seed: int) -> list[list[int]]:
    """The ids dealt into min(k, len(ids)) folds of near-equal size after a seeded shuffle; each id in one fold."""
    if k < 2:
        raise ValueError(f"cross-fitting needs at least 2 folds, got k={k}")
    shuffled = sorted(ids)
    random.Random(f"crossfit:{seed}").shuffle(shuffled)
    folds = min(k, len(shuffled))
    return [sorted(shuffled[fold::folds]) for fold in range(folds)]


def cross_fit(ids: Sequence[int], k: int, seed: int, fit_predict: FitPredict) -> dict[int, float]:
    """A prediction for every id, each made by a model trained on the other folds only."""
    folds = fold_assignment(ids, k, seed)
    predictions: dict[int, float] = {}
    for number, held_out in enumerate(folds):
        train = [i for other, fold in enumerate(folds) if other != number for i in fold]
        predictions.update(fit_predict(train, held_out, number))
    return predictions


def crossfit_model_name(run_id: int, member: Member) -> str:
    """The model row holding `member`'s out-of-sample predictions: cross-fitted on weak_train, its own elsewhere."""
    return f"{weak_model_name(run_id, member)}-crossfit"
