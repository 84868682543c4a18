"""The run config: one YAML file (or the same JSON body over REST) describes a whole experiment.

    config = load_run_config(Path("configs/demo.yaml"))   # RunConfigError names the bad field

Validated once, by pydantic, with `extra="forbid"` everywhere so a typo is an error that names
the field path instead of a silently ignored key. The planner (`trainers.pipeline.plan`) turns
a config into the run's DAG of jobs; its hash identifies the run, so submitting the same config
again resumes (or returns) that run instead of repeating its work.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from debate import DebateSpec, InvalidProtocol, SamplingParams
from trainers.errors import RunConfigError
from trainers.hyperparameters import MAX_SEED, PATH_MAX, RefineSettings, Seeds, StrongSettings, WeakSettings
from trainers.pipeline.budgets import budget_problems
from trainers.tasks import SPLIT_NAMES, TaskDataError, get_task

WeakCondition = Literal[
    "no_debate", "single_debate", "debate_ensemble", "finetune_ensemble", "consultancy", "market_making"
]
WEAK_CONDITIONS: tuple[str, ...] = WeakCondition.__args__  # type: ignore[attr-defined]


def three_splits(splits: dict[str, int]) -> dict[str, int]:
    """`splits` if it sizes weak_train, strong_train and test, each with >= 2 examples (a pydantic validator)."""
    if set(splits) != set(SPLIT_NAMES) or min(splits.values()) < 2:
        raise ValueError(f"splits needs {', '.join(SPLIT_NAMES)}, each >= 2 examples; got {splits}")
    return splits


Splits = Annotated[dict[str, int], AfterValidator(three_splits)]  # a config's three split sizes


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DebateSettings(_Strict):
    order: Literal["sequential", "simultaneous"] = "sequential"
    turns: int = Field(3, ge=1)
    swap: bool = False
    word_limit: int | None = Field(150, ge=1)
    verify_quotes: bool = False
    temperature: float = Field(0.7, ge=0)
    top_p: float = Field(1.0, gt=0, le=1)
    max_tokens: int = Field(256, ge=1)
    shard_size: int = Field(200, ge=1, description="examples per debate job")
    resample_per_seed: bool = Field(
        False,
        description="False: every training seed reuses the same debate samples (debate seeds 0..k-1), so "
        "seeds measure training noise only and the debates are paid for once. True: the seed "
        "at index j of `seeds` reads debate seeds j*k .. j*k+k-1 (new debates are run), so "
        "the spread over seeds also covers debate sampling",
    )

    def sampling(self) -> SamplingParams:
        return SamplingParams(temperature=self.temperature, top_p=self.top_p, max_tokens=self.max_tokens)


class RunConfig(_Strict):
    name: str = Field("", max_length=200)
    task: str = Field(max_length=200)
    data_dir: str | None = Field(
        None, max_length=PATH_MAX, description="Local dir of the task's JSONL files; None = the HF hub"
    )
    limit: int | None = Field(None, ge=1, description="Read only the first N source rows")
    seed: int = Field(
        0, ge=0, le=MAX_SEED, description="Draws the examples and their splits (the same for every training seed)"
    )
    seeds: Seeds = Field(
        (0,),
        description="Training seeds: a list, or a count n meaning 0..n-1. Each seed trains its own weak "
        "members (data order, init), ensembles, W2S strong models and ceiling; the report "
        "averages over seeds and bootstraps over seeds and test examples",
    )
    splits: Splits = Field(default_factory=lambda: {"weak_train": 200, "strong_train": 200, "test": 200})
    weak: WeakSettings = WeakSettings()
    strong: StrongSettings = StrongSettings()
    debate: DebateSettings = DebateSettings()
    ensemble_size: int = Field(4, ge=1, le=16, description="k: members of each ensemble (Lang et al.: 4 was best)")
    conditions: tuple[WeakCondition, ...] = ("no_debate", "single_debate", "debate_ensemble")
    refinement: RefineSettings | None = Field(
        None,
        description="Also train the strong model on each condition's weak labels after the served strong model "
        "refined them (Somerstep et al.): conditions `<c>:refined_<method>`; None: no refinement",
    )

    @field_validator("task")
    @classmethod
    def _known_task(cls, task: str) -> str:
        try:
            get_task(task)
        except TaskDataError as exc:
            raise ValueError(str(exc)) from exc
        return task

    @field_validator("conditions")
    @classmethod
    def _distinct(cls, conditions: tuple[str, ...]) -> tuple[str, ...]:
        if not conditions or len(set(conditions)) != len(conditions):
            raise ValueError("conditions must be a non-empty list without repeats")
        return conditions

    @model_validator(mode="after")
    def _debate_is_runnable(self) -> RunConfig:
        """Build one spec now so protocol errors surface at submission, not in a worker."""
        try:
            debate_template(self, "debate", seed=0).with_example("q", "a", None)
        except InvalidProtocol as exc:
            raise ValueError(f"debate: {exc}") from exc
        return self

    @model_validator(mode="after")
    def _budgets_can_be_met(self) -> RunConfig:
        """Length budgets no example can fit fail here, not at ingest (see trainers.pipeline.budgets)."""
        problems = budget_problems(self.weak.train.max_length, self.strong.train.max_length, self.strong.head)
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def hash_fields(self) -> dict[str, Any]:
        """Everything that changes results (the name and how often training is evaluated do not)."""
        observed = {"train": {"eval_every"}}
        fields = self.model_dump(mode="json", exclude={"name": True, "weak": observed, "strong": observed})
        if self.refinement is None:  # configs from before `refinement` existed keep their hash (and their runs)
            del fields["refinement"]
        return fields

    @property
    def refinement_methods(self) -> tuple[str, ...]:
        return self.refinement.methods if self.refinement else ()


class DebateTemplate(_Strict):
    """A debate spec without its example: one per (protocol, seed) of a run."""

    fields: dict[str, Any]

    def with_example(
        self, question: str, candidate: str, context: str | None, weak_prediction: float | None = None
    ) -> DebateSpec:
        extra = {"weak_prediction": weak_prediction} if self.fields["protocol"] == "market_making" else {}
        return DebateSpec.from_dict(
            {**self.fields, "question": question, "candidate_answer": candidate, "context": context, **extra}
        )


def debate_template(config: RunConfig, protocol: str, *, seed: int, model: str = "strong") -> DebateTemplate:
    """The spec fields shared by all of a run's debates of `protocol` with `seed`."""
    settings = config.debate
    is_debate = protocol == "debate"
    fields = {
        "task": get_task(config.task).framing,
        "protocol": protocol,
        "order": settings.order if is_debate else "sequential",
        "turns": settings.turns,
        "swap": settings.swap if is_debate else False,
        "seed": seed,
        "word_limit": settings.word_limit,
        "verify_quotes": settings.verify_quotes,
        "model": model,
        "sampling": settings.sampling().__dict__,
    }
    if protocol == "market_making":
        fields["weak_prediction"] = 0.5  # placeholder so the template validates; replaced per example
    return DebateTemplate(fields=fields)


