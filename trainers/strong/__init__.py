"""The strong model's side of the pipeline: finetuning on weak labels and publishing adapters to vLLM."""

from trainers.strong.publish import (
    AdapterRejected,
    InvalidServedName,
    LoRAUpdatingDisabled,
    PublishError,
    RepublishIncomplete,
    ServedNameTaken,
    VersionNotFound,
    VLLMUnreachable,
    default_served_name,
    publish_adapter,
    publish_version,
    register_version,
    republish_all,
)

__all__ = [
    "AdapterRejected",
    "InvalidServedName",
    "LoRAUpdatingDisabled",
    "PublishError",
    "RepublishIncomplete",
    "ServedNameTaken",
    "VLLMUnreachable",
    "VersionNotFound",
    "default_served_name",
    "publish_adapter",
    "publish_version",
    "register_version",
    "republish_all",
]
