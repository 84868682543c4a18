"""The few torch.distributed facts the training loop needs; single-process runs need none of it.

Under `torchrun` the caller (or `init_distributed`) initialises the process group; the loop
then wraps the model in DDP, gives each rank its slice of every batch, and lets rank 0 alone
write checkpoints and report progress.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Ranks:
    rank: int = 0
    world: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world > 1


def current_ranks() -> Ranks:
    """This process's rank and the world size; (0, 1) when no process group is up."""
    if dist.is_available() and dist.is_initialized():
        return Ranks(dist.get_rank(), dist.get_world_size())
    return Ranks()


def init_distributed() -> Ranks:
    """Join the process group torchrun describes in the environment (NCCL on GPU, gloo on CPU).

    A no-op without WORLD_SIZE > 1 or when the group is already up, so entry points can call it
    unconditionally.
    """
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        if torch.cuda.is_available():
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group(backend="nccl" if torch.cuda.is_available() else "gloo")
    return current_ranks()


def sum_across_ranks(values: list[float], ranks: Ranks, device: torch.device) -> list[float]:
    """Element-wise sum of `values` over all ranks (the values themselves when not distributed)."""
    if not ranks.distributed:
        return values
    tensor = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(tensor)
    return tensor.tolist()
