"""Claude over Anthropic's Messages API: streamed and whole answers, tool use, vision, PDFs,
extended thinking whose signed blocks survive a tool loop, and token counting.

A stream is `event:` + `data:` pairs: `message_start` (input usage), per content block
`content_block_start` / `content_block_delta`... / `content_block_stop`, then `message_delta`
(stop reason and CUMULATIVE usage) and `message_stop`, the only proof the answer is complete.
Each text, thinking or tool-input delta becomes one chunk the moment it arrives; the closing
chunk, sent at `message_stop`, carries the usage, the finish reason and the thinking blocks
(`opaque_body`) the caller must send back with its next turn.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx

from providers.anthropic.api import (
    API_KEY,
    COUNT_TOKENS_PATH,
    MESSAGES_PATH,
    MODELS_PATH,
    Connection,
    check_response,
    error_from_event,
)
from providers.anthropic.messages import THINKING_BLOCKS_KEY, messages_body, request_body
from providers.sdk.entities.llm import (
    AssistantPromptMessageDelta,
    LLMResult,
    LLMResultChunk,
    LLMResultChunkDelta,
    LLMUsage,
    ToolCallDelta,
)
from providers.sdk.entities.message import (
    AssistantPromptMessage,
    PromptMessage,
    PromptMessageTool,
    ToolCall,
    ToolCallFunction,
)
from providers.sdk.entities.schema import AIModelEntity, FetchFrom, I18nObject, ParameterRule
from providers.sdk.errors import (
    CredentialsValidateFailedError,
    InvokeAuthorizationError,
    InvokeBadRequestError,
    InvokeConnectionError,
    InvokeError,
    InvokeServerUnavailableError,
)
from providers.sdk.http import (
    ServerSentEvent,
    open_stream,
    request,
    request_json,
    sse_events,
    stream_cut,
)
from providers.sdk.model_types import LargeLanguageModel
from providers.sdk.model_types.ai_model import Credentials
from providers.sdk.model_types.large_language_model import estimate_prompt_tokens

logger = logging.getLogger(__name__)

# `stop_reason` -> the runtime's finish reason; others (`pause_turn`) pass through as they are.
FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}

# A model name the YAML files do not know borrows this model's rules, with a max_tokens default
# any Claude model accepts.
CUSTOMIZABLE_TEMPLATE = "claude-sonnet-4-5-20250929"
CUSTOMIZABLE_MAX_TOKENS = ParameterRule.of(
    "max_tokens", use_template="max_tokens", required=True, default=4096, min=1, max=128000
)

# How long to wait for the body's end after `message_stop` before giving the connection up.
DRAIN_SECONDS = 1.0

# A one-token question, for proving credentials when the models list cannot.
_PROBE_BODY = {"max_tokens": 1, "messages": [{"role": "user", "content": "ping"}]}


@dataclass(slots=True)
class _ToolUse:
    """A streamed tool_use block: its id and name go out with its first input fragment."""

    id: str
    name: str
    announced: bool = False
    has_input: bool = False


@dataclass(slots=True)
class _Thinking:
    """A streamed thinking block, rebuilt exactly: it must go back to the API unchanged."""

    block: dict[str, Any]
    pieces: list[str] = field(default_factory=list)


class _ModelNotListed(Exception):
    """GET /v1/models/{id} answered 404: an unknown model, or a gateway without that list."""


class AnthropicLargeLanguageModel(LargeLanguageModel):
    async def _invoke(
        self,
        model: str,
        credentials: Credentials,
        prompt_messages: list[PromptMessage],
        model_parameters: dict[str, Any],
        tools: list[PromptMessageTool] | None = None,
        stop: list[str] | None = None,
        stream: bool = True,
        user: str | None = None,
    ) -> LLMResult | AsyncIterator[LLMResultChunk]:
        body, betas = request_body(model, prompt_messages, model_parameters, tools, stop, user)
        body["stream"] = stream
        connection = Connection(credentials, betas)
        if stream:
            return self._stream(connection, body)
        message = await request_json(
            connection.client,
            "POST",
            MESSAGES_PATH,
            json=body,
            headers=connection.headers,
            check=check_response,
        )
        return _result(model, message)

    async def _stream(
        self, connection: Connection, body: dict[str, Any]
    ) -> AsyncIterator[LLMResultChunk]:
        tool_uses: dict[int, _ToolUse] = {}
        thinking: dict[int, _Thinking] = {}
        kept: dict[int, dict[str, Any]] = {}  # thinking blocks to send back, by block index
        usage: dict[str, int] = {}
        stop_reason: str | None = None
        async with open_stream(
            connection.client,
            "POST",
            MESSAGES_PATH,
            json=body,
            headers=connection.headers,
            check=check_response,
        ) as response:
            events = sse_events(response)
            async for event in events:
                data = json.loads(event.data)
                if not isinstance(data, dict):
                    raise _unreadable(event.event)
                kind = data.get("type") or event.event
                if kind == "content_block_delta":
                    index = data.get("index", 0)
                    delta = data.get("delta") or {}
                    delta_type = delta.get("type")
                    if delta_type == "text_delta":
                        yield _chunk(AssistantPromptMessageDelta(content=delta.get("text", "")))
                    elif delta_type == "input_json_delta":
                        # Server tools' blocks (never requested here) stream input too.
                        tool_use = tool_uses.get(index)
                        if tool_use is not None:
                            fragment = delta.get("partial_json", "")
                            tool_use.has_input = tool_use.has_input or bool(fragment)
                            yield _chunk(_tool_delta(index, tool_use, fragment))
                    elif delta_type == "thinking_delta":
                        text = delta.get("thinking", "")
                        block = thinking.get(index)
                        if block is not None:
                            block.pieces.append(text)
                        yield _chunk(AssistantPromptMessageDelta(reasoning_content=text))
                    elif delta_type == "signature_delta":
                        block = thinking.get(index)
                        if block is not None:
                            block.block["signature"] = delta.get("signature", "")
                    # citations_delta and newer kinds carry nothing the contract has a place for.
                elif kind == "content_block_start":
                    index = data.get("index", 0)
                    start = data.get("content_block") or {}
                    block_type = start.get("type")
                    if block_type == "text":
                        if start.get("text"):
                            yield _chunk(AssistantPromptMessageDelta(content=start["text"]))
                    elif block_type == "tool_use":
                        tool_uses[index] = _ToolUse(start.get("id", ""), start.get("name", ""))
                    elif block_type == "thinking":
                        opened = _Thinking({**start, "thinking": "", "signature": ""})
                        thinking[index] = opened
                        kept[index] = opened.block
                        if start.get("signature"):
                            opened.block["signature"] = start["signature"]
                        if start.get("thinking"):
                            opened.pieces.append(start["thinking"])
                            yield _chunk(
                                AssistantPromptMessageDelta(reasoning_content=start["thinking"])
                            )
                    elif block_type == "redacted_thinking":
                        kept[index] = start
                elif kind == "content_block_stop":
                    index = data.get("index", 0)
                    tool_use = tool_uses.get(index)
                    if tool_use is not None and not tool_use.has_input:
                        # A call without arguments streams no fragment: its input is {}.
                        yield _chunk(_tool_delta(index, tool_use, "{}"))
                    finished = thinking.pop(index, None)
                    if finished is not None:
                        finished.block["thinking"] = "".join(finished.pieces)
                elif kind == "message_start":
                    _take_usage(usage, (data.get("message") or {}).get("usage"))
                elif kind == "message_delta":
                    stop_reason = (data.get("delta") or {}).get("stop_reason") or stop_reason
                    _take_usage(usage, data.get("usage"))
                elif kind == "message_stop":
                    yield LLMResultChunk(
                        model="",
                        delta=LLMResultChunkDelta(
                            message=AssistantPromptMessageDelta(
                                opaque_body=_opaque_body([kept[i] for i in sorted(kept)])
                            ),
                            usage=_usage(usage),
                            finish_reason=_finish_reason(stop_reason),
                        ),
                    )
                    await _drain(events)
                    return
                elif kind == "error":
                    raise error_from_event(data)
                # `ping` and event types added after this adapter was written are skipped.
        raise stream_cut("message_stop")

    async def get_num_tokens(
        self,
        model: str,
        credentials: Credentials,
        prompt_messages: list[PromptMessage],
        tools: list[PromptMessageTool] | None = None,
    ) -> int:
        """Anthropic's count_tokens endpoint when there is a key and it answers; the offline
        estimate otherwise. Never on a call's path: streams and answers carry their usage."""
        if credentials.get(API_KEY):
            connection = Connection(credentials)
            try:
                counted = await request_json(
                    connection.client,
                    "POST",
                    COUNT_TOKENS_PATH,
                    json=messages_body(model, prompt_messages, tools),
                    headers=connection.headers,
                    check=check_response,
                )
                return int(counted["input_tokens"])
            except (InvokeError, KeyError, TypeError, ValueError) as exc:
                logger.debug("count_tokens failed, estimating offline instead: %s", exc)
        return estimate_prompt_tokens(self._get_num_tokens_by_gpt2, prompt_messages, tools)

    async def validate_credentials(self, model: str, credentials: Credentials) -> None:
        """Asks for the model's entry in the models list, which costs nothing; a gateway without
        that list (or a model missing from it) gets a one-token question instead."""
        connection = Connection(credentials)
        try:
            try:
                await request(
                    connection.client,
                    "GET",
                    f"{MODELS_PATH}/{quote(model, safe='')}",
                    headers=connection.headers,
                    check=_models_check,
                )
                return
            except _ModelNotListed:
                pass
            await request(
                connection.client,
                "POST",
                MESSAGES_PATH,
                json={"model": model, **_PROBE_BODY},
                headers=connection.headers,
                check=check_response,
            )
        except InvokeAuthorizationError as exc:
            raise CredentialsValidateFailedError(
                f"Anthropic refused the API key ({exc}); check anthropic_api_key"
            ) from exc
        except InvokeConnectionError as exc:
            raise InvokeConnectionError(
                f"could not reach the Anthropic API at {connection.base_url} ({exc}); "
                "check anthropic_api_url"
            ) from exc
        except InvokeBadRequestError as exc:
            raise CredentialsValidateFailedError(
                f"{connection.base_url} did not accept a one-token request to {model} ({exc}); "
                "check the model name and anthropic_api_url"
            ) from exc

    def get_customizable_model_schema(
        self, model: str, credentials: Credentials
    ) -> AIModelEntity | None:
        template = self.predefined_models[CUSTOMIZABLE_TEMPLATE]
        rules = [
            CUSTOMIZABLE_MAX_TOKENS if rule.name == "max_tokens" else rule
            for rule in template.parameter_rules
        ]
        return template.model_copy(
            update={
                "model": model,
                "label": I18nObject(en_US=model),
                "fetch_from": FetchFrom.CUSTOMIZABLE_MODEL,
                "parameter_rules": rules,
                # Unknown models have unknown prices.
                "pricing": None,
            }
        )


