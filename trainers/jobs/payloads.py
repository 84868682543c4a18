"""One typed payload per job kind: what every enqueuer writes and every handler reads.

    job = enqueue(session, WeakPayload(run_id=7, member=member), idempotency_key="run7:weak:...")
    payload = job_payload(ctx)      # in the handler: InvalidPayload (the job fails at once) if it no longer parses

A payload is validated twice: when it is built (pydantic, before the row exists) and when a
worker claims the row (`job_payload`, first thing in every handler), so a row written by older
code whose payload no longer parses fails its job at once with a message naming the field,
never with a KeyError half-way (and is not retried: retrying cannot fix it).

Light on purpose (no torch): the API imports it to enqueue and to describe jobs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator
from sqlalchemy import select
from sqlalchemy.orm import Session

from debate import DebateSpec
from service.store.jobs import ACTIVE_STATUSES, enqueue_job
from service.store.models import Job
from trainers.errors import InvalidPayload
from trainers.hyperparameters import (
    LogconfSettings,
    LoraSettings,
    LossName,
    ProductSettings,
    RefineMethod,
    StrongSettings,
    user_train_settings,
)
from trainers.worker import JobContext

FINE_TUNE = "fine_tune"  # the condition of strong jobs made by the fine-tuning API
BASE_LR = 1e-3  # OpenAI's learning_rate_multiplier scales this


@dataclass(frozen=True, order=True)
class Member:
    """One weak model to train: the run seed it belongs to, its transcript source and its finetuning seed."""

    seed: int  # the training seed of the run (`RunConfig.seeds`) whose ensembles it is part of
    context: str  # "none" (no transcript) or a debate protocol: "debate" | "consultancy" | "market_making"
    debate_seed: int  # `debates.seed` of the transcripts it reads
    train_seed: int  # the seed its training gets (data order, init)

    @property
    def key(self) -> str:
        if self.context == "none":
            return f"s{self.seed}-none-t{self.train_seed}"
        return f"s{self.seed}-{self.context}-d{self.debate_seed}-t{self.train_seed}"


class _Payload(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    KIND: ClassVar[str]


class IngestPayload(_Payload):
    KIND = "ingest"

    run_id: int


class DebateShardPayload(_Payload):
    """A shard of a run's debates: (protocol, seed, offset, limit) over the run's examples in id order."""

    KIND = "debate"

    run_id: int
    protocol: str
    seed: int
    offset: int = Field(ge=0)
    limit: int = Field(ge=1)
    model: str
    weak_model_member: Member | None = Field(
        None,
        exclude_if=lambda member: member is None,
        description="market_making: the naive member whose out-of-sample predictions pick the side",
    )


class DebateItem(_Payload):
    example_id: int
    spec: dict[str, Any] = Field(description="`DebateSpec.to_dict()`")


class DebateItemsPayload(_Payload):
    """Explicit debates (the batch API): each example with its full spec."""

    KIND = "debate"

    run_id: int | None
    items: list[DebateItem]

    @classmethod
    def of(cls, run_id: int | None, items: list[tuple[int, DebateSpec]]) -> DebateItemsPayload:
        return cls(
            run_id=run_id, items=[DebateItem(example_id=example_id, spec=spec.to_dict()) for example_id, spec in items]
        )

    def specs(self) -> list[tuple[int, DebateSpec]]:
        return [(item.example_id, DebateSpec.from_dict(item.spec)) for item in self.items]


class WeakPayload(_Payload):
    KIND = "weak"

    run_id: int
    member: Member


class EnsemblePayload(_Payload):
    KIND = "ensemble"

    run_id: int
    condition: str
    seed: int
    members: list[Member] = Field(min_length=1)


class FileSource(_Payload):
    """An uploaded JSONL file of `{"prompt", "label"}` lines."""

    file_id: int

    def public_name(self) -> str:
        return f"file-{self.file_id}"


class LabelsModelSource(_Payload):
    """A weak model's soft labels on its run's strong_train examples, by model id (the fine-tuning API)."""

    labels_model_id: int

    def public_name(self) -> str:
        return f"labels-{self.labels_model_id}"


class LabelsModelNameSource(_Payload):
    """A weak condition model's labels, by name (a run's step: the model exists only once its job succeeded)."""

    labels_model_name: str

    def public_name(self) -> str:
        return f"labels:{self.labels_model_name}"


class GroundTruthSource(_Payload):
    """The run's strong_train examples with their ground-truth labels (the ceiling)."""

    ground_truth: Literal[True]

    def public_name(self) -> str:
        return "ground_truth"


