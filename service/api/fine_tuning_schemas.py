"""Bodies of the OpenAI-compatible files, fine-tuning and models endpoints (the `openai` package's shapes).

Ids are OpenAI-style strings: `file-<n>`, `ftjob-<n>`, `ftevent-<n>`, `ftckpt-<n>` over our integer keys.
Our extensions to a job (`loss`, `head`, `lora`, `publish`, `eval_every`, and every other training option:
`train`, `logconf`, `product`) come in the same JSON body; with the `openai` client pass them as `extra_body`.
The training options are `trainers.hyperparameters`' models, defined once for the run config and this API.
"""

from collections.abc import Callable
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, PlainValidator, model_validator

from trainers.hyperparameters import LogconfSettings, LoraSettings, ProductSettings, TrainSettings

MAX_SEED = 2**31 - 1


def _auto_or(kind: type, low: float, high: float, *, low_open: bool = False) -> Callable[[Any], Any]:
    """A validator for OpenAI's `"auto" | number` hyperparameters, with one clear message."""
    accepted = (int, float) if kind is float else (int,)
    bounds = f"{'above' if low_open else 'from'} {low:g} {'up ' if low_open else ''}to {high:g}"
    noun = "a number" if kind is float else "an integer"

    def check(value: Any) -> Any:
        if value == "auto":
            return "auto"
        if (
            isinstance(value, bool)
            or not isinstance(value, accepted)
            or not ((low < value if low_open else low <= value) and value <= high)
        ):
            raise ValueError(f"must be 'auto' or {noun} {bounds}; got {value!r}")
        return kind(value)

    return check


def _auto_or_number(kind: type, low: float, high: float, *, low_open: bool = False) -> PlainValidator:
    return PlainValidator(_auto_or(kind, low, high, low_open=low_open), json_schema_input_type=Literal["auto"] | kind)


AutoEpochs = Annotated[Literal["auto"] | int, _auto_or_number(int, 1, 100)]
AutoBatch = Annotated[Literal["auto"] | int, _auto_or_number(int, 1, 4096)]
AutoRate = Annotated[Literal["auto"] | float, _auto_or_number(float, 0, 100, low_open=True)]


class Hyperparameters(BaseModel):
    model_config = ConfigDict(extra="forbid")

    n_epochs: AutoEpochs = "auto"
    batch_size: AutoBatch = "auto"
    learning_rate_multiplier: AutoRate = "auto"


class SupervisedMethod(BaseModel):
    model_config = ConfigDict(extra="forbid")

    hyperparameters: Hyperparameters | None = None


