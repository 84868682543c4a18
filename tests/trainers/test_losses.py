"""Losses against values worked out by hand (math.log on chosen probabilities), not by the code under test.

Logits are picked as [0, ln a] so that P(class 1) = a / (1 + a) is a round number.
"""

import itertools
import math

import pytest
import torch

from trainers.losses import LogConf, Product, harden_like, make_loss, xent


def _logits(*p1: float) -> torch.Tensor:
    """[batch, 2] logits whose softmax gives P(class 1) = p1[i] exactly (up to float error)."""
    return torch.tensor([[0.0, math.log(p / (1 - p))] for p in p1], dtype=torch.float64)


def _ce(target: float, p1: float) -> float:
    """−[t·ln p + (1 − t)·ln(1 − p)], one example."""
    return -(target * math.log(p1) + (1 - target) * math.log(1 - p1))


def test_xent_matches_hand_value() -> None:
    logits = _logits(0.75, 1 / 3)
    expected = (-(0.5 * math.log(0.25) + 0.5 * math.log(0.75)) - math.log(1 / 3)) / 2
    assert xent(logits, torch.tensor([0.5, 1.0]), 0, 1).item() == pytest.approx(expected, rel=1e-6)


# Strong P(class 1) and weak soft labels of the logconf examples. The weak mean is 0.45; the
# strong P(class 0) are 0.75, 0.25, 0.5, 0.1, sorted 0.1 0.25 0.5 0.75, whose 0.45-quantile
# sits at position 0.45 * 3 = 1.35: 0.25 + 0.35 * (0.5 - 0.25) = 0.3375. The rows strictly
# below it (P(class 0) 0.25 and 0.1) harden to 1.
STRONG = (0.25, 0.75, 0.5, 0.9)
WEAK = (0.8, 0.3, 0.6, 0.1)
HARDENED = (0.0, 1.0, 0.0, 1.0)


@pytest.mark.parametrize(("step", "alpha"), [(0, 0.0), (10, 0.25), (20, 0.5), (99, 0.5)])
def test_logconf_matches_hand_value(step: int, alpha: float) -> None:
    # total 100 steps, warm-up 20% = 20 steps, alpha_max 0.5.
    targets = [(1 - alpha) * w + alpha * h for w, h in zip(WEAK, HARDENED)]
    expected = sum(_ce(t, p) for t, p in zip(targets, STRONG)) / 4
    loss = LogConf(alpha_max=0.5, warmup_frac=0.2)(_logits(*STRONG), torch.tensor(WEAK), step, 100)
    assert loss.item() == pytest.approx(expected, rel=1e-6)


def test_logconf_at_step_zero_is_xent() -> None:
    logits, weak = _logits(*STRONG), torch.tensor(WEAK)
    assert LogConf()(logits, weak, 0, 50).item() == pytest.approx(xent(logits, weak).item(), rel=1e-9)


@pytest.mark.parametrize(
    ("step", "alpha"),
    [(0, 0.0), (1, 0.025), (5, 0.125), (10, 0.25), (19, 0.475), (20, 0.5), (21, 0.5), (60, 0.5), (99, 0.5)],
)
def test_logconf_alpha_rises_linearly_then_holds(step: int, alpha: float) -> None:
    assert LogConf(alpha_max=0.5, warmup_frac=0.2).alpha(step, 100) == pytest.approx(alpha, abs=1e-12)


def test_logconf_alpha_is_continuous_and_never_jumps() -> None:
    # The reference implementation goes 0.1 * 0.5 -> 0.5 in one step at the end of warm-up.
    loss = LogConf(alpha_max=0.75, warmup_frac=0.2)
    curve = [loss.alpha(step, 100) for step in range(100)]
    steps = [b - a for a, b in itertools.pairwise(curve)]
    assert min(steps) >= 0.0
    assert max(steps) <= 0.75 / 20 + 1e-12  # the slope of the ramp, and nothing bigger
    assert curve[19] == pytest.approx(0.75 * 19 / 20) and curve[20] == pytest.approx(0.75)


def test_logconf_alpha_with_a_fractional_warmup_and_none() -> None:
    ramp = LogConf(alpha_max=0.5, warmup_frac=0.2)  # 7 steps -> warm-up of 1.4 steps
    assert [ramp.alpha(s, 7) for s in range(3)] == pytest.approx([0.0, 0.5 / 1.4, 0.5])
    assert LogConf(alpha_max=0.5, warmup_frac=0.0).alpha(0, 10) == 0.5


def _dist(*p1: float) -> torch.Tensor:
    """[batch, 2] distributions with P(class 1) = p1[i]."""
    return torch.tensor([[1 - p, p] for p in p1], dtype=torch.float64)


def test_hardening_keeps_the_weak_mean_not_the_count_above_one_half() -> None:
    # The example: 12 weak labels of 0.51 and 4 of 0.47, mean (12 * 0.51 + 4 * 0.47) / 16
    # = 0.5. Reference: threshold = the 0.5-quantile of the 16 distinct P(class 0), i.e. halfway
    # between the 8th and 9th smallest (position 0.5 * 15 = 7.5); 8 rows lie strictly below it.
    # Counting labels >= 0.5 would harden 12.
    weak = torch.tensor([0.51] * 12 + [0.47] * 4, dtype=torch.float64)
    strong = [0.05 * (i + 1) for i in range(16)]  # P(class 1) = 0.05 ... 0.80, all distinct
    hardened = harden_like(_dist(*strong), weak)
    assert hardened.tolist() == [0.0] * 8 + [1.0] * 8  # the 8 most confident in class 1
    # The weak mean, not their class balance: mean 0.33 while 3 of 5 labels are >= 0.5. P(class 0)
    # 0.9 ... 0.5 sorted 0.5 0.6 0.7 0.8 0.9, quantile at 0.33 * 4 = 1.32: 0.6 + 0.32 * 0.1 = 0.632.
    weak = torch.tensor([0.55, 0.5, 0.6, 0.0, 0.0], dtype=torch.float64)
    assert harden_like(_dist(0.1, 0.2, 0.3, 0.4, 0.5), weak).tolist() == [0.0, 0.0, 0.0, 1.0, 1.0]


