"""Async client for the strong model behind an OpenAI-compatible server (vLLM first).

    async with StrongModelClient("http://127.0.0.1:8000") as client:
        await client.check_ready("strong")
        answer = await client.chat("strong", [ChatMessage("user", "Hi")], max_tokens=16)

One pooled `httpx.AsyncClient` per instance; connection errors, timeouts, 429 and 5xx
are retried with exponential backoff and jitter; every httpx failure is translated into
the `debate.errors` hierarchy by `map_http_failure`, the only place that knows httpx.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal

import httpx

from debate.errors import (
    ContextTooLong,
    ModelNotFound,
    StrongModelBadResponse,
    StrongModelError,
    StrongModelUnavailable,
)
from debate.openai_types import ChatMessage, Completion, parse_chat, parse_models, parse_text

# vLLM says "maximum context length" (prompt over the window) or "maximum model length"
# (prompt + 1 token over it); other servers use similar words.
_CONTEXT_PATTERN = re.compile(
    r"maximum context length|maximum model length|context length|max_model_len|"
    r"context window|too many tokens",
    re.IGNORECASE,
)
_UNKNOWN_MODEL_PATTERN = re.compile(r"model .* does not exist|unknown model|model not found", re.I)


@dataclass(frozen=True)
class RetryPolicy:
    """`max_retries` retries after the first attempt; waits grow as base * 2**n, capped."""

    max_retries: int = 4
    backoff_base_s: float = 0.5
    backoff_max_s: float = 10.0

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based)."""
        if retry_after is not None:
            return min(retry_after, self.backoff_max_s)
        ceiling = min(self.backoff_max_s, self.backoff_base_s * 2.0 ** (attempt - 1))
        # "Equal jitter": at least half the ceiling, so retries of many concurrent
        # requests spread out without ever hammering the server back-to-back.
        return ceiling / 2 + random.uniform(0, ceiling / 2)


class StrongModelClient:
    """Chat and text completions against one OpenAI-compatible base URL.

    `base_url` may end in /v1 or not ("http://host:8000" and "http://host:8000/v1" are
    the same server). `timeout` bounds one attempt of one request; generation of long
    turns under heavy batching needs a generous value.
    """

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        timeout: float = 300.0,
        connect_timeout: float = 5.0,
        retry: RetryPolicy = RetryPolicy(),
        max_connections: int = 256,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = api_base(base_url)
        self.retry = retry
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.AsyncClient(
            headers=headers,
            timeout=httpx.Timeout(timeout, connect=connect_timeout),
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
            transport=transport,
        )

    async def __aenter__(self) -> StrongModelClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def chat(
        self,
        model: str,
        messages: Sequence[ChatMessage],
        *,
        temperature: float = 1.0,
        top_p: float = 1.0,
        max_tokens: int = 256,
        seed: int | None = None,
        n: int = 1,
        logprobs: int | None = None,
        stop: Sequence[str] | None = None,
    ) -> Completion:
        """POST /chat/completions. `logprobs=k` returns each token's logprob and top k."""
        payload = _sampling_payload(model, temperature, top_p, max_tokens, seed, n, stop)
        payload["messages"] = [dataclasses.asdict(message) for message in messages]
        if logprobs is not None:
            payload |= {"logprobs": True, "top_logprobs": logprobs}
        url = f"{self.base_url}/chat/completions"
        return parse_chat(await self._request("POST", url, payload), url)

    async def complete(
        self,
        model: str,
        prompt: str,
        *,
        temperature: float = 1.0,
        top_p: float = 1.0,
        max_tokens: int = 256,
        seed: int | None = None,
        n: int = 1,
        logprobs: int | None = None,
        stop: Sequence[str] | None = None,
    ) -> Completion:
        """POST /completions (raw text, no chat template)."""
        payload = _sampling_payload(model, temperature, top_p, max_tokens, seed, n, stop)
        payload["prompt"] = prompt
        if logprobs is not None:
            payload["logprobs"] = logprobs
        url = f"{self.base_url}/completions"
        return parse_text(await self._request("POST", url, payload), url)

    async def list_models(self) -> list[str]:
        """Names the server serves (base model and loaded LoRA adapters)."""
        url = f"{self.base_url}/models"
        return parse_models(await self._request("GET", url, None), url)

    async def check_ready(self, model: str, *, endpoint: Literal["chat", "completions"] = "chat") -> None:
        """Raise unless `model` generates one token.

        vLLM's /health can answer 200 while the engine cannot serve, and only a chat
        request proves the chat template loads, so readiness is a real 1-token request.
        """
        if endpoint == "chat":
            await self.chat(model, [ChatMessage("user", "Ready?")], max_tokens=1, temperature=0)
        else:
            await self.complete(model, "Ready?", max_tokens=1, temperature=0)

    async def _request(self, method: str, url: str, payload: dict[str, Any] | None) -> bytes:
        """The body of a 2xx answer, retrying what `map_http_failure` calls unavailable."""
        attempts = self.retry.max_retries + 1
        for attempt in range(1, attempts + 1):
            outcome: httpx.Response | httpx.HTTPError
            try:
                outcome = await self._http.request(method, url, json=payload)
            except httpx.HTTPError as exc:
                outcome = exc
            if isinstance(outcome, httpx.Response) and outcome.is_success:
                return outcome.content
            failure = map_http_failure(outcome, url=url, attempts=attempt)
            if attempt == attempts or not isinstance(failure, StrongModelUnavailable):
                raise failure from (outcome if isinstance(outcome, Exception) else None)
            await asyncio.sleep(self.retry.delay(attempt, _retry_after(outcome)))
        raise AssertionError("unreachable: the last attempt always returns or raises")


