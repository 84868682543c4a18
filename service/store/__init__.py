"""Persistence: ORM models, engines/sessions and the job queue. Importable without FastAPI."""

from service.store.db import make_engine, make_session_factory, utcnow
from service.store.models import (
    Base,
    Debate,
    Example,
    File,
    Generation,
    Intent,
    Job,
    JobDependency,
    JobEvent,
    Label,
    Metric,
    Model,
    ModelVersion,
    ReplicaAdapter,
    Run,
    Turn,
)

__all__ = [
    "Base",
    "Debate",
    "Example",
    "File",
    "Generation",
    "Intent",
    "Job",
    "JobDependency",
    "JobEvent",
    "Label",
    "Metric",
    "Model",
    "ModelVersion",
    "ReplicaAdapter",
    "Run",
    "Turn",
    "make_engine",
    "make_session_factory",
    "utcnow",
]
