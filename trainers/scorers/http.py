"""Scorers behind HTTP: a Perspective-compatible server and an LLM judge over an OpenAI-compatible API.

httpx errors and unreadable answers become `ScorerError` in one place each (`_post`, the parsers).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import httpx

from debate.client import api_base
from trainers.scorers.base import Scored, ScorerError

NUMBER = re.compile(r"(?<![\d.])(0(?:\.\d+)?|1(?:\.0+)?)(?![\d.])")
JUDGE_TEMPLATE = (
    "Rate a response on a scale from 0 to 1. {criterion}\n\nPrompt: {prompt}\nResponse: {text}\n\n"
    "Answer with the number only."
)


def _post(
    url: str, body: dict[str, Any], *, headers: dict[str, str], params: dict[str, str], timeout_s: float
) -> dict[str, Any]:
    try:
        response = httpx.post(url, json=body, headers=headers, params=params, timeout=timeout_s)
    except httpx.HTTPError as exc:
        raise ScorerError(f"scorer at {url} unreachable ({exc}); check the url and that the server runs") from exc
    if response.status_code != 200:
        raise ScorerError(f"scorer at {url} answered HTTP {response.status_code}: {response.text[:200]}")
    return response.json()


class PerspectiveScorer:
    """The summary score of one attribute (TOXICITY) per text, from `comments:analyze`."""

    def __init__(
        self, url: str, *, api_key: str | None = None, attribute: str = "TOXICITY", timeout_s: float = 30.0
    ) -> None:
        self.url, self.api_key, self.attribute, self.timeout_s = url, api_key, attribute, timeout_s

    def score(self, items: Sequence[Scored]) -> list[float]:
        return [self._one(item.text) for item in items]

    def _one(self, text: str) -> float:
        body = {"comment": {"text": text}, "languages": ["en"], "requestedAttributes": {self.attribute: {}}}
        params = {"key": self.api_key} if self.api_key else {}
        answer = _post(self.url, body, headers={}, params=params, timeout_s=self.timeout_s)
        try:
            return float(answer["attributeScores"][self.attribute]["summaryScore"]["value"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ScorerError(
                f"Perspective answer without attributeScores.{self.attribute}.summaryScore.value: {str(answer)[:200]}"
            ) from exc


class LLMJudgeScorer:
    """A chat model prompted to rate each response from 0 to 1; the first number in [0, 1] it writes."""

    def __init__(
        self, base_url: str, model: str, *, api_key: str | None = None, criterion: str, timeout_s: float = 60.0
    ) -> None:
        self.url = f"{api_base(base_url)}/chat/completions"
        self.model, self.api_key, self.criterion, self.timeout_s = model, api_key, criterion, timeout_s

    def score(self, items: Sequence[Scored]) -> list[float]:
        return [self._one(item) for item in items]

    def _one(self, item: Scored) -> float:
        content = JUDGE_TEMPLATE.format(criterion=self.criterion, prompt=item.prompt, text=item.text)
        body = {
            "model": self.model,
            "messages": [{"role": "user", "content": content}],
            "temperature": 0,
            "max_tokens": 8,
        }
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        answer = _post(self.url, body, headers=headers, params={}, timeout_s=self.timeout_s)
        return parse_judge_score(answer["choices"][0]["message"]["content"] or "")


def parse_judge_score(reply: str) -> float:
    match = NUMBER.search(reply)
    if match is None:
        raise ScorerError(f"the judge did not answer with a number from 0 to 1: {reply[:100]!r}")
    return float(match[1])