async def _drain(events: AsyncIterator[ServerSentEvent]) -> None:
    """Reads what follows `message_stop` (normally just the body's end), so the connection goes
    back to the pool for the next call: httpx closes a connection whose body was left unread.
    Briefly, and quietly: the answer is already complete."""
    with contextlib.suppress(InvokeError, TimeoutError):
        async with asyncio.timeout(DRAIN_SECONDS):
            async for _ in events:
                pass


async def _models_check(response: httpx.Response) -> None:
    if response.status_code == 404:
        raise _ModelNotListed
    await check_response(response)


def _chunk(message: AssistantPromptMessageDelta) -> LLMResultChunk:
    return LLMResultChunk(model="", delta=LLMResultChunkDelta(message=message))


def _tool_delta(index: int, tool_use: _ToolUse, arguments: str) -> AssistantPromptMessageDelta:
    if tool_use.announced:
        call = ToolCallDelta(index=index, function=ToolCallFunction("", arguments))
    else:
        tool_use.announced = True
        call = ToolCallDelta(
            index=index,
            id=tool_use.id,
            type="function",
            function=ToolCallFunction(tool_use.name, arguments),
        )
    return AssistantPromptMessageDelta(tool_calls=[call])


def _take_usage(usage: dict[str, int], reported: Any) -> None:
    # Counts are cumulative: a later report replaces an earlier one, never adds to it.
    if isinstance(reported, dict):
        usage.update(
            (key, value)
            for key, value in reported.items()
            if isinstance(value, int) and not isinstance(value, bool)
        )


