"""Training losses for binary classifiers trained on (possibly soft) labels.

Every loss has one signature, so the training loop does not care which it runs:

    loss = loss_fn(logits, targets, step, total_steps)

`logits` is [batch, 2] (column 1 = "the candidate answer is correct"), `targets` is [batch]
with the probability of class 1 (a weak model's soft label, or 0/1 ground truth), `step`
is the 0-based optimizer step and `total_steps` the number of optimizer steps of the run
(losses with a warm-up need both).

The three losses of Burns et al. 2023 (arXiv 2312.09390):

* `xent` — soft-label cross-entropy against the weak labels;
* `logconf` — auxiliary confidence loss: the target mixes the weak label with the strong
  model's own prediction, hardened at the batch quantile of the weak labels' mean, so the
  student may overrule a weak supervisor it disagrees with confidently;
* `product` — the target is the normalised product of the strong and weak distributions.

Targets built from the strong model's own predictions are detached: the student is pulled
towards them, never the targets towards the student.
"""

from __future__ import annotations

import math
from typing import Any, Protocol

import torch
import torch.nn.functional as F

from trainers.hyperparameters import LogconfSettings, ProductSettings

LOSS_NAMES = ("xent", "logconf", "product")
# Floor on probabilities before taking logs: a 0/1 ground-truth label would give log(0).
PROB_FLOOR = 1e-6


class Loss(Protocol):
    def __call__(self, logits: torch.Tensor, targets: torch.Tensor, step: int, total_steps: int) -> torch.Tensor: ...


def soft_targets(targets: torch.Tensor) -> torch.Tensor:
    """[batch] probabilities of class 1 -> [batch, 2] distributions."""
    targets = targets.float()
    return torch.stack([1.0 - targets, targets], dim=-1)


def soft_cross_entropy(logits: torch.Tensor, target_dist: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of −Σ_c target[c]·log softmax(logits)[c]; `target_dist` is [batch, 2]."""
    log_probs = F.log_softmax(logits.float(), dim=-1)
    return -(target_dist * log_probs).sum(dim=-1).mean()


def xent(logits: torch.Tensor, targets: torch.Tensor, step: int = 0, total_steps: int = 1) -> torch.Tensor:
    """Cross-entropy against soft labels, averaged over the batch (Burns et al. `xent`)."""
    return soft_cross_entropy(logits, soft_targets(targets))


def harden_like(strong_dist: torch.Tensor, weak_targets: torch.Tensor) -> torch.Tensor:
    """Harden the strong model's [batch, 2] distribution to 0/1 as Burns et al.'s reference code does.

    threshold = the q-quantile over the batch of P(class 0), q = the mean soft weak label
    (`torch.quantile`, linear interpolation); an example hardens to 1 iff its P(class 0) is
    strictly below the threshold, so ties at it harden to 0. About q·batch examples become 1:
    the strong model keeps the weak labels' MEAN, which differs from their count above 0.5
    whenever labels are soft (12 labels of 0.51 and 4 of 0.47 have mean 0.5: 8 of the 16
    harden to 1, not 12).
    """
    negative = strong_dist[:, 0]
    threshold = torch.quantile(negative, weak_targets.to(negative.dtype).mean())
    return (negative < threshold).to(strong_dist.dtype)


class LogConf(LogconfSettings):
    """Burns et al.'s auxiliary confidence loss, with a continuous warm-up of its weight α.

    target = (1 − α)·weak + α·hardened strong prediction (see `harden_like`), where the
    strong prediction is softmax(logits) detached; α rises linearly from 0 at step 0
    to `alpha_max` at step `warmup_frac`·total_steps and stays there. (The reference code
    jumps from ~0.1·α_max to α_max at the end of its warm-up; this curve has no jump.)
    Its settings (and their help) are `trainers.hyperparameters.LogconfSettings`.
    """

    def alpha(self, step: int, total_steps: int) -> float:
        """Weight of the hardened strong prediction at optimizer step `step` (0-based)."""
        _check_steps(step, total_steps)
        warmup_steps = self.warmup_frac * total_steps
        if warmup_steps == 0:
            return self.alpha_max
        return self.alpha_max * min(1.0, step / warmup_steps)

    def target(self, logits: torch.Tensor, targets: torch.Tensor, step: int, total_steps: int) -> torch.Tensor:
        """[batch] P(class 1) the loss pulls towards; carries no gradient."""
        strong = torch.softmax(logits.detach().float(), dim=-1)
        alpha = self.alpha(step, total_steps)
        return (1.0 - alpha) * targets.float() + alpha * harden_like(strong, targets.float())

    def __call__(self, logits: torch.Tensor, targets: torch.Tensor, step: int, total_steps: int) -> torch.Tensor:
        return xent(logits, self.target(logits, targets, step, total_steps))


class Product(ProductSettings):
    """Burns et al.'s product loss: target ∝ p_strong^β · p_weak^α over the two classes.

    Both distributions are detached; probabilities are floored at `PROB_FLOOR` and the
    product is normalised in log space, so 0/1 labels and saturated logits stay finite.
    Its settings are `trainers.hyperparameters.ProductSettings`.
    """

    def target(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """[batch, 2] normalised target distribution; carries no gradient."""
        log_strong = F.log_softmax(logits.detach().float(), dim=-1).clamp_min(math.log(PROB_FLOOR))
        log_weak = torch.log(soft_targets(targets.detach()).clamp_min(PROB_FLOOR))
        return torch.softmax(self.beta * log_strong + self.alpha * log_weak, dim=-1)

    def __call__(
        self, logits: torch.Tensor, targets: torch.Tensor, step: int = 0, total_steps: int = 1
    ) -> torch.Tensor:
        return soft_cross_entropy(logits, self.target(logits, targets))


def make_loss(name: str, **params: Any) -> Loss:
    """The loss called `name` ("xent" | "logconf" | "product") with its `params`.

    logconf takes alpha_max, warmup_frac; product takes alpha, beta; xent takes none.
    """
    if name == "xent":
        _check_params(name, params, ())
        return xent
    if name == "logconf":
        _check_params(name, params, _field_names(LogConf))
        return LogConf(**params)
    if name == "product":
        _check_params(name, params, _field_names(Product))
        return Product(**params)
    raise ValueError(f"unknown loss {name!r}; choose one of: {', '.join(LOSS_NAMES)}")


def _field_names(cls: type[LogConf | Product]) -> tuple[str, ...]:
    return tuple(cls.model_fields)


def _check_params(name: str, params: dict[str, Any], accepted: tuple[str, ...]) -> None:
    """Reject parameters a loss does not take, naming the ones it does."""
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        takes = ", ".join(accepted) if accepted else "no parameters"
        raise ValueError(f"loss {name!r} does not take {', '.join(unknown)}; it takes {takes}.")


def _check_steps(step: int, total_steps: int) -> None:
    if total_steps < 1:
        raise ValueError(f"total_steps={total_steps}: a run has at least one optimizer step.")
    if step < 0:
        raise ValueError(f"step={step}: steps are counted from 0.")
