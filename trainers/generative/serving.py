"""Greedy completions from a model served by vLLM (or any OpenAI-compatible server), many prompts per request."""

from __future__ import annotations

from collections.abc import Sequence

import httpx

from debate.client import api_base
from debate.errors import StrongModelUnavailable


def complete_all(
    base_url: str,
    model: str,
    prompts: Sequence[str],
    *,
    max_tokens: int,
    stop: Sequence[str] = (),
    api_key: str | None = None,
    per_request: int = 32,
    timeout_s: float = 300.0,
) -> list[str]:
    """The greedy completion of each prompt, in order (vLLM batches the prompts of one request)."""
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    texts: list[str] = []
    with httpx.Client(base_url=api_base(base_url), headers=headers, timeout=timeout_s) as client:
        for start in range(0, len(prompts), per_request):
            chunk = list(prompts[start : start + per_request])
            body = {
                "model": model,
                "prompt": chunk,
                "max_tokens": max_tokens,
                "temperature": 0.0,
                **({"stop": list(stop)} if stop else {}),
            }
            try:
                response = client.post("/completions", json=body)
            except httpx.HTTPError as exc:
                raise StrongModelUnavailable(f"{base_url} unreachable: {exc}") from exc
            if response.status_code != 200:
                raise StrongModelUnavailable(f"{base_url} answered HTTP {response.status_code}: {response.text[:300]}")
            choices = sorted(response.json()["choices"], key=lambda choice: choice["index"])
            texts += [choice["text"] for choice in choices]
    return texts
