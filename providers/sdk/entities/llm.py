"""LLM results: whole answers, streamed chunks and usage (the seed's `llm_entities`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Any

from providers.sdk.entities.message import AssistantPromptMessage, ToolCallFunction


class LLMMode(StrEnum):
    COMPLETION = "completion"
    CHAT = "chat"


_ZERO = Decimal(0)


@dataclass(slots=True, kw_only=True)
class LLMUsage:
    """Token counts, prices and timing. Prices are Decimals: tokens × unit price × price unit."""

    prompt_tokens: int = 0
    prompt_unit_price: Decimal = _ZERO
    prompt_price_unit: Decimal = _ZERO
    prompt_price: Decimal = _ZERO
    completion_tokens: int = 0
    completion_unit_price: Decimal = _ZERO
    completion_price_unit: Decimal = _ZERO
    completion_price: Decimal = _ZERO
    total_tokens: int = 0
    total_price: Decimal = _ZERO
    currency: str = "USD"
    latency: float = 0.0
    time_to_first_token: float = 0.0
    time_to_generate: float = 0.0
    cached_prompt_tokens: int = 0
    reasoning_tokens: int = 0

    @classmethod
    def empty_usage(cls) -> LLMUsage:
        return cls()


@dataclass(slots=True, kw_only=True)
class ToolCallDelta:
    """A fragment of a streamed tool call; fragments with one `index` form one call."""

    index: int
    id: str = ""
    type: str = ""
    function: ToolCallFunction = field(default_factory=lambda: ToolCallFunction("", ""))


@dataclass(slots=True, kw_only=True)
class AssistantPromptMessageDelta:
    """The new piece of an answer in one chunk; every field holds only what is new."""

    content: str = ""
    tool_calls: list[ToolCallDelta] = field(default_factory=list)
    reasoning_content: str = ""
    refusal: str = ""
    opaque_body: dict[str, Any] | None = None

    def has_output(self) -> bool:
        return bool(self.content or self.tool_calls or self.reasoning_content or self.refusal)


@dataclass(slots=True, kw_only=True)
class LLMResultChunkDelta:
    index: int = 0
    message: AssistantPromptMessageDelta = field(default_factory=AssistantPromptMessageDelta)
    # Set on the last chunk only.
    usage: LLMUsage | None = None
    finish_reason: str | None = None


@dataclass(slots=True, kw_only=True)
class LLMResultChunk:
    """One upstream delta. Unlike the seed's, it does not repeat the prompt messages."""

    model: str
    delta: LLMResultChunkDelta
    system_fingerprint: str | None = None


@dataclass(slots=True, kw_only=True)
class LLMResult:
    model: str
    message: AssistantPromptMessage
    usage: LLMUsage = field(default_factory=LLMUsage)
    id: str | None = None
    system_fingerprint: str | None = None
    reasoning_content: str = ""
    refusal: str = ""
    finish_reason: str | None = None
