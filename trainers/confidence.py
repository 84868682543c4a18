"""Confidence intervals of W2S results over training seeds and test examples: a paired two-way bootstrap.

A run's accuracies vary for two reasons: the training seed (data order and init of the weak
members and strong finetunes) and which examples happened to land in the test split. A
bootstrap over seeds alone would ignore the second, one over examples alone the first, so each
replicate resamples both with replacement. The weak, W2S and ceiling models of a seed are scored
on the same test examples and their errors are correlated (an example hard for one is often hard
for all), so one draw of seeds and one of examples serves all three models of a replicate: the
pairing keeps that correlation, which makes the intervals of differences and of PGR honest
(usually narrower) instead of treating the three as independent.

    weak, w2s, ceiling = ...            # 0/1 correctness, arrays of shape (seeds, test examples)
    estimates = w2s_estimates(weak, w2s, ceiling)
    estimates.w2s                       # Estimate(value=mean accuracy, low, high)
    estimates.pgr                       # Estimate, or None: undefined, the gap may be noise

Per replicate the mean accuracies and PGR = (w2s − weak) / (ceiling − weak) are recomputed; an
interval is the 2.5th-97.5th percentile of the replicates. The random draws come from a fixed
seed, so the same results always give the same report.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from trainers.classification_metrics import pgr

REPLICATES = 2000
BOOTSTRAP_SEED = 20231214  # fixed: a report rebuilt from the same rows must show the same intervals
LEVEL = 0.95


@dataclass(frozen=True)
class Estimate:
    """A point estimate and its bootstrap interval (LEVEL, percentile method)."""

    value: float
    low: float
    high: float


@dataclass(frozen=True)
class W2SEstimates:
    """Mean test accuracies over seeds, the ceiling-weak gap and PGR, each with its interval."""

    weak: Estimate
    w2s: Estimate
    ceiling: Estimate
    gap: Estimate  # ceiling - weak accuracy
    pgr: Estimate | None  # None: undefined, the gap's interval does not stay above zero


def resampled_means(
    correct: Sequence[np.ndarray], *, replicates: int = REPLICATES, seed: int = BOOTSTRAP_SEED
) -> list[np.ndarray]:
    """Each array's mean accuracy in every replicate: shape (replicates,) per array.

    The arrays are (seeds, examples) 0/1 correctness over the same seeds (rows) and examples
    (columns). A replicate draws seeds and examples with replacement once and applies that
    draw to every array, so the arrays stay paired. Draws are counts (how often each seed and
    each example was picked), which makes a replicate's mean a weighted sum instead of a copy.
    """
    shape = correct[0].shape
    if len(shape) != 2 or 0 in shape or any(array.shape != shape for array in correct):
        raise ValueError(
            f"correctness arrays must all be (seeds, examples) and non-empty; got {[array.shape for array in correct]}"
        )
    seeds, examples = shape
    rng = np.random.default_rng(seed)
    seed_counts = rng.multinomial(seeds, np.full(seeds, 1 / seeds), size=replicates)
    # As floats, so the product below is one BLAS call.
    example_counts = rng.multinomial(examples, np.full(examples, 1 / examples), size=replicates).astype(np.float64)
    # example_counts @ array.T: each seed's correct answers on each replicate's examples.
    return [
        np.einsum("rs,rs->r", seed_counts, example_counts @ array.T.astype(np.float64)) / (seeds * examples)
        for array in correct
    ]


def interval(replicates: np.ndarray) -> tuple[float, float]:
    """The central LEVEL percentile interval of bootstrap replicates."""
    tail = 100 * (1 - LEVEL) / 2
    low, high = np.percentile(replicates, [tail, 100 - tail])
    return float(low), float(high)


def accuracy_estimate(correct: np.ndarray) -> Estimate:
    """Mean accuracy over seeds and examples of one (seeds, examples) correctness array."""
    (means,) = resampled_means([correct])
    return Estimate(float(correct.mean()), *interval(means))


def w2s_estimates(weak: np.ndarray, w2s: np.ndarray, ceiling: np.ndarray) -> W2SEstimates:
    """Paired estimates of one weak condition x strong loss (see the module docstring).

    PGR is undefined (None) unless the ceiling beats the weak model significantly: the lower
    end of the gap's interval must be above zero, else the ratio divides by what may be noise.
    Even then a few replicates (under 2.5% of them) can have no gap; they have no PGR and are
    left out of its interval.
    """
    weak_r, w2s_r, ceiling_r = resampled_means([weak, w2s, ceiling])
    weak_acc, w2s_acc, ceiling_acc = (float(array.mean()) for array in (weak, w2s, ceiling))
    gap_r = ceiling_r - weak_r
    gap = Estimate(ceiling_acc - weak_acc, *interval(gap_r))
    point = pgr(weak_acc, w2s_acc, ceiling_acc)
    estimate = None
    if gap.low > 0 and point is not None:
        defined = gap_r > 0
        estimate = Estimate(point, *interval((w2s_r[defined] - weak_r[defined]) / gap_r[defined]))
    return W2SEstimates(
        weak=Estimate(weak_acc, *interval(weak_r)),
        w2s=Estimate(w2s_acc, *interval(w2s_r)),
        ceiling=Estimate(ceiling_acc, *interval(ceiling_r)),
        gap=gap,
        pgr=estimate,
    )
