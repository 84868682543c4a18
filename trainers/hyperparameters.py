"""Every training option, defined once: its name, help text, default and bounds.

    SftSettings       epochs, lr, batch size, max length: every training loop's options (the generative SFT's)
    TrainSettings     SftSettings plus batching, schedule, checkpoints: a classifier's training but its seed
    TrainConfig       TrainSettings plus the seed: what `trainers.training.train_classifier` takes
    LoraSettings      a LoRA adapter on the backbone (vLLM serves the same adapter)
    LogconfSettings   the auxiliary confidence loss's weight schedule (`trainers.losses.LogConf`)
    ProductSettings   the product loss's exponents (`trainers.losses.Product`)
    WeakSettings      a run's weak models: checkpoint, head, training
    StrongSettings    the strong model's finetuning: head, losses (with their settings), LoRA, training, publishing
    RefineSettings    refinement of weak supervision by the served strong model (Somerstep et al.), any run kind
    Seeds             a run's training seeds: a count n (0..n-1) or a list of distinct seeds

The run config (`trainers.pipeline.config`: `weak:` and `strong:`), the fine-tuning API
(`trainers.jobs.payloads.FineTuneHyperparameters`, the body in `service.api.fine_tuning_schemas`)
and the training core all use these models, so an option added here is reachable from each.
Pydantic and nothing heavier: the API validates with them without loading torch.

Defaults are the training core's, except the user-facing ones in `USER_TRAIN_DEFAULTS`: a run
config and the fine-tuning API train with lr 5e-4 and batches of 16 (the core: 1e-4 and 32),
as they always have, so results do not change. A run's strong model trains with lr 1e-3 when
`strong.train` is left out; the fine-tuning API's lr is 1e-3 times its `learning_rate_multiplier`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

LossName = Literal["xent", "logconf", "product"]
RefineMethod = Literal["icl", "intent"]
DEFAULT_TARGET_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj")


class _Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SftSettings(_Settings):
    """The options every training loop has: passes, learning rate, batch and input length. The generative
    pipeline's SFT (`trainers.generative.sft`) takes exactly these; `TrainSettings` adds the classifier's."""

    epochs: float = Field(2.0, gt=0, description="Passes over the data; fractions allowed (steps are rounded up).")
    lr: float = Field(1e-4, gt=0, description="Peak AdamW learning rate (after warm-up, before cosine decay).")
    batch_size: int = Field(32, ge=1, description="Examples per optimizer step, over all ranks together.")
    max_length: int = Field(
        512,
        ge=2,
        description="Tokens per input: example text + debate transcript + prompt suffix (SFT: prompt + target)",
    )


class TrainSettings(SftSettings):
    """How `train_classifier` trains: optimisation, batching, length, checkpoints."""

    micro_batch_size: int | None = Field(
        None,
        ge=1,
        description="Examples per forward pass on one rank; batch_size / (world_size * "
        "micro_batch_size) is the number of gradient-accumulation passes. None: the whole "
        "(per-rank) batch at once.",
    )
    weight_decay: float = Field(0.0, ge=0, description="AdamW decoupled weight decay.")
    warmup_ratio: float = Field(
        0.0, ge=0, lt=1, description="Fraction of the steps with linear warm-up; cosine decay to 0 after it."
    )
    group_by_length: bool = Field(
        True, description="Batch inputs of similar length together (groups drawn at random, seeded)."
    )
    gradient_checkpointing: bool = Field(
        False, description="Recompute activations in backward: less memory, about a third more compute."
    )
    compile: bool = Field(
        False,
        description="Compile the model's forward and backward with torch.compile (inductor, shapes dynamic): fused "
        "kernels and far less host work per step, for GPUs that wait on the host; costs a compile (tens of seconds "
        "to minutes) at the start of every run and resume. Same results within float rounding.",
    )
    checkpoint_every: int = Field(
        50, ge=0, description="Optimizer steps between resumable checkpoints (and one at the end); 0: never."
    )
    eval_batch_size: int = Field(64, ge=1, description="Inputs per forward pass when predicting.")
    eval_every: int = Field(
        0,
        ge=0,
        description="Optimizer steps between evaluations on held-out data during training (job events and "
        "progress); 0: none during training (the caller evaluates at the end).",
    )

    @model_validator(mode="after")
    def _micro_divides(self) -> TrainSettings:
        if self.micro_batch_size is not None and self.batch_size % self.micro_batch_size:
            raise ValueError(
                f"micro_batch_size={self.micro_batch_size} must be >= 1 and divide batch_size={self.batch_size}."
            )
        return self

    def with_seed(self, seed: int) -> TrainConfig:
        return TrainConfig(**self.model_dump(), seed=seed)


class TrainConfig(TrainSettings):
    """TrainSettings plus the seed: everything one call of `train_classifier` needs."""

    seed: int = Field(0, description="Seeds the data order and all randomness during training.")


class LoraSettings(_Settings):
    """A LoRA adapter on the backbone (Hu et al. 2021); vLLM serves the same adapter."""

    r: int = Field(
        8, ge=1, le=1024, strict=True, description="Adapter rank (vLLM's --max-lora-rank must be at least this)."
    )
    alpha: float = Field(16.0, gt=0, le=4096, description="Scaling numerator: the update is scaled by alpha / r.")
    dropout: float = Field(0.0, ge=0, lt=1, description="Dropout on the adapter input during training.")
    target_modules: tuple[str, ...] = Field(
        DEFAULT_TARGET_MODULES,
        min_length=1,
        description="Names of the linear layers that get an adapter.",
        exclude_if=lambda modules: modules == DEFAULT_TARGET_MODULES,
    )  # stored configs and payloads keep their shape

    @field_validator("target_modules", mode="before")
    @classmethod
    def _as_tuple(cls, modules: object) -> object:
        """A list from JSON becomes the documented tuple."""
        return tuple(modules) if isinstance(modules, list) else modules


class LogconfSettings(_Settings):
    """Burns et al.'s auxiliary confidence loss: the weight of the strong model's own hardened prediction."""

    alpha_max: float = Field(
        0.5,
        ge=0,
        le=1,
        description="Final weight of the hardened strong prediction "
        "(Burns et al.: 0.5; 0.75 for the largest students).",
    )
    warmup_frac: float = Field(
        0.2, ge=0, le=1, description="Fraction of total_steps over which alpha rises linearly from 0 to alpha_max."
    )


class ProductSettings(_Settings):
    """Burns et al.'s product loss: target ∝ p_strong^beta · p_weak^alpha."""

    alpha: float = Field(1.0, ge=0, description="Exponent of the weak label distribution.")
    beta: float = Field(1.0, ge=0, description="Exponent of the strong model's own distribution.")


