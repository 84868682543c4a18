"""Register the strong model's LoRA adapters as model versions and publish them to vLLM.

    with sessions.begin() as session:
        version = register_version(session, model, adapter_dir)
    publish_version(sessions, version.id, "http://127.0.0.1:8000")   # now served as version.served_name
    ...
    republish_all(sessions, "http://127.0.0.1:8000")                  # after vLLM restarted

The vLLM server must run with `--enable-lora` (and `--max-lora-rank` at least the adapter's
rank) and the environment variable `VLLM_ALLOW_RUNTIME_LORA_UPDATING=True`, which adds the
`/v1/load_lora_adapter` endpoint. vLLM reads the adapter from `adapter_path` itself, so the
path must be readable on the server's machine (the same disk, or a shared one).

Errors (all `PublishError`, each saying what to do):

    PublishError
    ├── InvalidServedName (also a ValueError)  a served name vLLM and URLs cannot carry
    ├── ServedNameTaken                        another version already has that served name
    ├── VersionNotFound                        no model version with that id
    ├── VLLMUnreachable                        connection refused, timeout (worth a retry)
    ├── LoRAUpdatingDisabled                   the server cannot load adapters at runtime
    ├── AdapterRejected                        the server refused this adapter
    └── RepublishIncomplete                    republish_all loaded some adapters, not all

httpx errors become `VLLMUnreachable` in one place, `_send`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from debate.client import api_base, error_message
from service.store import Model, ModelVersion, utcnow

DEFAULT_TIMEOUT_S = 120.0
SERVED_NAME_MAX = 200  # model_versions.served_name is String(200)
# vLLM takes any string, but names also travel in URLs, logs and shell commands.
SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
UNSAFE_RUN = re.compile(r"[^A-Za-z0-9._-]+")
LORA_DISABLED = re.compile(r"lora is not enabled|--enable-lora", re.IGNORECASE)
PROBE_PROMPT = "Hello"
START_HINT = (
    "start vLLM with --enable-lora --max-lora-rank <rank> and the environment variable "
    "VLLM_ALLOW_RUNTIME_LORA_UPDATING=True"
)


class PublishError(Exception):
    """Base class of every error raised on purpose while registering or publishing adapters."""


class InvalidServedName(PublishError, ValueError):
    """A served name with characters outside [A-Za-z0-9._-], or too long for the column."""


class ServedNameTaken(PublishError):
    """Another model version already uses the served name; names are never re-used."""


class VersionNotFound(PublishError):
    """No `model_versions` row has the id asked for."""


class VLLMUnreachable(PublishError):
    """The vLLM server did not answer (refused, reset, timed out); retrying later may work."""


class LoRAUpdatingDisabled(PublishError):
    """The server has no runtime LoRA loading: flags or environment variable missing."""


class AdapterRejected(PublishError):
    """The server answered but would not load (or serve) this adapter under this name."""


class RepublishIncomplete(PublishError):
    """`republish_all` loaded `loaded` but not the adapters named in `failures`."""

    def __init__(self, message: str, *, loaded: list[str], failures: dict[str, str]) -> None:
        super().__init__(message)
        self.loaded = loaded
        self.failures = failures


# --- the database side -------------------------------------------------------------


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
    replaced by "-". Served names are never re-used (vLLM could answer from prefix-cache
    blocks computed under an old adapter of the same name): a taken one raises
    `ServedNameTaken`. The row is flushed, not committed; the caller owns the transaction.
    """
    adapter_dir = _adapter_dir(adapter_path)
    session.flush()  # gives a model added in this same session its id
    if model.id is None:
        raise PublishError(f"model {model.name!r} is not in the database; session.add(model) it first.")
    version = _next_version(session, model.id)
    name = _checked_name(served_name) if served_name is not None else default_served_name(model.name, version)
    _require_free(session, name)
    if parent_id is not None and session.get(ModelVersion, parent_id) is None:
        raise VersionNotFound(f"parent model version {parent_id} does not exist; pass the id of a registered version.")
    row = ModelVersion(model_id=model.id, version=version, served_name=name,
                       adapter_path=str(adapter_dir), parent_id=parent_id)
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