class Method(BaseModel):
    """OpenAI's `method`; only supervised finetuning (on soft labels) exists here."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["supervised"] = Field(description="Only 'supervised' is supported (no dpo / reinforcement).")
    supervised: SupervisedMethod | None = None


MetadataKey = Annotated[str, Field(min_length=1, max_length=64)]
Metadata = Annotated[dict[MetadataKey, Annotated[str, Field(max_length=512)]], Field(max_length=16)]
Suffix = Annotated[
    str,
    Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$",
        description="Up to 64 letters, digits, '.', '_' or '-'; added to the served name.",
    ),
]


class FineTuningJobCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str = Field(
        min_length=1, max_length=200, description="Served name of the strong base model, or of a served model version."
    )
    training_file: str = Field(
        pattern=r"^(file|labels)-[0-9]{1,18}$",
        description="'file-<n>' (uploaded JSONL) or 'labels-<weak model id>' (that model's "
        "soft labels on its run's strong_train examples).",
    )
    validation_file: str | None = Field(None, pattern=r"^file-[0-9]{1,18}$", description="'file-<n>' (uploaded JSONL).")
    hyperparameters: Hyperparameters | None = Field(
        None, description="Deprecated by OpenAI for method.supervised.hyperparameters; either works."
    )
    method: Method | None = None
    suffix: Suffix | None = None
    seed: int | None = Field(None, ge=0, le=MAX_SEED, strict=True, description="Default: one is drawn and reported.")
    metadata: Metadata | None = None
    # Extensions (send with the openai client's `extra_body`).
    loss: Literal["xent", "logconf", "product"] = Field(
        "xent", description="W2S loss: soft-label cross-entropy, auxiliary confidence, or product."
    )
    head: Literal["lm", "linear"] = Field(
        "lm", description="Classifier head: the LM's answer-token logits, or a zero-initialised linear head."
    )
    lora: LoraSettings | None = Field(default_factory=LoraSettings, description="LoRA adapter; null = full finetune.")
    publish: bool = Field(True, description="Load the trained adapter into vLLM as `fine_tuned_model`.")
    eval_every: int = Field(
        0,
        ge=0,
        le=1_000_000,
        strict=True,
        description="Steps between evaluations on validation_file during training (metrics "
        "events); 0 = only once at the end.",
    )
    train: TrainSettings | None = Field(
        None,
        description="Any other training option (weight_decay, warmup_ratio, max_length, micro_batch_size, ...); "
        "the fields given override the job's defaults. Epochs, batch size and learning rate are "
        "the hyperparameters above, eval_every is its own field.",
    )
    logconf: LogconfSettings = Field(LogconfSettings(), description="Settings of loss 'logconf'.")
    product: ProductSettings = Field(ProductSettings(), description="Settings of loss 'product'.")

    @model_validator(mode="after")
    def _one_place_for_hyperparameters(self) -> "FineTuningJobCreate":
        if self.hyperparameters is not None and self.method_hyperparameters() is not None:
            raise ValueError(
                "give hyperparameters either at the top level or in method.supervised.hyperparameters, not both"
            )
        if self.eval_every and self.validation_file is None:
            raise ValueError("eval_every evaluates on validation_file: upload one and pass it, or leave eval_every 0")
        named_elsewhere = sorted(set(self.train_options()) & {"epochs", "batch_size", "lr", "eval_every"})
        if named_elsewhere:
            raise ValueError(
                f"train.{named_elsewhere[0]}: set it as n_epochs, batch_size, learning_rate_multiplier "
                "(hyperparameters) or eval_every instead"
            )
        return self

    def train_options(self) -> dict[str, Any]:
        """The training options the body sets in `train` (the others keep the job's defaults)."""
        return self.train.model_dump(exclude_unset=True) if self.train else {}

    def method_hyperparameters(self) -> Hyperparameters | None:
        return self.method.supervised.hyperparameters if self.method and self.method.supervised else None

    def resolved_hyperparameters(self) -> Hyperparameters:
        return self.hyperparameters or self.method_hyperparameters() or Hyperparameters()


class FilePublic(BaseModel):
    id: str
    object: Literal["file"] = "file"
    bytes: int
    created_at: int
    filename: str
    purpose: Literal["fine-tune"]
    status: Literal["uploaded", "processed", "error"] = "processed"
    status_details: str | None = None
    expires_at: int | None = None
    lines: int = Field(description="Examples in the file (extension).")


class FileDeleted(BaseModel):
    id: str
    object: Literal["file"] = "file"
    deleted: bool = True


class FineTuningErrorPublic(BaseModel):
    code: str
    message: str
    param: str | None = None


class HyperparametersPublic(BaseModel):
    n_epochs: int | Literal["auto"] | None
    batch_size: int | Literal["auto"] | None
    learning_rate_multiplier: float | Literal["auto"] | None


class MethodPublic(BaseModel):
    type: Literal["supervised"] = "supervised"
    supervised: dict[str, HyperparametersPublic]


class FineTuningJobPublic(BaseModel):
    id: str
    object: Literal["fine_tuning.job"] = "fine_tuning.job"
    created_at: int
    error: FineTuningErrorPublic | None
    fine_tuned_model: str | None
    finished_at: int | None
    hyperparameters: HyperparametersPublic
    model: str
    organization_id: str = "debate-w2s"
    result_files: list[str] = Field(default_factory=list)
    seed: int | None
    status: Literal["validating_files", "queued", "running", "succeeded", "failed", "cancelled"]
    trained_tokens: int | None
    training_file: str
    validation_file: str | None
    estimated_finish: int | None
    integrations: list[Any] | None = None
    metadata: dict[str, str] | None
    method: MethodPublic
    # Extensions.
    suffix: str | None
    loss: str | None
    head: str | None
    lora: dict[str, Any] | None
    publish: bool | None
    progress: dict[str, Any] | None = Field(description="The worker's progress (done, total, eta_s, ...).")


class FineTuningJobEventPublic(BaseModel):
    id: str
    object: Literal["fine_tuning.job.event"] = "fine_tuning.job.event"
    created_at: int
    level: Literal["info", "warn", "error"]
    message: str
    data: dict[str, Any] | None
    type: Literal["message", "metrics"]


class FineTuningJobCheckpointPublic(BaseModel):
    id: str
    object: Literal["fine_tuning.job.checkpoint"] = "fine_tuning.job.checkpoint"
    created_at: int
    fine_tuned_model_checkpoint: str = Field(description="The served name to send as `model` to the strong model.")
    fine_tuning_job_id: str
    metrics: dict[str, Any] = Field(description="step, train_loss, and full_valid_<metric> on validation_file.")
    step_number: int


class ModelPublic(BaseModel):
    id: str = Field(description="The served name in vLLM: the strong base model or a published fine-tune.")
    object: Literal["model"] = "model"
    created: int = Field(description="When the version was published; 0 for the base model, which is not made here.")
    owned_by: str
    parent: str | None = Field(None, description="The model it was fine-tuned from (extension, as vLLM's).")


Item = TypeVar("Item", bound=BaseModel)


class ListPage(BaseModel, Generic[Item]):
    """OpenAI's cursor page: pass the last item's id as `after` for the next one."""

    object: Literal["list"] = "list"
    data: list[Item]
    has_more: bool
    first_id: str | None = None
    last_id: str | None = None

    @model_validator(mode="after")
    def _ends(self) -> "ListPage[Item]":
        """first_id / last_id default to the page's ends."""
        if self.data and self.first_id is None:
            self.first_id, self.last_id = self.data[0].id, self.data[-1].id
        return self