def api_base(base_url: str) -> str:
    """`base_url` without a trailing slash, ending in /v1."""
    if not base_url.startswith(("http://", "https://")):
        # Caught here, not retried: httpx would call it a transport error every attempt.
        raise ValueError(f"base_url must start with http:// or https://, got {base_url!r}")
    base = base_url.rstrip("/")
    return base if base.endswith("/v1") else f"{base}/v1"


def map_http_failure(failure: httpx.HTTPError | httpx.Response, *, url: str, attempts: int) -> StrongModelError:
    """Translate an httpx exception or a non-2xx response into our hierarchy."""
    tries = f"after {attempts} attempt{'s' if attempts > 1 else ''}"
    if isinstance(failure, httpx.TimeoutException):
        return StrongModelUnavailable(
            f"{url} timed out {tries} ({type(failure).__name__}); check the server is "
            "up and not overloaded, or raise the client timeout / lower max_in_flight",
            url=url,
        )
    if isinstance(failure, httpx.HTTPError):
        return StrongModelUnavailable(
            f"could not reach {url} {tries}: {failure!r}; is the OpenAI-compatible "
            "server (vLLM) running at that address? Start it or fix base_url",
            url=url,
        )
    return _map_status(failure.status_code, error_message(failure), url=url, tries=tries)


def _map_status(status: int, message: str, *, url: str, tries: str) -> StrongModelError:
    if status == 429:
        return StrongModelUnavailable(
            f"{url} kept answering 429 Too Many Requests {tries}: {message}; lower "
            "max_in_flight or add server capacity",
            url=url,
            status_code=status,
        )
    if status >= 500:
        return StrongModelUnavailable(
            f"{url} answered {status} {tries}: {message}; check the server's log",
            url=url,
            status_code=status,
        )
    if _UNKNOWN_MODEL_PATTERN.search(message) or (status == 404 and "model" in message.lower()):
        models = url.rsplit("/v1/", 1)[0] + "/v1/models"
        return ModelNotFound(
            f"{url}: {message} See the served names at GET {models}, or use the "
            "--served-model-name (or LoRA name) the server was started with",
            url=url,
            status_code=status,
        )
    if status == 400 and _CONTEXT_PATTERN.search(message):
        return ContextTooLong(
            f"{url}: {message} Shorten the example or the turns (lower max_tokens / "
            "word_limit / turns), or restart the server with a larger --max-model-len",
            url=url,
            status_code=status,
        )
    hint = {
        401: "; pass the right api_key",
        403: "; pass the right api_key",
        404: "; is base_url the server's root or its /v1 path?",
    }.get(status, "")
    return StrongModelBadResponse(
        f"{url} rejected the request with {status}: {message}{hint}", url=url, status_code=status
    )


def error_message(response: httpx.Response) -> str:
    """The message of an OpenAI-style (or FastAPI-style) error body, else the raw text."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:500] or response.reason_phrase
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and "message" in error:
            return str(error["message"])
        for key in ("message", "detail"):
            if key in body:
                return str(body[key])
    return response.text[:500]


def _retry_after(failure: httpx.HTTPError | httpx.Response) -> float | None:
    """Seconds from a numeric Retry-After header, if the server sent one."""
    if not isinstance(failure, httpx.Response):
        return None
    value = failure.headers.get("retry-after", "")
    return float(value) if re.fullmatch(r"\d+(\.\d+)?", value.strip()) else None


def _sampling_payload(
    model: str,
    temperature: float,
    top_p: float,
    max_tokens: int,
    seed: int | None,
    n: int,
    stop: Sequence[str] | None,
) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "model": model,
        "temperature": temperature,
        "top_p": top_p,
        "max_tokens": max_tokens,
        "n": n,
    }
    if seed is not None:
        payload["seed"] = seed
    if stop:
        payload["stop"] = list(stop)
    return payload
