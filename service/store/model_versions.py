"""Model versions as rows: register a saved LoRA adapter under a served name, find what to publish.

    with sessions.begin() as session:
        version = register_version(session, model, adapter_dir)     # "<model name>-v<n>", never re-used

Served names are never re-used (vLLM could answer from prefix-cache blocks computed under an
old adapter of the same name). Talking to vLLM is `debate.admin`'s; publishing (this side, then
that one) is `trainers.strong.publish`'s.
"""

from __future__ import annotations

import re
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from service.store.db import utcnow
from service.store.errors import InvalidServedName, NoAdapter, ServedNameTaken, VersionError, VersionNotFound
from service.store.models import Model, ModelVersion

SERVED_NAME_MAX = 200  # model_versions.served_name is String(200)
# vLLM takes any string, but names also travel in URLs, logs and shell commands.
SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
UNSAFE_RUN = re.compile(r"[^A-Za-z0-9._-]+")


def register_version(
    session: Session,
    model: Model,
    adapter_path: Path,
    *,
    served_name: str | None = None,
    parent_id: int | None = None,
) -> ModelVersion:
    """Add the next version of `model` (1, 2, ...) for the adapter saved in `adapter_path`.

    The served name defaults to "<model name>-v<version>" with characters vLLM-unsafe
    replaced by "-"; a taken one raises `ServedNameTaken`. The row is flushed, not committed;
    the caller owns the transaction.
    """
    adapter_dir = _adapter_dir(adapter_path)
    session.flush()  # gives a model added in this same session its id
    if model.id is None:
        raise VersionError(f"model {model.name!r} is not in the database; session.add(model) it first.")
    version = _next_version(session, model.id)
    name = _checked_name(served_name) if served_name is not None else default_served_name(model.name, version)
    _require_free(session, name)
    if parent_id is not None and session.get(ModelVersion, parent_id) is None:
        raise VersionNotFound(f"parent model version {parent_id} does not exist; pass the id of a registered version.")
    row = ModelVersion(
        model_id=model.id, version=version, served_name=name, adapter_path=str(adapter_dir), parent_id=parent_id
    )
    try:
        with session.begin_nested():  # a clash rolls back only this insert, not the caller's work
            session.add(row)
    except IntegrityError as exc:
        raise ServedNameTaken(
            f"version {version} of {model.name!r} or served name {name!r} was registered by someone else "
            "at the same moment; call register_version again."
        ) from exc
    return row


def default_served_name(model_name: str, version: int) -> str:
    """'<model_name>-v<version>' with runs of unsafe characters turned into '-' and cut to fit."""
    suffix = f"-v{version}"
    stem = UNSAFE_RUN.sub("-", model_name).strip("-._")[: SERVED_NAME_MAX - len(suffix)]
    return _checked_name(f"{stem or 'model'}{suffix}")


def servable_version(session: Session, version_id: int) -> tuple[str, str]:
    """(served name, adapter path) of version `version_id`, which must have an adapter."""
    version = get_version(session, version_id)
    if version.adapter_path is None:
        raise NoAdapter(
            f"model version {version.id} ({version.served_name!r}) has no adapter_path; only LoRA "
            "adapters are published to the running vLLM, a full checkpoint needs its own server."
        )
    return version.served_name, version.adapter_path


def mark_published(session: Session, version_id: int) -> ModelVersion:
    """Record the first publish of version `version_id` (a re-publish keeps the first time)."""
    version = get_version(session, version_id)
    if version.published_at is None:
        version.published_at = utcnow()
    return version


def published_adapters(session: Session) -> list[tuple[str, str]]:
    """(served name, adapter path) of every published version with an adapter, oldest first."""
    rows = session.execute(
        select(ModelVersion.served_name, ModelVersion.adapter_path)
        .where(ModelVersion.published_at.is_not(None), ModelVersion.adapter_path.is_not(None))
        .order_by(ModelVersion.id)
    ).all()
    return [(name, path) for name, path in rows]


def get_version(session: Session, version_id: int) -> ModelVersion:
    version = session.get(ModelVersion, version_id)
    if version is None:
        raise VersionNotFound(f"no model version with id {version_id}; register it with register_version first.")
    return version


def _adapter_dir(adapter_path: Path) -> Path:
    """The absolute adapter directory, refused unless peft saved an adapter there."""
    adapter_dir = Path(adapter_path).resolve()
    if not (adapter_dir / "adapter_config.json").is_file():
        raise NoAdapter(
            f"{adapter_dir} holds no adapter_config.json; save the LoRA adapter there with "
            "peft's model.save_pretrained(dir) before registering it."
        )
    return adapter_dir


def _next_version(session: Session, model_id: int) -> int:
    latest = session.scalar(select(func.max(ModelVersion.version)).where(ModelVersion.model_id == model_id))
    return (latest or 0) + 1


def _checked_name(name: str) -> str:
    """`name` itself, if vLLM, URLs and the served_name column all take it."""
    if not SAFE_NAME.fullmatch(name) or len(name) > SERVED_NAME_MAX:
        raise InvalidServedName(
            f"served name {name!r} must start with a letter or digit, use only letters, digits, '.', '_' "
            f"and '-', and have at most {SERVED_NAME_MAX} characters; pick another or leave it to the default."
        )
    return name


def _require_free(session: Session, name: str) -> None:
    holder = session.scalar(select(ModelVersion.id).where(ModelVersion.served_name == name))
    if holder is not None:
        raise ServedNameTaken(
            f"served name {name!r} already belongs to model version {holder}; served names are never "
            "re-used (vLLM could answer from cache entries of the old adapter): pass another served_name."
        )
