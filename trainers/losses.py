"""Training losses for binary classifiers trained on (possibly soft) labels.

Every loss has one signature, so the training loop does not care which it runs:

    loss = loss_fn(logits, targets, step, total_steps)

`logits` is [batch, 2] (column 1 = "the candidate answer is correct"), `targets` is [batch]
with the probability of class 1 (a weak model's soft label, or 0/1 ground truth), `step`
is the 0-based optimizer step and `total_steps` the number of optimizer steps of the run
(losses with a warm-up need both).
"""

from typing import Protocol

import torch
import torch.nn.functional as F


class Loss(Protocol):
    def __call__(self, logits: torch.Tensor, targets: torch.Tensor, step: int, total_steps: int) -> torch.Tensor: ...


def soft_targets(targets: torch.Tensor) -> torch.Tensor:
    """[batch] probabilities of class 1 -> [batch, 2] distributions."""
    targets = targets.float()
    return torch.stack([1.0 - targets, targets], dim=-1)


def xent(logits: torch.Tensor, targets: torch.Tensor, step: int = 0, total_steps: int = 1) -> torch.Tensor:
    """Cross-entropy against soft labels, averaged over the batch (Burns et al. `xent`)."""
    log_probs = F.log_softmax(logits.float(), dim=-1)
    return -(soft_targets(targets) * log_probs).sum(dim=-1).mean()


def make_loss(name: str) -> Loss:
    """The loss called `name`."""
    if name == "xent":
        return xent
    raise ValueError(f"unknown loss {name!r}; choose one of: xent")
