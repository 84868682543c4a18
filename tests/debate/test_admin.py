"""VLLMAdmin's error translation against real HTTP on loopback (fast): each failure is one `debate.errors` type.

The happy paths (load, list, unload on a real vLLM) run in tests/trainers/test_publish.py.
"""

from __future__ import annotations

from typing import Any

import pytest

from debate.admin import VLLMAdmin
from debate.errors import (
    AdapterRejected,
    LoRAUpdatingDisabled,
    StrongModelBadResponse,
    StrongModelUnavailable,
    VLLMUnreachable,
)
from tests.debate.loopback import Reply, completion_body, loopback_server
from tests.debate.test_client_errors import free_port, vllm_error

ADAPTER = "/adapters/a1"


ANSWER = Reply(200, completion_body(chat=False))


def _vllm(load: Reply, listed: dict[str, str], completion: Reply = ANSWER):  # noqa: ANN202 - a context manager
    """A scripted vLLM: `load` answers load/unload, GET /models lists `listed` (name -> root)."""
    models = {"object": "list", "data": [{"id": name, "root": root} for name, root in listed.items()]}

    def reply(request: dict[str, Any]) -> Reply:
        if request["path"].endswith("/models"):
            return Reply(200, models)
        if request["path"].endswith("/completions"):
            return completion
        return load

    return loopback_server(reply)


def _load(base_url: str, path: str = ADAPTER, **options: Any) -> None:
    with VLLMAdmin(base_url, **options) as admin:
        admin.load_adapter("a1", path)


def test_a_loaded_adapter_is_listed_and_answers() -> None:
    with _vllm(Reply(200, "Success"), {"strong": "/m", "a1": ADAPTER}) as server:
        _load(server.base_url)
    assert [r["path"] for r in server.received] == ["/v1/load_lora_adapter", "/v1/models", "/v1/completions"]
    assert server.received[0] | {"path": None} == {"path": None, "lora_name": "a1", "lora_path": ADAPTER}


def test_loading_again_from_the_same_path_is_harmless_from_another_is_refused() -> None:
    taken = Reply(400, vllm_error("The lora adapter 'a1' has already been loaded.", 400))
    with _vllm(taken, {"a1": ADAPTER}) as server:
        _load(server.base_url)
        with pytest.raises(AdapterRejected, match="already serves 'a1' from /adapters/a1, not /elsewhere"):
            _load(server.base_url, "/elsewhere")


@pytest.mark.parametrize(
    ("load", "listed", "completion", "error", "message"),
    [
        (Reply(404, {"detail": "Not Found"}), {}, None, LoRAUpdatingDisabled, "VLLM_ALLOW_RUNTIME_LORA_UPDATING=True"),
        (
            Reply(400, vllm_error("LoRA is not enabled. Use --enable-lora", 400)),
            {},
            None,
            LoRAUpdatingDisabled,
            "--enable-lora",
        ),
        (
            Reply(500, vllm_error("No adapter found for /adapters/a1", 500)),
            {},
            None,
            AdapterRejected,
            r"refused to load adapter 'a1' .*HTTP 500: No adapter found",
        ),
        (Reply(200, "Success"), {"strong": "/m"}, None, AdapterRejected, "does not list it"),
        (
            Reply(200, "Success"),
            {"a1": ADAPTER},
            Reply(404, vllm_error("model a1 does not exist", 404)),
            AdapterRejected,
            "1-token completion under it failed",
        ),
        (Reply(401, {"error": "Unauthorized"}), {}, None, StrongModelBadResponse, "refused the API key"),
    ],
    ids=["no-route", "lora-disabled", "bad-adapter", "not-listed", "not-answering", "api-key"],
)
def test_each_refusal_is_one_error_type(
    load: Reply, listed: dict[str, str], completion: Reply | None, error: type[Exception], message: str
) -> None:
    with _vllm(load, listed, completion or ANSWER) as server, pytest.raises(error, match=message):
        _load(server.base_url)


def test_no_answer_is_unreachable_and_worth_a_retry() -> None:
    with pytest.raises(VLLMUnreachable, match="check that the server is running") as refused:
        _load(f"http://127.0.0.1:{free_port()}")
    assert isinstance(refused.value, StrongModelUnavailable)  # what every retry loop already waits out
    with (
        loopback_server([Reply(200, "Success", delay_s=1.0)]) as slow,
        pytest.raises(VLLMUnreachable, match="did not answer POST /load_lora_adapter within 0.2s"),
    ):
        _load(slow.base_url, timeout_s=0.2)


def test_a_server_without_a_model_list_is_named() -> None:
    with (
        loopback_server([Reply(200, {"hello": "world"})]) as server,
        pytest.raises(StrongModelBadResponse, match="without a model list"),
        VLLMAdmin(server.base_url) as admin,
    ):
        admin.served_roots()


def test_unloading_what_is_not_served_is_done_what_stays_is_refused() -> None:
    with (
        _vllm(Reply(404, vllm_error("The lora adapter 'a1' cannot be found.", 404)), {}) as server,
        VLLMAdmin(server.base_url) as admin,
    ):
        admin.unload_adapter("a1")
    with (
        _vllm(Reply(500, vllm_error("engine busy", 500)), {"a1": ADAPTER}) as server,
        VLLMAdmin(server.base_url) as admin,
        pytest.raises(AdapterRejected, match="would not unload 'a1'"),
    ):
        admin.unload_adapter("a1")
