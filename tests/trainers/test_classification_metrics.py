"""Metrics against values counted by hand from confusion matrices and pairwise comparisons."""

import numpy as np
import pytest

from trainers.classification_metrics import average_ranks, binary_metrics, pgr


def test_small_example_from_the_module_docstring() -> None:
    # Predictions [1, 0, 0]: class 1 recall 1/2, class 0 recall 1; F1 = 2/3 for both classes.
    assert binary_metrics([1, 0, 1], [0.9, 0.2, 0.4]) == pytest.approx(
        {"accuracy": 2 / 3, "balanced_accuracy": 0.75, "f1": 2 / 3, "auroc": 1.0, "n": 3}
    )


def test_imbalanced_example_with_weighted_f1() -> None:
    labels = [1, 1, 1, 1, 1, 1, 0, 0]
    probs = [0.9, 0.8, 0.7, 0.6, 0.3, 0.2, 0.55, 0.1]  # predicted [1, 1, 1, 1, 0, 0, 1, 0]
    # class 1: TP 4, FP 1, FN 2 -> F1 = 8 / 11; class 0: TP 1, FP 2, FN 1 -> F1 = 2 / 5.
    f1 = (6 * 8 / 11 + 2 * 2 / 5) / 8
    got = binary_metrics(labels, probs)
    assert got["accuracy"] == pytest.approx(5 / 8)
    assert got["balanced_accuracy"] == pytest.approx((4 / 6 + 1 / 2) / 2)
    assert got["f1"] == pytest.approx(f1)
    assert got["f1"] != pytest.approx((8 / 11 + 2 / 5) / 2)  # not the macro average
    # AUROC: positives 0.9 .. 0.6 beat both negatives (8 pairs), 0.3 and 0.2 beat only 0.1 (2 pairs).
    assert got["auroc"] == pytest.approx(10 / 12)
    assert got["n"] == 8


def test_auroc_counts_ties_as_half() -> None:
    labels = [0, 0, 1, 1, 0, 1]
    scores = [0.1, 0.4, 0.4, 0.8, 0.8, 0.8]
    # positive 0.4 vs negatives (0.1, 0.4, 0.8): 1 + 1/2 + 0; each positive 0.8: 1 + 1 + 1/2.
    assert binary_metrics(labels, scores)["auroc"] == pytest.approx((1.5 + 2.5 + 2.5) / 9)
    assert binary_metrics([0, 1], [0.5, 0.5])["auroc"] == pytest.approx(0.5)


def test_average_ranks_share_ties() -> None:
    assert average_ranks(np.array([3.0, 1.0, 3.0, 2.0, 3.0])).tolist() == [4.0, 1.0, 4.0, 2.0, 4.0]


def test_one_class_has_no_auroc_and_scores_the_present_class_only() -> None:
    got = binary_metrics([1, 1, 1], [0.9, 0.2, 0.7])
    # Class 1 only: recall 2/3; F1 of class 1 = 2*2 / (2*2 + 0 + 1) = 4/5, class 0 has weight 0.
    assert got == pytest.approx({"accuracy": 2 / 3, "balanced_accuracy": 2 / 3, "f1": 0.8, "auroc": None, "n": 3})


def test_threshold_moves_the_hard_predictions_not_auroc() -> None:
    at_half = binary_metrics([0, 1, 1], [0.3, 0.4, 0.9])
    at_low = binary_metrics([0, 1, 1], [0.3, 0.4, 0.9], threshold=0.35)
    assert at_half["accuracy"] == pytest.approx(2 / 3) and at_low["accuracy"] == 1.0
    assert at_half["auroc"] == at_low["auroc"] == 1.0


def test_invalid_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="one length"):
        binary_metrics([0, 1], [0.5])
    with pytest.raises(ValueError, match="empty"):
        binary_metrics([], [])
    with pytest.raises(ValueError, match="0 or 1"):
        binary_metrics([0, 2], [0.1, 0.9])
    with pytest.raises(ValueError, match="NaN"):
        binary_metrics([0, 1], [0.1, float("nan")])


@pytest.mark.parametrize(
    ("weak", "w2s", "ceiling", "expected"),
    [
        (0.60, 0.70, 0.80, 0.5),
        (0.60, 0.80, 0.80, 1.0),
        (0.60, 0.60, 0.80, 0.0),
        (0.60, 0.85, 0.80, 1.25),  # beats the ceiling
        (0.60, 0.55, 0.80, -0.25),  # worse than its supervisor
    ],
)
def test_pgr(weak: float, w2s: float, ceiling: float, expected: float) -> None:
    assert pgr(weak, w2s, ceiling) == pytest.approx(expected)


def test_pgr_is_undefined_without_a_gap() -> None:
    assert pgr(0.7, 0.75, 0.7) is None  # ceiling equals weak
    assert pgr(0.7, 0.75, 0.65) is None  # ceiling below weak
    assert pgr(0.70, 0.72, 0.74, min_gap=0.05) is None  # gap 0.04 <= 0.05
    assert pgr(0.70, 0.72, 0.80, min_gap=0.05) == pytest.approx(0.2)
    with pytest.raises(ValueError, match="min_gap"):
        pgr(0.6, 0.7, 0.8, min_gap=-0.1)
