"""Debates between instances of the strong model: protocols, prompts, transcripts, the
OpenAI-compatible client (and vLLM's admin calls) and the async runner. Imports neither `service` nor `trainers`.
"""

from debate.admin import VLLMAdmin
from debate.client import RetryPolicy, StrongModelClient
from debate.errors import (
    AdapterRejected,
    ContextTooLong,
    DebateError,
    InvalidProtocol,
    LoRAUpdatingDisabled,
    ModelNotFound,
    StrongModelBadResponse,
    StrongModelError,
    StrongModelUnavailable,
    VLLMUnreachable,
)
from debate.openai_types import ChatMessage, Choice, Completion, TokenLogprob, Usage
from debate.pool import ReplicaPool, ReplicaState, resolve_targets
from debate.protocol import TurnRequest, next_turns, request_seed, sample_specs, schedule
from debate.runner import DEFAULT_MAX_IN_FLIGHT, run_debate, run_debates, stream_debates
from debate.spec import DebateSpec, SamplingParams
from debate.transcript import DebateFailure, DebateOutcome, DebateResult, Turn, render_for_weak

__all__ = [
    "DEFAULT_MAX_IN_FLIGHT",
    "AdapterRejected",
    "ChatMessage",
    "Choice",
    "Completion",
    "ContextTooLong",
    "DebateError",
    "DebateFailure",
    "DebateOutcome",
    "DebateResult",
    "DebateSpec",
    "InvalidProtocol",
    "LoRAUpdatingDisabled",
    "ModelNotFound",
    "ReplicaPool",
    "ReplicaState",
    "RetryPolicy",
    "SamplingParams",
    "StrongModelBadResponse",
    "StrongModelClient",
    "StrongModelError",
    "StrongModelUnavailable",
    "TokenLogprob",
    "Turn",
    "TurnRequest",
    "Usage",
    "VLLMAdmin",
    "VLLMUnreachable",
    "next_turns",
    "render_for_weak",
    "request_seed",
    "resolve_targets",
    "run_debate",
    "run_debates",
    "sample_specs",
    "schedule",
    "stream_debates",
]
