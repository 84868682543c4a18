"""Evaluation metrics of binary classifiers and the performance gap recovered (PGR).

Plain numpy, so reports need no scikit-learn; every metric follows scikit-learn's
definition (named below) so numbers compare with published tables:

    binary_metrics([1, 0, 1], [0.9, 0.2, 0.4])
    # {"accuracy": 0.667, "balanced_accuracy": 0.75, "f1": 0.667, "auroc": 1.0, "n": 3}
    pgr(weak_acc=0.60, w2s_acc=0.70, ceiling_acc=0.80)   # 0.5

A metric that is undefined on the data is None (NULL in the `metrics` table), never NaN.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def binary_metrics(labels: Sequence[int], probs: Sequence[float], threshold: float = 0.5) -> dict[str, float | None]:
    """Accuracy, balanced accuracy, weighted F1 and AUROC of P(class 1) `probs` against 0/1 `labels`.

    The hard prediction is 1 where prob >= `threshold`. Keys:
    * "accuracy": fraction of hard predictions equal to the label;
    * "balanced_accuracy": mean recall over the classes present in `labels`
      (sklearn `balanced_accuracy_score`);
    * "f1": per-class F1 averaged with weights = each class's share of `labels`
      (sklearn `f1_score(average="weighted")`; a class with no true or predicted member has F1 0);
    * "auroc": P(a random positive outranks a random negative), ties counting 1/2
      (the rank-sum with average ranks); None when `labels` hold one class only;
    * "n": number of examples.
    """
    y, p = _validated(labels, probs)
    predicted = (p >= threshold).astype(np.int64)
    return {
        "accuracy": float(np.mean(predicted == y)),
        "balanced_accuracy": balanced_accuracy(y, predicted),
        "f1": weighted_f1(y, predicted),
        "auroc": auroc(y, p),
        "n": len(y),
    }


def balanced_accuracy(labels: np.ndarray, predicted: np.ndarray) -> float:
    """Mean over the classes present in `labels` of the recall of that class."""
    recalls = [float(np.mean(predicted[labels == c] == c)) for c in (0, 1) if np.any(labels == c)]
    return float(np.mean(recalls))


def weighted_f1(labels: np.ndarray, predicted: np.ndarray) -> float:
    """Σ_c support_c · F1_c / n over both classes, F1_c = 2·TP / (2·TP + FP + FN), 0 when that is 0/0."""
    total = 0.0
    for c in (0, 1):
        tp = int(np.sum((predicted == c) & (labels == c)))
        fp = int(np.sum((predicted == c) & (labels != c)))
        fn = int(np.sum((predicted != c) & (labels == c)))
        f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0
        total += int(np.sum(labels == c)) * f1
    return total / len(labels)


def auroc(labels: np.ndarray, scores: np.ndarray) -> float | None:
    """Area under the ROC curve via the Mann-Whitney U statistic; None with a single class.

    AUROC = (R₊ − n₊(n₊ + 1)/2) / (n₊·n₋), R₊ the sum of the positives' ranks among all
    scores; tied scores share their average rank, which scores a tied pair as 1/2.
    """
    positives = int(np.sum(labels == 1))
    negatives = len(labels) - positives
    if positives == 0 or negatives == 0:
        return None
    ranks = average_ranks(scores)
    rank_sum = float(np.sum(ranks[labels == 1]))
    return (rank_sum - positives * (positives + 1) / 2) / (positives * negatives)


def average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks of `values`; equal values all get the mean of the ranks they span."""
    order = np.argsort(values, kind="stable")
    sorted_values = values[order]
    ranks = np.empty(len(values), dtype=np.float64)
    start = 0
    while start < len(values):
        end = start
        while end + 1 < len(values) and sorted_values[end + 1] == sorted_values[start]:
            end += 1
        ranks[order[start : end + 1]] = (start + end) / 2 + 1  # mean of ranks start+1 .. end+1
        start = end + 1
    return ranks


def pgr(weak_acc: float, w2s_acc: float, ceiling_acc: float, *, min_gap: float = 0.0) -> float | None:
    """Performance gap recovered: (w2s − weak) / (ceiling − weak), Burns et al.'s headline number.

    1 means the weakly supervised strong model matches the strong ceiling, 0 that it is no
    better than its weak supervisor; values outside [0, 1] are possible and kept.
    None means PGR is undefined: the ceiling beats the weak model by `min_gap` or less,
    so there is no gap to recover (or it is so small the ratio is noise). Pass e.g.
    `min_gap=0.01` to refuse ratios over a gap under one accuracy point.
    """
    if min_gap < 0:
        raise ValueError(f"min_gap={min_gap}: pass a non-negative accuracy gap.")
    gap = ceiling_acc - weak_acc
    if gap <= min_gap:
        return None
    return (w2s_acc - weak_acc) / gap


def _validated(labels: Sequence[int], probs: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """Labels and probabilities as arrays, after checking they can be scored together."""
    y = np.asarray(labels)
    p = np.asarray(probs, dtype=np.float64)
    if y.ndim != 1 or p.ndim != 1 or len(y) != len(p):
        raise ValueError(f"labels and probs must be flat sequences of one length; got shapes {y.shape} and {p.shape}.")
    if len(y) == 0:
        raise ValueError("no examples to score: labels and probs are empty.")
    if not np.all((y == 0) | (y == 1)):
        raise ValueError(f"labels must be 0 or 1; got {sorted(set(y.tolist()) - {0, 1})[:5]}.")
    if not np.all(np.isfinite(p)):
        raise ValueError("probs contain NaN or infinity; check the model's outputs.")
    return y.astype(np.int64), p