def _usage(usage: dict[str, int]) -> LLMUsage:
    cache_read = usage.get("cache_read_input_tokens", 0)
    return LLMUsage(
        # Cached tokens are input too: the API reports them apart from `input_tokens`.
        prompt_tokens=usage.get("input_tokens", 0)
        + usage.get("cache_creation_input_tokens", 0)
        + cache_read,
        completion_tokens=usage.get("output_tokens", 0),
        cached_prompt_tokens=cache_read,
    )


def _finish_reason(stop_reason: str | None) -> str:
    if not stop_reason:
        return "stop"
    return FINISH_REASONS.get(stop_reason, stop_reason)


def _opaque_body(blocks: list[dict[str, Any]]) -> dict[str, Any] | None:
    return {THINKING_BLOCKS_KEY: blocks} if blocks else None


def _unreadable(what: str) -> InvokeServerUnavailableError:
    return InvokeServerUnavailableError(
        f"the upstream sent an event this adapter cannot read: {what}"
    )


def _result(model: str, message: Any) -> LLMResult:
    """A whole answer from a Message object."""
    if not isinstance(message, dict):
        raise InvokeServerUnavailableError("the upstream answered with something not a message")
    if message.get("type") == "error":
        raise error_from_event(message)
    text: list[str] = []
    reasoning: list[str] = []
    calls: list[ToolCall] = []
    kept: list[dict[str, Any]] = []
    for block in message.get("content") or ():
        block_type = block.get("type") if isinstance(block, dict) else None
        if block_type == "text":
            text.append(block.get("text", ""))
        elif block_type == "tool_use":
            arguments = json.dumps(block.get("input") or {}, ensure_ascii=False)
            calls.append(
                ToolCall(
                    id=block.get("id", ""),
                    function=ToolCallFunction(block.get("name", ""), arguments),
                )
            )
        elif block_type == "thinking":
            reasoning.append(block.get("thinking", ""))
            kept.append(block)
        elif block_type == "redacted_thinking":
            kept.append(block)
    usage: dict[str, int] = {}
    _take_usage(usage, message.get("usage"))
    return LLMResult(
        model=model,
        id=message.get("id"),
        message=AssistantPromptMessage(
            content="".join(text), tool_calls=calls, opaque_body=_opaque_body(kept)
        ),
        usage=_usage(usage),
        reasoning_content="".join(reasoning),
        finish_reason=_finish_reason(message.get("stop_reason")),
    )