# A run config's and the fine-tuning API's defaults where they differ from TrainSettings' (see above).
USER_TRAIN_DEFAULTS: dict[str, Any] = {"lr": 5e-4, "batch_size": 16}


def user_train_settings(fields: dict[str, Any]) -> TrainSettings:
    """Training settings with the user-facing defaults under the given fields."""
    return TrainSettings(**{**USER_TRAIN_DEFAULTS, **fields})


def _with_user_defaults(train: Any) -> Any:
    """A `train:` mapping gets the user-facing defaults for the fields it leaves out."""
    return {**USER_TRAIN_DEFAULTS, **train} if isinstance(train, dict) else train


MAX_SEED = 2**31 - 1  # seeds are 32-bit columns (debates.seed, models.seed)
MAX_SEEDS = 100


def _count_means_range(seeds: Any) -> Any:
    """`seeds: 3` is shorthand for `seeds: [0, 1, 2]`."""
    if isinstance(seeds, int) and not isinstance(seeds, bool):
        if not 1 <= seeds <= MAX_SEEDS:
            raise ValueError(f"a seed count must be from 1 to {MAX_SEEDS}, got {seeds}")
        return tuple(range(seeds))
    return seeds


def _distinct_seeds(seeds: tuple[int, ...]) -> tuple[int, ...]:
    if not seeds or len(seeds) > MAX_SEEDS or len(set(seeds)) != len(seeds) or min(seeds) < 0 or max(seeds) > MAX_SEED:
        raise ValueError(
            f"seeds must be a count up to {MAX_SEEDS} or a list of at most {MAX_SEEDS} distinct ints "
            f"from 0 to {MAX_SEED}; got {list(seeds)[:20]}"
        )
    return seeds


