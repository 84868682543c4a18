"""The paired bootstrap over seeds and test examples, on correctness patterns made by hand."""

import numpy as np
import pytest

from trainers.confidence import accuracy_estimate, resampled_means, w2s_estimates


def right_on_first(count: int, examples: int) -> np.ndarray:
    """0/1 correctness: right on the first `count` examples."""
    return (np.arange(examples) < count).astype(np.int64)


def seeds_of(*rows: np.ndarray) -> np.ndarray:
    return np.stack(rows)


def test_means_are_the_mean_of_per_seed_accuracies() -> None:
    weak = seeds_of(right_on_first(50, 200), right_on_first(60, 200), right_on_first(70, 200))
    assert accuracy_estimate(weak).value == pytest.approx(np.mean([0.25, 0.30, 0.35]))


@pytest.mark.parametrize("data_seed", range(5))
def test_interval_of_pgr_contains_its_point_estimate(data_seed: int) -> None:
    rng = np.random.default_rng(data_seed)
    seeds, examples = 3, 300
    weak = (rng.random((seeds, examples)) < 0.6).astype(np.int64)
    w2s = np.maximum(weak, rng.random((seeds, examples)) < 0.3)  # right wherever weak is, and more
    ceiling = np.maximum(w2s, rng.random((seeds, examples)) < 0.3)
    estimates = w2s_estimates(weak, w2s, ceiling)
    assert estimates.pgr is not None
    assert estimates.pgr.low <= estimates.pgr.value <= estimates.pgr.high
    for estimate in (estimates.weak, estimates.w2s, estimates.ceiling, estimates.gap):
        assert estimate.low <= estimate.value <= estimate.high


def test_pgr_is_undefined_when_weak_and_ceiling_are_right_on_the_same_examples() -> None:
    weak = seeds_of(right_on_first(60, 100), right_on_first(65, 100))
    estimates = w2s_estimates(weak, seeds_of(right_on_first(70, 100), right_on_first(75, 100)), weak.copy())
    assert (estimates.gap.value, estimates.gap.low, estimates.gap.high) == (0.0, 0.0, 0.0)
    assert estimates.pgr is None


def test_pgr_is_undefined_when_the_gap_is_example_noise() -> None:
    rng = np.random.default_rng(7)
    weak, ceiling = ((rng.random((2, 100)) < 0.62).astype(np.int64) for _ in range(2))  # same rate, other examples
    estimates = w2s_estimates(weak, (rng.random((2, 100)) < 0.7).astype(np.int64), ceiling)
    assert estimates.gap.low <= 0 and estimates.pgr is None


def test_a_clear_gain_has_an_interval_well_above_zero() -> None:
    # Per seed: weak right on 100 of 200, W2S on 150, ceiling on 180 (nested): PGR = 50 / 80.
    weak = seeds_of(*(right_on_first(100, 200) for _ in range(3)))
    w2s = seeds_of(*(right_on_first(150, 200) for _ in range(3)))
    ceiling = seeds_of(*(right_on_first(180, 200) for _ in range(3)))
    estimates = w2s_estimates(weak, w2s, ceiling)
    assert estimates.pgr.value == pytest.approx(0.625)
    assert 0.45 < estimates.pgr.low < 0.625 < estimates.pgr.high < 0.8
    assert estimates.gap.low > 0.3


def test_pairing_makes_a_small_consistent_gap_significant() -> None:
    # The ceiling is right wherever the weak model is, plus 5 examples in 100: every resample of
    # examples keeps that, so the gap is above zero although each accuracy alone is +-10 points.
    # Resampling the models' examples independently would lose it.
    weak, w2s, ceiling = (seeds_of(right_on_first(count, 100)) for count in (60, 63, 65))
    estimates = w2s_estimates(weak, w2s, ceiling)
    assert estimates.weak.high - estimates.weak.low > 0.15
    assert estimates.gap.low > 0 and estimates.pgr is not None
    assert estimates.pgr.value == pytest.approx(0.6)


def test_seeds_are_resampled_so_seed_to_seed_spread_widens_the_interval() -> None:
    # 2000 examples make example noise about +-2 points; the two seeds are 40 points apart.
    w2s = seeds_of(right_on_first(1000, 2000), right_on_first(1800, 2000))
    estimate = accuracy_estimate(w2s)
    assert estimate.value == pytest.approx(0.7)
    assert estimate.low < 0.55 and estimate.high > 0.85


def test_same_data_same_interval() -> None:
    weak, w2s, ceiling = (seeds_of(right_on_first(count, 50), right_on_first(count + 5, 50)) for count in (20, 30, 40))
    assert w2s_estimates(weak, w2s, ceiling) == w2s_estimates(weak, w2s, ceiling)


def test_replicates_reproduce_a_constant_exactly() -> None:
    (means,) = resampled_means([np.ones((3, 10), dtype=np.int64)], replicates=50)
    assert means.shape == (50,) and np.all(means == 1.0)


def test_arrays_of_different_shapes_are_refused() -> None:
    with pytest.raises(ValueError, match="seeds, examples"):
        resampled_means([np.ones((2, 10)), np.ones((3, 10))])