def publish_version(
    session_factory: sessionmaker[Session], version_id: int, base_url: str, *, api_key: str | None = None
) -> ModelVersion:
    """Load version `version_id`'s adapter into vLLM, then record `published_at` (first publish only).

    The HTTP calls happen between two short transactions, never inside one: a slow vLLM
    must not hold database locks. `session_factory` should keep attributes after commit
    (`service.store.make_session_factory` does), since the returned row is detached.
    """
    with session_factory.begin() as session:
        version = _get_version(session, version_id)
        served_name, adapter_path = version.served_name, _require_adapter(version)
    publish_adapter(base_url, served_name, Path(adapter_path), api_key=api_key)
    with session_factory.begin() as session:
        version = _get_version(session, version_id)
        if version.published_at is None:
            version.published_at = utcnow()
    return version


def republish_all(session_factory: sessionmaker[Session], base_url: str, *, api_key: str | None = None) -> list[str]:
    """Reload every published version's adapter that vLLM does not list (it forgets them on restart).

    Returns the served names loaded now, oldest version first. An adapter the server
    refuses (`AdapterRejected`, e.g. its directory was deleted) does not stop the others;
    `RepublishIncomplete` then names each one. Any other error (server down, no runtime
    LoRA loading, wrong API key) is about the server and stops at once.
    """
    with session_factory.begin() as session:
        rows = session.execute(
            select(ModelVersion.served_name, ModelVersion.adapter_path)
            .where(ModelVersion.published_at.is_not(None), ModelVersion.adapter_path.is_not(None))
            .order_by(ModelVersion.id)
        ).all()
    with _client(base_url, api_key, DEFAULT_TIMEOUT_S) as client:
        listed = _listed_roots(client)
        loaded, failures = _load_missing(client, [(n, p) for n, p in rows if n not in listed])
    if failures:
        details = "; ".join(f"{name}: {message}" for name, message in failures.items())
        raise RepublishIncomplete(
            f"reloaded {len(loaded)} adapter(s) {loaded} but {len(failures)} failed: {details}",
            loaded=loaded, failures=failures,
        )
    return loaded


def _load_missing(client: httpx.Client, missing: Sequence[tuple[str, str]]) -> tuple[list[str], dict[str, str]]:
    """Load each (served name, path); collect per-adapter failures, stop on server-wide ones."""
    loaded: list[str] = []
    failures: dict[str, str] = {}
    for name, path in missing:
        try:
            _publish(client, name, path)
        except AdapterRejected as exc:  # about this adapter; other errors are about the server and stop all
            failures[name] = str(exc)
            continue
        loaded.append(name)
    return loaded, failures