# A run's training seeds (classification and generative runs alike): a list, or a count n meaning 0..n-1.
Seeds = Annotated[tuple[int, ...], BeforeValidator(_count_means_range), AfterValidator(_distinct_seeds)]

PATH_MAX = 1000  # characters of a path or model name a config may give
HeadName = Literal["linear", "lm", "likelihood"]
HEAD_HELP = (
    "Classifier head: 'linear' (last token, Burns et al.), 'lm' (the answer words' next-token logits; "
    "servable by vLLM), 'likelihood' (the model's own log-probabilities of the candidate answer, calibrated)"
)


class WeakSettings(_Settings):
    model: str | None = Field(
        None, max_length=PATH_MAX, description="Weak model checkpoint (HF dir or hub id); None = a tiny factory model"
    )
    head: HeadName = Field("linear", description=HEAD_HELP)
    train: TrainSettings = user_train_settings({})

    train_defaults = field_validator("train", mode="before")(_with_user_defaults)


class StrongSettings(_Settings):
    model: str | None = Field(
        None, max_length=200, description="Served name of the strong base in vLLM; None = W2S_STRONG_MODEL"
    )
    checkpoint: str | None = Field(
        None, max_length=PATH_MAX, description="Weights of that base for training; None = W2S_STRONG_MODEL_PATH / tiny"
    )
    head: HeadName = Field("lm", description=HEAD_HELP)
    losses: tuple[LossName, ...] = ("xent",)
    lora: LoraSettings | None = LoraSettings()
    logconf: LogconfSettings = LogconfSettings()
    product: ProductSettings = ProductSettings()
    publish: bool = Field(True, description="Load each finetuned LoRA adapter into vLLM under a new served name")
    train: TrainSettings = user_train_settings({"lr": 1e-3})  # 1e-3 only when `strong.train` is left out

    train_defaults = field_validator("train", mode="before")(_with_user_defaults)

    @model_validator(mode="before")
    @classmethod
    def _alpha_max_was_top_level(cls, data: Any) -> Any:
        """Run configs stored before `logconf:` existed have `alpha_max` here; they still load."""
        if isinstance(data, dict) and "alpha_max" in data:
            data = dict(data)
            alpha_max = data.pop("alpha_max")
            data["logconf"] = {"alpha_max": alpha_max, **dict(data.get("logconf") or {})}
        return data

    def loss_params(self, loss: LossName) -> dict[str, float]:
        """The parameters `trainers.losses.make_loss(loss, **params)` takes."""
        return {"xent": {}, "logconf": self.logconf.model_dump(), "product": self.product.model_dump()}[loss]

    @model_validator(mode="after")
    def _publishable(self) -> StrongSettings:
        if not self.losses:
            raise ValueError("losses must name at least one of xent, logconf, product")
        if self.publish and (self.head != "lm" or self.lora is None):
            raise ValueError(
                "publish needs head 'lm' with lora set: vLLM serves LoRA adapters of the causal LM; "
                "set publish: false for linear heads or full finetuning"
            )
        return self


class RefineSettings(_Settings):
    """How the strong model, served by vLLM, rewrites weak supervision before it is finetuned on it."""

    methods: tuple[RefineMethod, ...] = Field(
        ("icl", "intent"),
        description="icl: each example answered afresh with the other weak-supervised examples of its batch as "
        "demonstrations; intent: the supervisor's intent stated in one sentence per batch, then each example "
        "answered with it in front; empty: no refinement",
    )
    batch_size: int = Field(8, ge=2, description="weak-supervised examples per ICL context / inferred intent")
    prompt_style: Literal["instruct", "bare"] = Field(
        "instruct",
        description="instruct: labelled 'Prompt:/Answer:' pairs and an instruction to state the intent; "
        "bare: raw 'prompt+output' lines, for models pretrained on bare text (the testbed)",
    )
    intent_tokens: int = Field(48, ge=1, description="tokens the stated intent may have")

    @field_validator("methods")
    @classmethod
    def _distinct_methods(cls, methods: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(methods)) != len(methods):
            raise ValueError("methods must not repeat")
        return methods