class SplitSource(_Payload):
    """A split of the run's examples with their ground-truth labels."""

    split: str

    def public_name(self) -> str:
        return f"split:{self.split}"


class RunStrongPayload(_Payload):
    """A run's strong step; its settings come from the run's stored config."""

    KIND = "strong"

    run_id: int
    condition: str
    seed: int
    loss: LossName
    base_model: str
    train: LabelsModelNameSource | GroundTruthSource
    validation: SplitSource | None = None


def _is_empty(value: Any) -> bool:
    return not value


class FineTuneHyperparameters(_Payload):
    """A fine-tuning job's settings as the API resolved them (`"auto"`: the strong default).

    Fields left at their defaults are not stored (`exclude_if`), so a payload keeps the shape it
    had before they existed.
    """

    n_epochs: int | Literal["auto"] = "auto"
    batch_size: int | Literal["auto"] = "auto"
    learning_rate_multiplier: float | Literal["auto"] = "auto"
    loss: LossName = "xent"
    head: Literal["lm", "linear"] = "lm"
    lora: LoraSettings | None = LoraSettings()
    seed: int = 0
    eval_every: int = Field(0, ge=0)
    train: dict[str, Any] = Field(
        default_factory=dict, exclude_if=_is_empty, description="The other `TrainSettings` fields the job sets"
    )
    logconf: LogconfSettings = Field(LogconfSettings(), exclude_if=lambda value: value == LogconfSettings())
    product: ProductSettings = Field(ProductSettings(), exclude_if=lambda value: value == ProductSettings())

    def strong_settings(self, publish: bool) -> StrongSettings:
        """The one mapping of the fine-tuning API's hyperparameters onto the strong settings."""
        rate = 1.0 if self.learning_rate_multiplier == "auto" else self.learning_rate_multiplier
        train = {**self.train, "eval_every": self.eval_every, "lr": BASE_LR * rate}
        if self.n_epochs != "auto":
            train["epochs"] = float(self.n_epochs)
        if self.batch_size != "auto":
            train["batch_size"] = self.batch_size
        return StrongSettings(
            head=self.head,
            lora=self.lora,
            publish=publish,
            losses=(self.loss,),
            logconf=self.logconf,
            product=self.product,
            train=user_train_settings(train),
        )


class FineTunePayload(_Payload):
    """A job of the OpenAI-compatible fine-tuning API; its settings must make valid strong settings."""

    KIND = "strong"

    run_id: int | None
    condition: Literal["fine_tune"] = FINE_TUNE
    base_model: str
    parent_version_id: int | None = None
    train: FileSource | LabelsModelSource
    validation: FileSource | None = None
    hyperparameters: FineTuneHyperparameters
    publish: bool = True
    suffix: str | None = None

    @model_validator(mode="after")
    def _settings_are_valid(self) -> FineTunePayload:
        self.settings()
        return self

    def settings(self) -> StrongSettings:
        return self.hyperparameters.strong_settings(self.publish)


class RefineLabelsPayload(_Payload):
    """Refine one weak condition's strong_train labels of one seed with the served strong model
    (`trainers.refine_labels`); the settings are the run config's `refinement`."""

    KIND = "refine_labels"

    run_id: int
    seed: int
    condition: str  # the weak condition whose labels are refined
    method: RefineMethod


class ReportPayload(_Payload):
    KIND = "report"

    run_id: int


