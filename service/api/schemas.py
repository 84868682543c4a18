"""Request and response bodies (pydantic): validated at the edge, 422 with the field path."""

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from debate import DebateSpec, SamplingParams

# Inputs are also bounded in tokens by the strong model's context window (mapped to 422
# context_too_long); this bound stops absurd bodies before they reach the server at all.
MAX_TEXT_CHARS = 100_000
Text = Annotated[str, Field(min_length=1, max_length=MAX_TEXT_CHARS)]
MAX_SEED = 2**31 - 1  # debates.seed is a 32-bit column


def _as_utc(moment: datetime) -> datetime:
    """Columns hold naive UTC; the API says so with an offset, as RFC 3339 `date-time` requires."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


UtcDatetime = Annotated[datetime, AfterValidator(_as_utc)]


class Sampling(BaseModel):
    model_config = ConfigDict(extra="forbid")

    temperature: float = Field(0.7, ge=0, le=2)
    top_p: float = Field(1.0, gt=0, le=1)
    max_tokens: int = Field(256, ge=1, le=8192, description="Token limit of one turn.")


class ProtocolParams(BaseModel):
    """How to debate: shared by single debates and batches."""

    model_config = ConfigDict(extra="forbid")

    task: str = Field(
        "generic",
        max_length=200,
        description="Task framing, e.g. science_question, passage_question, dialogue_comparison, "
        "review, safety, legal_clause, generic (or a task name such as sciq).",
    )
    protocol: Literal["debate", "consultancy", "market_making"] = "debate"
    order: Literal["sequential", "simultaneous"] = "sequential"
    turns: int = Field(3, ge=1, le=20)
    swap: bool = False
    consultant_side: Literal["correct", "incorrect"] | None = None
    seed: int = Field(0, ge=0, le=MAX_SEED - 32)  # samples use seed..seed+n_samples-1
    n_samples: int = Field(1, ge=1, le=32, description="Debates per example, with seeds seed..seed+n-1.")
    word_limit: int | None = Field(150, ge=1, le=5000)
    verify_quotes: bool = False
    model: str | None = Field(
        None, max_length=200, description="Served model name; default: the configured strong model."
    )
    sampling: Sampling = Field(default_factory=Sampling)


class ExampleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    question: Text
    candidate_answer: Text
    context: Annotated[str, Field(max_length=MAX_TEXT_CHARS)] | None = None
    label: Literal[0, 1] | None = Field(None, description="Ground truth: 1 if the candidate answer is correct.")
    source_id: Annotated[str, Field(min_length=1, max_length=128)] | None = None
    weak_prediction: float | None = Field(None, ge=0, le=1, description="For market_making: P(candidate correct).")


class DebateCreate(ProtocolParams, ExampleIn):
    pass


class DebateBatchCreate(ProtocolParams):
    name: str = Field("", max_length=200)
    examples: list[ExampleIn] = Field(min_length=1, max_length=100_000)
    shard_size: int = Field(64, ge=1, le=5000, description="Debates per job.")


def spec_for(params: ProtocolParams, example: ExampleIn, default_model: str) -> DebateSpec:
    """The debate spec of one example; cross-field rules raise InvalidProtocol (→ 422)."""
    return DebateSpec(
        question=example.question,
        candidate_answer=example.candidate_answer,
        context=example.context,
        weak_prediction=example.weak_prediction,
        task=params.task,
        protocol=params.protocol,
        order=params.order,
        turns=params.turns,
        swap=params.swap,
        consultant_side=params.consultant_side,
        seed=params.seed,
        word_limit=params.word_limit,
        verify_quotes=params.verify_quotes,
        model=params.model or default_model,
        sampling=SamplingParams(**params.sampling.model_dump()),
    )


class TurnPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    index: int
    speaker: str
    stance: str
    content: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str | None
    latency_s: float | None
    quotes_verified: int
    quotes_unverified: int


class ExamplePublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    task: str
    question: str
    context: str | None
    candidate: str
    label: int | None


class DebatePublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    example_id: int
    run_id: int | None
    protocol: str
    order: str
    num_turns: int
    seed: int
    swap: bool
    model: str
    model_version_id: int | None = Field(
        None, description="The finetuned version that argued it (its served name is `model`)."
    )
    params: dict[str, Any]
    sampling: dict[str, Any]
    status: str
    error: str | None
    prompt_tokens: int
    completion_tokens: int
    latency_s: float | None
    created_at: UtcDatetime
    finished_at: UtcDatetime | None
    turns: list[TurnPublic] | None = None


class DebateWithExample(DebatePublic):
    example: ExamplePublic


class DebateList(BaseModel):
    data: list[DebatePublic]
    next_cursor: str | None = Field(None, description="Pass as ?cursor= for the next page; null on the last.")


class BatchProgress(BaseModel):
    done: int
    failed: int
    total: int
    eta_s: float | None


class DebateBatchPublic(BaseModel):
    id: int
    name: str
    status: str
    created_at: UtcDatetime
    progress: BatchProgress
    jobs: dict[str, int] = Field(description="Job count per status.")
    errors: list[str] = Field(default_factory=list, description="Last error of each failed job.")
