"""What a remote caller may make workers read: directories under the operator's allowed roots.

A run config names server-side paths (`data_dir`, `weak.model`, `strong.checkpoint`) that
workers open. Over the API each must resolve (symlinks followed) to an existing directory under
W2S_DATA_ROOTS (data) or W2S_MODEL_ROOTS (models); hub ids are refused, since they make workers
download. The local CLI (`w2s run`) reads the same configs without these limits.
"""

from pathlib import Path

from service.api.errors import ApiError
from service.settings import Settings
from trainers.runs import AnyRunConfig


def check_run_paths(config: AnyRunConfig, settings: Settings) -> None:
    """ApiError 422 naming the first field whose path lies outside the allowed roots."""
    data_roots, model_roots = settings.allowed_data_roots(), settings.allowed_model_roots()
    for field, value, roots, setting in (
        ("data_dir", config.data_dir, data_roots, "W2S_DATA_ROOTS"),
        ("weak.model", config.weak.model, model_roots, "W2S_MODEL_ROOTS"),
        ("strong.checkpoint", config.strong.checkpoint, model_roots, "W2S_MODEL_ROOTS"),
    ):
        if value is not None and not _allowed(value, roots):
            raise ApiError(
                422,
                f"{field} must be a directory under the server's {setting} (set by its operator); {value!r} is not",
                "invalid_request",
                f"body.{field}",
            )


def _allowed(value: str, roots: list[Path]) -> bool:
    path = Path(value).resolve()
    return path.is_dir() and any(path.is_relative_to(root) for root in roots)