class GenIngestPayload(_Payload):
    """Generative runs (`trainers.generative.plan`): the handlers read the rest from the run's stored config."""

    KIND = "gen_ingest"

    run_id: int


class GenWeakPayload(_Payload):
    KIND = "gen_weak"

    run_id: int
    seed: int = 0  # the training seed (payloads stored before seeds existed are seed 0's)


class GenRefinePayload(_Payload):
    KIND = "gen_refine"

    run_id: int
    method: RefineMethod
    seed: int = 0


class GenStrongPayload(_Payload):
    KIND = "gen_strong"

    run_id: int
    condition: str  # w2s | w2s_refined:<method> | ceiling
    source: str  # the model whose generations are the targets, or "reference"
    seed: int = 0


class GenReportPayload(_Payload):
    KIND = "gen_report"

    run_id: int


TrainSource = FileSource | LabelsModelSource | LabelsModelNameSource | GroundTruthSource
DebatePayload = DebateShardPayload | DebateItemsPayload
StrongPayload = Annotated[FineTunePayload | RunStrongPayload, Field(union_mode="left_to_right")]
JobPayload = (
    IngestPayload
    | DebateShardPayload
    | DebateItemsPayload
    | WeakPayload
    | EnsemblePayload
    | RunStrongPayload
    | FineTunePayload
    | RefineLabelsPayload
    | ReportPayload
    | GenIngestPayload
    | GenWeakPayload
    | GenRefinePayload
    | GenStrongPayload
    | GenReportPayload
)

_PAYLOADS: dict[str, TypeAdapter] = {
    "ingest": TypeAdapter(IngestPayload),
    "debate": TypeAdapter(DebatePayload),
    "weak": TypeAdapter(WeakPayload),
    "ensemble": TypeAdapter(EnsemblePayload),
    "strong": TypeAdapter(StrongPayload),
    "refine_labels": TypeAdapter(RefineLabelsPayload),
    "report": TypeAdapter(ReportPayload),
    **{
        payload.KIND: TypeAdapter(payload)
        for payload in (GenIngestPayload, GenWeakPayload, GenRefinePayload, GenStrongPayload, GenReportPayload)
    },
}
JOB_KINDS = tuple(_PAYLOADS)


def parse_payload(kind: str, payload: dict[str, Any]) -> JobPayload:
    """The typed payload of a job row; InvalidPayload (the job fails at once) if it no longer parses."""
    if kind not in _PAYLOADS:
        raise InvalidPayload(f"unknown job kind {kind!r}; known: {', '.join(JOB_KINDS)}")
    try:
        return _PAYLOADS[kind].validate_python(payload)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in error['loc']) or '(payload)'}: {error['msg']}" for error in exc.errors()
        )
        raise InvalidPayload(
            f"the payload of this {kind!r} job does not parse ({problems}); "
            "it was written by other code: re-submit the work"
        ) from exc


def job_payload(ctx: JobContext) -> JobPayload:
    """The claimed job's typed payload; InvalidPayload (the job fails at once, naming the field) if it
    does not parse."""
    return parse_payload(ctx.job.kind, ctx.payload)


def enqueue(session: Session, payload: JobPayload, **options: Any) -> Job:
    """Enqueue a job of the payload's kind (options as `service.store.jobs.enqueue_job`)."""
    return enqueue_job(session, payload.KIND, payload.model_dump(mode="json"), **options)


def jobs_using_file(session: Session, file_id: int) -> list[int]:
    """Queued or running strong jobs that train or validate on uploaded file `file_id`."""
    rows = session.execute(select(Job.id, Job.payload).where(Job.kind == "strong", Job.status.in_(ACTIVE_STATUSES)))
    return [job_id for job_id, payload in rows if file_id in _file_ids(payload)]


def _file_ids(payload: dict[str, Any]) -> set[int]:
    try:
        parsed = parse_payload("strong", payload)
    except InvalidPayload:
        return set()
    return {source.file_id for source in (parsed.train, parsed.validation) if isinstance(source, FileSource)}
