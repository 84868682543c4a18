"""ORM models: every table of DESIGN.md, as plain columns a person can read in sqlite3/psql.

JSON columns hold only configs, sampling/protocol params and job payload/progress/result.
Unique keys make retries safe: a retried step writes the same keys and so never duplicates.
"""

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from service.store.db import utcnow

# Deterministic constraint names: Alembic can then drop/alter them on SQLite and PostgreSQL alike.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

JOB_STATUSES = ("queued", "running", "succeeded", "failed", "cancelled")
RUN_STATUSES = ("queued", "running", "succeeded", "failed", "cancelled")
RUN_KINDS = ("experiment", "debate_batch")
DEBATE_STATUSES = ("pending", "running", "succeeded", "failed")
SPLITS = ("weak_train", "strong_train", "test")


def _one_of(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


class Run(Base):
    """An experiment (debate → weak → strong) or a debate batch: a group of jobs and their rows."""

    __tablename__ = "runs"
    __table_args__ = (
        CheckConstraint(_one_of("status", RUN_STATUSES), name="status"),
        CheckConstraint(_one_of("kind", RUN_KINDS), name="kind"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(32), default="experiment")
    name: Mapped[str] = mapped_column(String(200), default="")
    config: Mapped[dict[str, Any]]
    config_hash: Mapped[str] = mapped_column(String(64), index=True)
    status: Mapped[str] = mapped_column(String(16), default="queued")
    code_version: Mapped[str] = mapped_column(String(64), default="")
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)


class Example(Base):
    """One binary example: (question, context) + a candidate answer; `label` 1 = candidate correct."""

    __tablename__ = "examples"
    # Scoped by run: splits are drawn per run seed, so the same source row may sit in
    # different splits of two runs. `candidate_id` names the candidate ("correct",
    # "distractor2", "chosen", ...) so the key stays short however long the text is.
    __table_args__ = (
        UniqueConstraint("run_id", "task", "source_id", "candidate_id"),
        CheckConstraint(f"split IS NULL OR {_one_of('split', SPLITS)}", name="split"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    task: Mapped[str] = mapped_column(String(64))
    split: Mapped[str | None] = mapped_column(String(16))
    source_id: Mapped[str] = mapped_column(String(128))
    candidate_id: Mapped[str] = mapped_column(String(64))
    question: Mapped[str] = mapped_column(Text)
    context: Mapped[str | None] = mapped_column(Text)
    candidate: Mapped[str] = mapped_column(Text)
    label: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class Debate(Base):
    __tablename__ = "debates"
    __table_args__ = (CheckConstraint(_one_of("status", DEBATE_STATUSES), name="status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    example_id: Mapped[int] = mapped_column(ForeignKey("examples.id", ondelete="CASCADE"), index=True)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    # Hash of (example, protocol params, seed, model): a retried debate job finds its row.
    dedupe_key: Mapped[str | None] = mapped_column(String(64), unique=True)
    protocol: Mapped[str] = mapped_column(String(32))
    order: Mapped[str] = mapped_column(String(16))
    num_turns: Mapped[int] = mapped_column(Integer)
    seed: Mapped[int] = mapped_column(Integer)
    swap: Mapped[bool] = mapped_column(Boolean, default=False)
    model: Mapped[str] = mapped_column(String(128))
    model_version_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id"))
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    sampling: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    prompt_tokens: Mapped[int] = mapped_column(Integer, default=0)
    completion_tokens: Mapped[int] = mapped_column(Integer, default=0)
    latency_s: Mapped[float | None] = mapped_column(Float)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)

    turns: Mapped[list["Turn"]] = relationship(
        back_populates="debate", order_by="Turn.index", cascade="all, delete-orphan"
    )


class Turn(Base):
    __tablename__ = "turns"
    __table_args__ = (UniqueConstraint("debate_id", "index"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    debate_id: Mapped[int] = mapped_column(ForeignKey("debates.id", ondelete="CASCADE"))
    index: Mapped[int] = mapped_column(Integer)
    speaker: Mapped[str] = mapped_column(String(16))
    stance: Mapped[str] = mapped_column(String(16))
    content: Mapped[str] = mapped_column(Text)
    prompt_tokens: Mapped[int] = mapped_column(Integer, default=0)
    completion_tokens: Mapped[int] = mapped_column(Integer, default=0)
    finish_reason: Mapped[str | None] = mapped_column(String(32))
    latency_s: Mapped[float | None] = mapped_column(Float)
    quotes_verified: Mapped[int] = mapped_column(Integer, default=0)
    quotes_unverified: Mapped[int] = mapped_column(Integer, default=0)

    debate: Mapped[Debate] = relationship(back_populates="turns")


class Job(Base):
    __tablename__ = "jobs"
    __table_args__ = (
        CheckConstraint(_one_of("status", JOB_STATUSES), name="status"),
        Index("ix_jobs_claim", "status", "kind", "priority"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16), default="queued")
    priority: Mapped[int] = mapped_column(Integer, default=0)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=3)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    idempotency_key: Mapped[str | None] = mapped_column(String(255), unique=True)
    lease_owner: Mapped[str | None] = mapped_column(String(128))
    lease_expires_at: Mapped[datetime | None] = mapped_column(DateTime)
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime)
    not_before: Mapped[datetime | None] = mapped_column(DateTime)
    progress: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)


class JobDependency(Base):
    """`depends_on` as rows (not a JSON list) so claimability is one SQL NOT EXISTS."""

    __tablename__ = "job_dependencies"

    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    depends_on_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True, index=True)


class Model(Base):
    __tablename__ = "models"
    __table_args__ = (CheckConstraint("role IN ('weak', 'strong')", name="role"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    base: Mapped[str] = mapped_column(String(1024))
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    condition: Mapped[str | None] = mapped_column(String(64))
    member: Mapped[int | None] = mapped_column(Integer)
    seed: Mapped[int | None] = mapped_column(Integer)
    checkpoint_path: Mapped[str | None] = mapped_column(String(1024))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class ModelVersion(Base):
    __tablename__ = "model_versions"
    __table_args__ = (UniqueConstraint("model_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    # Never re-used: vLLM may serve stale prefix-cache entries under a re-used name.
    served_name: Mapped[str] = mapped_column(String(200), unique=True)
    adapter_path: Mapped[str | None] = mapped_column(String(1024))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id"))
    published_at: Mapped[datetime | None] = mapped_column(DateTime)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class ReplicaAdapter(Base):
    """A model version's adapter loaded on one vLLM replica (written by publish and by replica sync)."""

    __tablename__ = "replica_adapters"
    __table_args__ = (UniqueConstraint("replica_url", "version_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    replica_url: Mapped[str] = mapped_column(String(1024))
    version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id", ondelete="CASCADE"), index=True)
    loaded_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class Label(Base):
    __tablename__ = "labels"
    __table_args__ = (UniqueConstraint("model_id", "example_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"))
    example_id: Mapped[int] = mapped_column(ForeignKey("examples.id", ondelete="CASCADE"), index=True)
    soft_label: Mapped[float] = mapped_column(Float)
    hard_label: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class Metric(Base):
    __tablename__ = "metrics"
    __table_args__ = (UniqueConstraint("run_id", "model_id", "condition", "split", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    model_id: Mapped[int | None] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"))
    condition: Mapped[str] = mapped_column(String(64), default="")
    split: Mapped[str] = mapped_column(String(16), default="test")
    name: Mapped[str] = mapped_column(String(64))
    # NULL = undefined (e.g. PGR when the ceiling does not beat the weak model).
    value: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


FILE_PURPOSES = ("fine-tune",)
EVENT_LEVELS = ("info", "warning", "error")


class File(Base):
    """An uploaded JSONL training file; the bytes live at `path`, written before this row commits."""

    __tablename__ = "files"
    # AUTOINCREMENT: SQLite would otherwise hand a deleted file's id ("file-7") to the next upload.
    __table_args__ = (
        CheckConstraint(_one_of("purpose", FILE_PURPOSES), name="purpose"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    filename: Mapped[str] = mapped_column(String(255))
    purpose: Mapped[str] = mapped_column(String(32), default="fine-tune")
    bytes: Mapped[int] = mapped_column(BigInteger)
    lines: Mapped[int] = mapped_column(Integer)
    path: Mapped[str] = mapped_column(String(1024))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class JobEvent(Base):
    """A line of a job's log (started, step 10/100: loss=…, failed): what `…/events` pages through."""

    __tablename__ = "job_events"
    __table_args__ = (
        CheckConstraint(_one_of("level", EVENT_LEVELS), name="level"),
        # Newest first per job: the index serves `WHERE job_id = ? ORDER BY id DESC LIMIT n`.
        Index("ix_job_events_job_id_id", "job_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    level: Mapped[str] = mapped_column(String(16), default="info")
    message: Mapped[str] = mapped_column(Text)
    data: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class Generation(Base):
    """A text one model wrote for one example: a weak target, a refined target, or a test output.

    One row per (model, example), so a retried generation job overwrites instead of adding rows.
    `score` is what the run's scorer gave the text (NULL until scored); `intent_id` names the inferred
    intent the text was refined under (intent-and-refine only).
    """

    __tablename__ = "generations"
    __table_args__ = (UniqueConstraint("model_id", "example_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"))
    example_id: Mapped[int] = mapped_column(ForeignKey("examples.id", ondelete="CASCADE"), index=True)
    text: Mapped[str] = mapped_column(Text)
    score: Mapped[float | None] = mapped_column(Float)
    intent_id: Mapped[int | None] = mapped_column(ForeignKey("intents.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class Intent(Base):
    """What the strong model inferred the weak supervisor intends, from one batch of its (prompt, output) pairs."""

    __tablename__ = "intents"
    __table_args__ = (UniqueConstraint("model_id", "batch"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"))
    batch: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
