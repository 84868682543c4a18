"""Settings of one training run (`TrainConfig`) and of a LoRA adapter (`LoraSettings`).

Both are plain dataclasses so a job payload or a run config (JSON) maps onto them field
for field; each field's `help` says what it does. They validate on creation, so a bad
value fails when the job starts, not after the model has loaded.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class TrainConfig:
    """How `train_classifier` trains: optimisation, batching, length, checkpoints."""

    epochs: float = field(
        default=2.0, metadata={"help": "Passes over the data; fractions allowed (steps are rounded up)."}
    )
    lr: float = field(default=1e-4, metadata={"help": "Peak AdamW learning rate (after warm-up, before cosine decay)."})
    batch_size: int = field(default=32, metadata={"help": "Examples per optimizer step, over all ranks together."})
    micro_batch_size: int | None = field(
        default=None,
        metadata={"help": "Examples per forward pass on one rank; batch_size / (world_size * micro_batch_size) "
                          "is the number of gradient-accumulation passes. None: the whole (per-rank) batch at once."},
    )
    weight_decay: float = field(default=0.0, metadata={"help": "AdamW decoupled weight decay."})
    warmup_ratio: float = field(
        default=0.0, metadata={"help": "Fraction of the steps with linear warm-up; cosine decay to 0 after it."}
    )
    max_length: int = field(
        default=512, metadata={"help": "Tokens per input: example text + debate transcript + prompt suffix."}
    )
    seed: int = field(default=0, metadata={"help": "Seeds the data order and all randomness during training."})
    group_by_length: bool = field(
        default=True, metadata={"help": "Batch inputs of similar length together (groups drawn at random, seeded)."}
    )
    gradient_checkpointing: bool = field(
        default=False, metadata={"help": "Recompute activations in backward: less memory, about a third more compute."}
    )
    checkpoint_every: int = field(
        default=50, metadata={"help": "Optimizer steps between resumable checkpoints (and one at the end); 0: never."}
    )
    eval_batch_size: int = field(default=64, metadata={"help": "Inputs per forward pass when predicting."})
    eval_every: int = field(
        default=0, metadata={"help": "Optimizer steps between evaluations during training (train_classifier's "
                                     "`evaluate`); 0: none during training (the caller evaluates at the end)."}
    )

    def __post_init__(self) -> None:
        if self.epochs <= 0:
            raise ValueError(f"epochs={self.epochs}: pass a positive number of epochs.")
        if self.lr <= 0:
            raise ValueError(f"lr={self.lr}: pass a positive learning rate.")
        if self.batch_size < 1 or self.eval_batch_size < 1:
            raise ValueError(f"batch_size={self.batch_size}, eval_batch_size={self.eval_batch_size}: pass sizes >= 1.")
        if self.micro_batch_size is not None and (
            self.micro_batch_size < 1 or self.batch_size % self.micro_batch_size != 0
        ):
            raise ValueError(
                f"micro_batch_size={self.micro_batch_size} must be >= 1 and divide batch_size={self.batch_size}."
            )
        if not 0.0 <= self.warmup_ratio < 1.0:
            raise ValueError(f"warmup_ratio={self.warmup_ratio}: pass a fraction in [0, 1).")
        if self.weight_decay < 0:
            raise ValueError(f"weight_decay={self.weight_decay}: pass a value >= 0.")
        if self.max_length < 2:
            raise ValueError(f"max_length={self.max_length}: pass at least 2 tokens.")
        if self.checkpoint_every < 0 or self.eval_every < 0:
            raise ValueError(f"checkpoint_every={self.checkpoint_every}, eval_every={self.eval_every}: "
                             "pass 0 (never) or a positive step count.")


@dataclass
class LoraSettings:
    """A LoRA adapter on the backbone (Hu et al. 2021); vLLM serves the same adapter."""

    r: int = field(default=8, metadata={"help": "Adapter rank (vLLM's --max-lora-rank must be at least this)."})
    alpha: int = field(default=16, metadata={"help": "Scaling numerator: the update is scaled by alpha / r."})
    dropout: float = field(default=0.0, metadata={"help": "Dropout on the adapter input during training."})
    target_modules: tuple[str, ...] = field(
        default=("q_proj", "k_proj", "v_proj", "o_proj"),
        metadata={"help": "Names of the linear layers that get an adapter."},
    )

    def __post_init__(self) -> None:
        self.target_modules = tuple(self.target_modules)  # a list from JSON becomes the documented tuple
        if self.r < 1 or self.alpha < 1:
            raise ValueError(f"r={self.r}, alpha={self.alpha}: pass positive integers.")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout={self.dropout}: pass a probability in [0, 1).")
        if not self.target_modules:
            raise ValueError("target_modules is empty: name at least one linear layer, e.g. ('q_proj', 'v_proj').")
