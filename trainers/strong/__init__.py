"""The strong model's side of the pipeline: finetuning on weak labels and publishing adapters to vLLM.

Registering versions is the store's (`service.store.model_versions`), loading adapters the admin
client's (`debate.admin`); `publish` joins the two. Their names are gathered here for callers.
"""

from debate.errors import AdapterRejected, LoRAUpdatingDisabled, VLLMUnreachable
from service.store.errors import InvalidServedName, NoAdapter, ServedNameTaken, VersionNotFound
from service.store.model_versions import default_served_name, register_version
from trainers.errors import PublishError, RepublishIncomplete
from trainers.strong.publish import PUBLISH_FAILURES, publish_adapter, publish_version, republish_all

__all__ = [
    "PUBLISH_FAILURES",
    "AdapterRejected",
    "InvalidServedName",
    "LoRAUpdatingDisabled",
    "NoAdapter",
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
