"""Values exchanged with an OpenAI-compatible server, and parsing of its JSON bodies.

The wire format is described with pydantic models (extra fields ignored, so newer
servers still parse); callers only see the frozen values below. Parsing failures become
`StrongModelBadResponse` here and nowhere else.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, TypeVar

import pydantic

from debate.errors import StrongModelBadResponse


@dataclass(frozen=True)
class ChatMessage:
    role: Literal["system", "user", "assistant"]
    content: str


@dataclass(frozen=True)
class TokenLogprob:
    """One generated token, its log-probability and the most likely alternatives."""

    token: str
    logprob: float
    top: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True)
class Choice:
    index: int
    text: str
    finish_reason: str | None
    logprobs: tuple[TokenLogprob, ...] | None = None


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int


@dataclass(frozen=True)
class Completion:
    """Answer of /v1/chat/completions or /v1/completions, in one shape for both."""

    model: str
    choices: tuple[Choice, ...]
    usage: Usage


class _Wire(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="ignore")


_W = TypeVar("_W", bound=_Wire)


class _WireUsage(_Wire):
    prompt_tokens: int
    completion_tokens: int = 0


class _WireTop(_Wire):
    token: str
    logprob: float


class _WireChatToken(_WireTop):
    top_logprobs: list[_WireTop] = []


class _WireChatLogprobs(_Wire):
    content: list[_WireChatToken] | None = None


class _WireMessage(_Wire):
    content: str | None = None


class _WireChatChoice(_Wire):
    index: int
    message: _WireMessage
    finish_reason: str | None = None
    logprobs: _WireChatLogprobs | None = None


class _WireChat(_Wire):
    model: str
    choices: list[_WireChatChoice] = pydantic.Field(min_length=1)
    usage: _WireUsage


class _WireTextLogprobs(_Wire):
    tokens: list[str]
    token_logprobs: list[float | None]
    top_logprobs: list[dict[str, float] | None] | None = None


class _WireTextChoice(_Wire):
    index: int
    text: str
    finish_reason: str | None = None
    logprobs: _WireTextLogprobs | None = None


class _WireText(_Wire):
    model: str
    choices: list[_WireTextChoice] = pydantic.Field(min_length=1)
    usage: _WireUsage


class _WireModel(_Wire):
    id: str


class _WireModels(_Wire):
    data: list[_WireModel]


def parse_models(raw: bytes, url: str) -> list[str]:
    """A /v1/models body as the list of served names."""
    return [entry.id for entry in _validate(_WireModels, raw, url).data]


def parse_chat(raw: bytes, url: str) -> Completion:
    """A /v1/chat/completions body as a `Completion`."""
    wire = _validate(_WireChat, raw, url)
    choices = tuple(
        Choice(
            index=choice.index,
            text=choice.message.content or "",
            finish_reason=choice.finish_reason,
            logprobs=_chat_logprobs(choice.logprobs),
        )
        for choice in wire.choices
    )
    return Completion(model=wire.model, choices=choices, usage=_usage(wire.usage))


def parse_text(raw: bytes, url: str) -> Completion:
    """A /v1/completions body as a `Completion`."""
    wire = _validate(_WireText, raw, url)
    choices = tuple(
        Choice(
            index=choice.index,
            text=choice.text,
            finish_reason=choice.finish_reason,
            logprobs=_text_logprobs(choice.logprobs),
        )
        for choice in wire.choices
    )
    return Completion(model=wire.model, choices=choices, usage=_usage(wire.usage))


def _validate(model: type[_W], raw: bytes, url: str) -> _W:
    """`raw` parsed as `model`; bad JSON and a wrong shape both fail validation here."""
    try:
        wire = model.model_validate_json(raw)
    except pydantic.ValidationError as exc:
        raise StrongModelBadResponse(
            f"{url} answered 200 but not in the OpenAI response shape "
            f"({exc.error_count()} problems, first: {exc.errors()[0]['msg']} at "
            f"{exc.errors()[0]['loc']}); is base_url an OpenAI-compatible server?",
            url=url,
        ) from exc
    return wire


def _usage(wire: _WireUsage) -> Usage:
    return Usage(prompt_tokens=wire.prompt_tokens, completion_tokens=wire.completion_tokens)


def _chat_logprobs(wire: _WireChatLogprobs | None) -> tuple[TokenLogprob, ...] | None:
    if wire is None or wire.content is None:
        return None
    return tuple(
        TokenLogprob(
            token=item.token,
            logprob=item.logprob,
            top=tuple((top.token, top.logprob) for top in item.top_logprobs),
        )
        for item in wire.content
    )


def _text_logprobs(wire: _WireTextLogprobs | None) -> tuple[TokenLogprob, ...] | None:
    if wire is None:
        return None
    tops = wire.top_logprobs or [None] * len(wire.tokens)
    return tuple(
        TokenLogprob(
            token=token,
            # The first token of an echoed prompt has no logprob; nan keeps the position.
            logprob=float("nan") if logprob is None else logprob,
            top=tuple((top or {}).items()),
        )
        for token, logprob, top in zip(wire.tokens, wire.token_logprobs, tops, strict=False)
    )
