"""The exceptions of the `debate` package.

    DebateError
    ├── InvalidProtocol (also a ValueError)  a spec or transcript the protocol cannot run
    └── StrongModelError                     talking to the OpenAI-compatible server failed
        ├── StrongModelUnavailable           nothing answered, timeouts, 429/5xx after retries
        │   └── VLLMUnreachable              the same, from vLLM's admin endpoints (debate.admin)
        ├── StrongModelBadResponse           another 4xx, or a body we cannot parse
        ├── ContextTooLong                   the prompt does not fit the server's max_model_len
        ├── ModelNotFound                    the server does not serve that model name
        ├── LoRAUpdatingDisabled             the server cannot load LoRA adapters at runtime
        └── AdapterRejected                  the server refused (or does not serve) this adapter

Only StrongModelUnavailable is retried. ContextTooLong is about one example (the runner
records it and carries on); ModelNotFound and StrongModelUnavailable are about the whole
server (the runner stops).

Lower-level (httpx, JSON, pydantic) errors become these in exactly one place each:
`debate.client.map_http_failure` for HTTP (both clients, `StrongModelClient` and
`debate.admin.VLLMAdmin`), `debate.openai_types.parse_*` for bodies.
"""

from __future__ import annotations


class DebateError(Exception):
    """Base class of every error raised on purpose by the `debate` package."""


class InvalidProtocol(DebateError, ValueError):
    """A debate spec (or a transcript handed back to the protocol) is not runnable."""


class StrongModelError(DebateError):
    """A request to the strong model's server failed; `url` is the endpoint tried."""

    def __init__(self, message: str, *, url: str, status_code: int | None = None) -> None:
        super().__init__(message)
        self.url = url
        self.status_code = status_code


class StrongModelUnavailable(StrongModelError):
    """No usable answer after all retries: connection refused, timeouts, 429 or 5xx."""


class StrongModelBadResponse(StrongModelError):
    """The server answered, but with a client error or a body that is not the OpenAI shape."""


class ContextTooLong(StrongModelError):
    """The prompt (plus at least one output token) exceeds the server's context window."""


class ModelNotFound(StrongModelError):
    """The server does not serve the requested model name (or LoRA adapter)."""


class VLLMUnreachable(StrongModelUnavailable):
    """vLLM's admin endpoints did not answer (refused, reset, timed out); retrying later may work."""


class LoRAUpdatingDisabled(StrongModelError):
    """The server has no runtime LoRA loading: flags or environment variable missing."""


class AdapterRejected(StrongModelError):
    """The server answered but would not load (or serve) this adapter under this name."""