def test_hardening_sends_ties_at_the_threshold_to_zero_as_the_reference() -> None:
    strong = _dist(0.7, 0.7, 0.7, 0.2)  # P(class 0): 0.3 0.3 0.3 0.8
    # weak mean 0.375: position 0.375 * 3 = 1.125 between two 0.3s -> threshold 0.3; none below.
    assert harden_like(strong, torch.tensor([0.9, 0.1, 0.2, 0.3])).tolist() == [0.0] * 4
    # mean 0: threshold = the minimum, nothing strictly below; mean 1: the maximum, all but it below.
    assert harden_like(strong, torch.zeros(4)).tolist() == [0.0] * 4
    assert harden_like(strong, torch.ones(4)).tolist() == [1.0, 1.0, 1.0, 0.0]


def test_logconf_gradient_does_not_flow_through_its_target() -> None:
    logits = _logits(*STRONG).requires_grad_(True)
    loss_fn = LogConf(alpha_max=0.5, warmup_frac=0.2)
    assert not loss_fn.target(logits, torch.tensor(WEAK), 50, 100).requires_grad
    loss_fn(logits, torch.tensor(WEAK), 50, 100).backward()
    # d/dlogits of mean soft CE with a constant target t: (softmax - [1 - t, t]) / batch.
    targets = [0.5 * w + 0.5 * h for w, h in zip(WEAK, HARDENED)]
    expected = [[(1 - p - (1 - t)) / 4, (p - t) / 4] for p, t in zip(STRONG, targets)]
    assert torch.allclose(logits.grad, torch.tensor(expected, dtype=torch.float64), atol=1e-6)


def test_product_matches_hand_value() -> None:
    # Row 1: strong [1/4, 3/4] * weak [1/2, 1/2] -> [1/4, 3/4]; row 2: [2/3, 1/3] * [0.2, 0.8] -> [1/3, 2/3].
    logits = _logits(0.75, 1 / 3)
    expected = (_ce(0.75, 0.75) + _ce(2 / 3, 1 / 3)) / 2
    assert Product()(logits, torch.tensor([0.5, 0.8]), 0, 1).item() == pytest.approx(expected, rel=1e-6)


def test_product_exponents() -> None:
    # alpha=2: row 2 becomes [2/3 * 0.04, 1/3 * 0.64] -> [1/9, 8/9]; row 1 stays [1/4, 3/4].
    logits = _logits(0.75, 1 / 3)
    expected = (_ce(0.75, 0.75) + _ce(8 / 9, 1 / 3)) / 2
    assert Product(alpha=2.0, beta=1.0)(logits, torch.tensor([0.5, 0.8]), 0, 1).item() == pytest.approx(expected)
    # beta=0 ignores the strong model: the target is the weak label itself, i.e. xent.
    weak = torch.tensor([0.5, 0.8])
    assert Product(alpha=1.0, beta=0.0)(logits, weak, 0, 1).item() == pytest.approx(xent(logits, weak).item())


def test_product_with_hard_labels_stays_finite() -> None:
    loss = Product()(_logits(0.5, 0.5), torch.tensor([0.0, 1.0]), 0, 1)
    assert math.isfinite(loss.item())
    assert loss.item() == pytest.approx(math.log(2), rel=1e-4)  # target ~ the label, p = 1/2


def test_product_gradient_does_not_flow_through_its_target() -> None:
    logits = _logits(0.75, 1 / 3).requires_grad_(True)
    Product()(logits, torch.tensor([0.5, 0.8]), 0, 1).backward()
    # With the hand targets above held constant: (softmax - target) / batch.
    expected = [[(0.25 - 0.25) / 2, (0.75 - 0.75) / 2], [(2 / 3 - 1 / 3) / 2, (1 / 3 - 2 / 3) / 2]]
    assert torch.allclose(logits.grad, torch.tensor(expected, dtype=torch.float64), atol=1e-6)


def test_make_loss_builds_each_loss_with_its_params() -> None:
    assert make_loss("xent") is xent
    assert make_loss("logconf", alpha_max=0.75, warmup_frac=0.1) == LogConf(alpha_max=0.75, warmup_frac=0.1)
    assert make_loss("product", alpha=2.0, beta=0.5) == Product(alpha=2.0, beta=0.5)
    assert make_loss("logconf") == LogConf(alpha_max=0.5, warmup_frac=0.2)


def test_make_loss_rejects_unknown_names_and_params() -> None:
    with pytest.raises(ValueError, match="xent, logconf, product"):
        make_loss("hinge")
    with pytest.raises(ValueError, match="takes alpha_max, warmup_frac"):
        make_loss("logconf", alpha=1.0)
    with pytest.raises(ValueError, match="no parameters"):
        make_loss("xent", alpha=1.0)
    with pytest.raises(ValueError, match="alpha_max"):
        make_loss("logconf", alpha_max=1.5)


def test_alpha_rejects_impossible_steps() -> None:
    with pytest.raises(ValueError, match="total_steps"):
        LogConf().alpha(0, 0)
    with pytest.raises(ValueError, match="counted from 0"):
        LogConf().alpha(-1, 10)