def parse_run_config(data: Any) -> RunConfig:
    """Validate a decoded YAML/JSON document; RunConfigError lists `field.path: reason` lines."""
    try:
        return RunConfig.model_validate(data)
    except ValidationError as exc:
        raise RunConfigError(format_validation_error(exc)) from exc


def format_validation_error(exc: ValidationError) -> str:
    lines = []
    for error in exc.errors():
        path = ".".join(str(part) for part in error["loc"]) or "(config)"
        lines.append(f"{path}: {error['msg']}")
    return "invalid run config:\n  " + "\n  ".join(lines)


def load_run_config(path: Path, *, data_dir: str | None = None) -> RunConfig:
    """Read and validate a YAML (or JSON) run config file (see `read_run_document`)."""
    return parse_run_config(read_run_document(path, data_dir=data_dir))


def read_run_document(path: Path, *, data_dir: str | None = None) -> dict[str, Any]:
    """The mapping a YAML (or JSON) run config file holds, not yet validated.

    A relative `data_dir` in the file is relative to the file's directory (so a config works from
    any working directory); `data_dir`, given, replaces the file's (e.g. `--data-dir`, relative to
    the working directory).
    """
    try:
        data = yaml.safe_load(Path(path).read_text())
    except OSError as exc:
        raise RunConfigError(f"cannot read run config {path}: {exc}") from exc
    except yaml.YAMLError as exc:
        raise RunConfigError(f"{path} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise RunConfigError(f"{path} must hold a mapping of config fields, got {type(data).__name__}")
    if data_dir is not None:
        data["data_dir"] = str(Path(data_dir).resolve())
    elif isinstance(data.get("data_dir"), str):
        data["data_dir"] = str((Path(path).parent / data["data_dir"]).resolve())
    return data
