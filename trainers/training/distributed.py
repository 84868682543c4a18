"""The few torch.distributed facts the training loop needs; single-process runs need none of it.

Under `torchrun` the caller (or `init_distributed`) initialises the process group; the loop
then wraps the model in DDP, gives each rank its slice of every batch, and lets rank 0 alone
write checkpoints and report progress. A model sharded with FSDP (`Classifier.shard`) is not
wrapped: its parameters are DTensors, each rank holding a slice, so everything that reads whole
weights (checkpoints, saving) or runs a forward pass (evaluation) runs on every rank, gathering
with `gather_full` and restoring with `scatter_like`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch.distributed.tensor import DTensor, distribute_tensor


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


def is_sharded(module: torch.nn.Module) -> bool:
    """Whether FSDP sharded `module`'s parameters across ranks (then most work needs every rank)."""
    return any(isinstance(param, DTensor) for param in module.parameters())


def gather_full(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The whole tensors on the CPU, on rank 0; `{}` on the other ranks.

    A collective for sharded (DTensor) values: every rank must call it with the same names in
    the same order. One tensor is gathered at a time, so the peak is one whole tensor per device.
    A tensor under two names (tied embeddings, with `state_dict(keep_vars=True)`) is gathered
    once and stays one tensor, so `save_pretrained` still sees the tie.
    """
    main = current_ranks().is_main
    full: dict[str, torch.Tensor] = {}
    done: dict[int, torch.Tensor | None] = {}  # by tensor identity; None on the ranks that keep nothing
    for name, tensor in tensors.items():
        if id(tensor) not in done:
            whole = tensor.full_tensor() if isinstance(tensor, DTensor) else tensor
            done[id(tensor)] = whole.detach().cpu().contiguous() if main else None
        if main:
            full[name] = done[id(tensor)]
    return full


def scatter_like(full: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """`full` sharded as `like` is (every rank passes the same whole tensor); `full` itself for a plain `like`."""
    if not isinstance(like, DTensor):
        return full
    return distribute_tensor(full.to(device=like.device, dtype=like.dtype), like.device_mesh, like.placements)
