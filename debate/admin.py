"""vLLM's admin endpoints: load and unload LoRA adapters, list what is served (and from where).

    with VLLMAdmin("http://127.0.0.1:8000") as admin:
        admin.load_adapter("run1-strong-v1", "/artifacts/runs/1/adapter")   # then listed and answering
        admin.served_roots()            # {"strong": "/models/strong", "run1-strong-v1": "/artifacts/runs/1/adapter"}
        admin.unload_adapter("run1-strong-v1")

Synchronous, unlike `debate.client.StrongModelClient`: a worker publishes between two short
transactions, with no event loop. The server must run with `--enable-lora` (and
`--max-lora-rank` at least the adapter's rank) and `VLLM_ALLOW_RUNTIME_LORA_UPDATING=True`;
vLLM reads the adapter from the path itself, so the path must be readable on its machine.

HTTP errors become `debate.errors` in one place, `_send`: no answer -> `VLLMUnreachable`, a refused
API key -> `StrongModelBadResponse`; each endpoint then says what its other statuses mean
(`LoRAUpdatingDisabled`, `AdapterRejected`).
"""

from __future__ import annotations

import re
from types import TracebackType
from typing import Any

import httpx

from debate.client import api_base, error_message
from debate.errors import AdapterRejected, LoRAUpdatingDisabled, StrongModelBadResponse, VLLMUnreachable

DEFAULT_TIMEOUT_S = 120.0
LORA_DISABLED = re.compile(r"lora is not enabled|--enable-lora", re.IGNORECASE)
PROBE_PROMPT = "Hello"
START_HINT = (
    "start vLLM with --enable-lora --max-lora-rank <rank> and the environment variable "
    "VLLM_ALLOW_RUNTIME_LORA_UPDATING=True"
)


class VLLMAdmin:
    """The admin calls against one vLLM base URL (with or without its /v1)."""

    def __init__(self, base_url: str, *, api_key: str | None = None, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.Client(base_url=api_base(base_url), headers=headers, timeout=timeout_s)

    def __enter__(self) -> VLLMAdmin:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def load_adapter(self, served_name: str, adapter_path: str) -> None:
        """Load the adapter as `served_name` and check it is listed and answers a 1-token completion.

        Loading a name already loaded from the same path succeeds (a retried publish is harmless);
        from another path it raises `AdapterRejected`.
        """
        response = self._send("POST", "/load_lora_adapter", {"lora_name": served_name, "lora_path": adapter_path})
        if response.status_code != 200:
            self._refused(response, served_name, adapter_path)
        self._verify(served_name)

    def unload_adapter(self, served_name: str) -> None:
        """Unload `served_name`; one the server does not serve is already unloaded."""
        response = self._send("POST", "/unload_lora_adapter", {"lora_name": served_name})
        if response.status_code != 200 and served_name in self.served_roots():
            raise AdapterRejected(
                f"vLLM at {self._http.base_url} would not unload {served_name!r} (HTTP "
                f"{response.status_code}: {error_message(response)}); read the vLLM log.",
                url=str(response.url),
                status_code=response.status_code,
            )

    def served_roots(self) -> dict[str, str]:
        """Served model id -> the path it was loaded from ('root' in vLLM's /v1/models cards)."""
        response = self._send("GET", "/models", None)
        try:
            return {card["id"]: card.get("root") or "" for card in response.json()["data"]}
        except (ValueError, KeyError, TypeError) as exc:
            raise StrongModelBadResponse(
                f"GET {self._http.base_url}/models answered HTTP {response.status_code} without a model list "
                f"({response.text[:200]!r}); is base_url a vLLM (OpenAI-compatible) server?",
                url=str(response.url),
                status_code=response.status_code,
            ) from exc

    def _refused(self, response: httpx.Response, served_name: str, adapter_path: str) -> None:
        """What a non-200 answer to load_lora_adapter means; returns only when the adapter is already loaded."""
        message, url = error_message(response), str(response.url)
        if (response.status_code in (404, 405) and message == "Not Found") or LORA_DISABLED.search(message):
            raise LoRAUpdatingDisabled(
                f"vLLM at {self._http.base_url} cannot load LoRA adapters at runtime ({message}); {START_HINT}.",
                url=url,
                status_code=response.status_code,
            )
        if response.status_code == 400:
            loaded_from = self.served_roots().get(served_name, "")
            if loaded_from == adapter_path:
                return
            if loaded_from:
                raise AdapterRejected(
                    f"vLLM already serves {served_name!r} from {loaded_from}, not {adapter_path}; served names "
                    "are never re-used: register a new version (register_version) for the new adapter.",
                    url=url,
                    status_code=400,
                )
        raise AdapterRejected(
            f"vLLM refused to load adapter {served_name!r} from {adapter_path} (HTTP {response.status_code}: "
            f"{message}); check that the path is a directory saved by peft that the vLLM server can read, that "
            "the adapter was trained on the served base model, and that its rank is <= vLLM's --max-lora-rank.",
            url=url,
            status_code=response.status_code,
        )

    def _verify(self, served_name: str) -> None:
        """The adapter must be listed and must answer a 1-token greedy completion."""
        if served_name not in self.served_roots():
            raise AdapterRejected(
                f"vLLM accepted adapter {served_name!r} but GET /v1/models does not list it; read the vLLM log.",
                url=f"{self._http.base_url}/models",
            )
        probe = {"model": served_name, "prompt": PROBE_PROMPT, "max_tokens": 1, "temperature": 0}
        response = self._send("POST", "/completions", probe)
        if response.status_code != 200 or not _is_completion(response):
            raise AdapterRejected(
                f"vLLM lists adapter {served_name!r} but a 1-token completion under it failed (HTTP "
                f"{response.status_code}: {error_message(response)}); read the vLLM log.",
                url=str(response.url),
                status_code=response.status_code,
            )

    def _send(self, method: str, path: str, body: dict[str, Any] | None) -> httpx.Response:
        """The one place httpx errors and a refused API key become `debate.errors`; other statuses return."""
        url = f"{self._http.base_url}{path}"
        try:
            response = self._http.request(method, path, json=body)
        except httpx.TimeoutException as exc:
            raise VLLMUnreachable(
                f"vLLM at {self._http.base_url} did not answer {method} {path} within {self._http.timeout.read}s; "
                "it may be busy or starting: retry later, or raise timeout_s.",
                url=url,
            ) from exc
        except httpx.HTTPError as exc:
            raise VLLMUnreachable(
                f"could not reach vLLM at {self._http.base_url} ({type(exc).__name__}: {exc}); "
                "check that the server is running and base_url is right.",
                url=url,
            ) from exc
        if response.status_code in (401, 403):
            raise StrongModelBadResponse(
                f"vLLM at {self._http.base_url} refused the API key; pass the api_key vLLM "
                "was started with (--api-key).",
                url=url,
                status_code=response.status_code,
            )
        return response


def _is_completion(response: httpx.Response) -> bool:
    try:
        return isinstance(response.json()["choices"][0]["text"], str)
    except (ValueError, KeyError, IndexError, TypeError):
        return False