def _adapter_dir(adapter_path: Path) -> Path:
    """The absolute adapter directory, refused unless peft saved an adapter there."""
    adapter_dir = Path(adapter_path).resolve()
    if not (adapter_dir / "adapter_config.json").is_file():
        raise AdapterRejected(
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


def _get_version(session: Session, version_id: int) -> ModelVersion:
    version = session.get(ModelVersion, version_id)
    if version is None:
        raise VersionNotFound(f"no model version with id {version_id}; register it with register_version first.")
    return version


def _require_adapter(version: ModelVersion) -> str:
    if version.adapter_path is None:
        raise AdapterRejected(
            f"model version {version.id} ({version.served_name!r}) has no adapter_path; only LoRA "
            "adapters are published to the running vLLM, a full checkpoint needs its own server."
        )
    return version.adapter_path


# --- the vLLM side -------------------------------------------------------------------


def publish_adapter(
    base_url: str,
    served_name: str,
    adapter_path: Path,
    *,
    api_key: str | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> None:
    """Load the adapter in `adapter_path` into vLLM as `served_name` and check it answers.

    Loading a name that is already loaded from the same path succeeds (a retried publish
    is harmless); from another path it raises `AdapterRejected`. Afterwards the name must
    be listed by GET /v1/models and answer a 1-token completion.
    """
    with _client(base_url, api_key, timeout_s) as client:
        _publish(client, served_name, str(Path(adapter_path).absolute()))


def _publish(client: httpx.Client, served_name: str, adapter_path: str) -> None:
    _load(client, served_name, adapter_path)
    _verify(client, served_name)


def _load(client: httpx.Client, served_name: str, adapter_path: str) -> None:
    """POST /v1/load_lora_adapter; an adapter already loaded under this name from this path counts as done."""
    response = _send(client, "POST", "/load_lora_adapter", {"lora_name": served_name, "lora_path": adapter_path})
    if response.status_code == 200:
        return
    message = error_message(response)
    if (response.status_code in (404, 405) and message == "Not Found") or LORA_DISABLED.search(message):
        raise LoRAUpdatingDisabled(f"vLLM at {client.base_url} cannot load LoRA adapters at runtime ({message}); "
                                   f"{START_HINT}.")
    if response.status_code == 400:
        loaded_from = _listed_roots(client).get(served_name, "")
        if loaded_from == adapter_path:
            return
        if loaded_from:
            raise AdapterRejected(
                f"vLLM already serves {served_name!r} from {loaded_from}, not {adapter_path}; served names "
                "are never re-used: register a new version (register_version) for the new adapter."
            )
    raise AdapterRejected(
        f"vLLM refused to load adapter {served_name!r} from {adapter_path} (HTTP {response.status_code}: "
        f"{message}); check that the path is a directory saved by peft that the vLLM server can read, that "
        "the adapter was trained on the served base model, and that its rank is <= vLLM's --max-lora-rank."
    )


def _verify(client: httpx.Client, served_name: str) -> None:
    """The adapter must be listed and must answer a 1-token greedy completion."""
    if served_name not in _listed_roots(client):
        raise AdapterRejected(f"vLLM accepted adapter {served_name!r} but GET /v1/models does not list it; "
                              "read the vLLM log.")
    probe = {"model": served_name, "prompt": PROBE_PROMPT, "max_tokens": 1, "temperature": 0}
    response = _send(client, "POST", "/completions", probe)
    if response.status_code != 200 or not _is_completion(response):
        raise AdapterRejected(
            f"vLLM lists adapter {served_name!r} but a 1-token completion under it failed (HTTP "
            f"{response.status_code}: {error_message(response)}); read the vLLM log."
        )


def _listed_roots(client: httpx.Client) -> dict[str, str]:
    """Served model id -> the path it was loaded from ('root' in vLLM's /v1/models cards)."""
    response = _send(client, "GET", "/models", None)
    try:
        cards = response.json()["data"]
        return {card["id"]: card.get("root") or "" for card in cards}
    except (ValueError, KeyError, TypeError) as exc:
        raise PublishError(
            f"GET {client.base_url}/models answered HTTP {response.status_code} without a model list "
            f"({response.text[:200]!r}); is base_url a vLLM (OpenAI-compatible) server?"
        ) from exc


def _client(base_url: str, api_key: str | None, timeout_s: float) -> httpx.Client:
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    return httpx.Client(base_url=api_base(base_url), headers=headers, timeout=timeout_s)


def _send(client: httpx.Client, method: str, path: str, body: dict[str, Any] | None) -> httpx.Response:
    """The one place httpx errors become `VLLMUnreachable`; any HTTP status is returned."""
    try:
        response = client.request(method, path, json=body)
    except httpx.TimeoutException as exc:
        raise VLLMUnreachable(
            f"vLLM at {client.base_url} did not answer {method} {path} within {client.timeout.read}s; "
            "it may be busy or starting: retry later, or raise timeout_s."
        ) from exc
    except httpx.HTTPError as exc:
        raise VLLMUnreachable(
            f"could not reach vLLM at {client.base_url} ({type(exc).__name__}: {exc}); "
            "check that the server is running and base_url is right."
        ) from exc
    if response.status_code == 401:
        raise PublishError(f"vLLM at {client.base_url} refused the API key; pass the api_key vLLM was "
                           "started with (--api-key).")
    return response


def _is_completion(response: httpx.Response) -> bool:
    try:
        return isinstance(response.json()["choices"][0]["text"], str)
    except (ValueError, KeyError, IndexError, TypeError):
        return False
