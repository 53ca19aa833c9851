"""OpenAI's HTTP wire format: the SDK's entities in, OpenAI JSON out, and back.

OpenAI, the OpenAI-API-compatible servers (vLLM, LM Studio, llama.cpp, gateways...) and
Xinference all speak this format with small differences. The functions here are pure (no I/O
except the two stream readers), and every difference is a field of `Dialect`, so each provider
states its upstream's quirks once instead of copying the code:

    XINFERENCE = Dialect(include_usage=False, completion_done_marker=False)

Requests (what a provider sends):
    `chat_request_body(model, prompt_messages, parameters, tools=..., stop=..., stream=...)`
    builds a `/chat/completions` body (`messages_to_wire`, `tools_to_wire` are its parts);
    `completion_request_body` a legacy `/completions` one; `embeddings_request_body` an
    `/embeddings` one; `response_format_to_wire` turns Dify's `response_format` + `json_schema`
    parameters into OpenAI's object; `auth_headers` the bearer and organization headers.

Answers (what comes back):
    `stream_chat(response, model=...)` / `stream_completion(...)` turn an open SSE response
    (from `providers.sdk.http.open_stream`) into `LLMResultChunk`s, exactly one per upstream
    delta, the moment it arrives. They end at `[DONE]`; a body that ends before it is a cut
    stream (`providers.sdk.http.stream_cut`), unless the dialect says that server sends no
    `[DONE]` (then EOF after a `finish_reason` ends it). An `{"error": ...}` event mid-stream
    raises the InvokeError it means. `events=` reads a stream framed otherwise than SSE (see
    `EventReader`). `ChatStreamParser` / `CompletionStreamParser` are the same per-event logic
    without I/O, for callers that read events themselves.
    `result_from_chat_completion` / `result_from_text_completion` read non-streamed answers;
    `embeddings_from_response` reads embeddings (float lists or base64 little-endian float32),
    ordered by `index`; `usage_from_wire` reads a `usage` object.

Errors:
    `error_check()` is the `check` callback for `providers.sdk.http` calls: it reads any of the
    error body shapes these servers send (`{"error": {message, type, param, code}}`, the flat
    `{"object": "error", "message", "code": <int>}`, FastAPI's `{"detail": ...}`, plain text)
    and raises `error_for_status` with the vendor's message; `insufficient_quota` becomes
    `InvokeQuotaExceededError`. `in_band_error(payload)` classifies an error that arrived
    inside a 200 answer, where no status tells what kind it is.

Streamed usage: the usage of a stream reaches the caller on its last chunk, together with the
finish reason (carried over from the finish chunk when usage comes in a separate `choices: []`
chunk). With `Dialect.finish_reason_on_usage_chunk` the finish chunk is passed on without its
finish reason, so only the last chunk has one; should the usage chunk never come, one last
empty chunk carries the finish reason. Running usage counts on intermediate chunks (vLLM's
continuous usage, Xinference's completions) are remembered rather than forwarded, and put on
the finish chunk.
"""

from __future__ import annotations

import array
import base64
import binascii
import json
import sys
from collections.abc import AsyncIterator, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

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
    MultiModalPromptMessageContent,
    PromptMessage,
    PromptMessageContentType,
    PromptMessageRole,
    PromptMessageTool,
    TextPromptMessageContent,
    ToolCall,
    ToolCallFunction,
    ToolPromptMessage,
)
from providers.sdk.errors import (
    FieldViolation,
    InvalidParameterError,
    InvalidRequestError,
    InvokeAuthorizationError,
    InvokeBadRequestError,
    InvokeError,
    InvokeQuotaExceededError,
    InvokeRateLimitError,
    InvokeServerUnavailableError,
)
from providers.sdk.http import (
    ErrorCheck,
    error_for_status,
    read_error_body,
    sse_events,
    stream_cut,
    upstream_errors,
)

__all__ = [
    "DONE",
    "OPENAI",
    "QUOTA_CODES",
    "ChatStreamParser",
    "CompletionStreamParser",
    "Dialect",
    "EventReader",
    "WireError",
    "auth_headers",
    "chat_request_body",
    "completion_prompt",
    "completion_request_body",
    "content_part_to_wire",
    "decode_base64_embedding",
    "embeddings_from_response",
    "embeddings_request_body",
    "error_check",
    "error_message",
    "in_band_error",
    "message_to_wire",
    "messages_to_wire",
    "parse_error",
    "response_format_to_wire",
    "result_from_chat_completion",
    "result_from_text_completion",
    "sse_data_events",
    "stream_chat",
    "stream_completion",
    "tools_to_wire",
    "usage_from_wire",
]

DONE = "[DONE]"
# Error `type`/`code` values meaning the account's credit or quota is spent: waiting won't help.
QUOTA_CODES = frozenset({"insufficient_quota"})


@dataclass(frozen=True, slots=True)
class Dialect:
    """How one upstream's OpenAI dialect differs from OpenAI's own."""

    # Delta/message fields holding reasoning text, first match wins (DeepSeek and vLLM before
    # 0.11 write `reasoning_content`, newer vLLM and Ollama `reasoning`).
    reasoning_fields: tuple[str, ...] = ("reasoning_content", "reasoning")
    # Send `stream_options.include_usage` so the stream ends with a usage chunk.
    include_usage: bool = True
    # Whether `/chat/completions` and `/completions` streams end with `data: [DONE]`.
    chat_done_marker: bool = True
    completion_done_marker: bool = True
    # Send an image part's `detail` (low/high); some servers reject the key.
    image_detail: bool = True
    # The role a developer message is sent as (servers without the role take "system").
    developer_role: str = "developer"
    # With include_usage: pass the finish chunk on without its finish reason and put it on the
    # usage chunk that follows, so only the last chunk carries it (as the contract says). Off
    # by default because a server that ignores include_usage then needs one extra chunk at the
    # end to carry the finish reason.
    finish_reason_on_usage_chunk: bool = False


OPENAI = Dialect()


# ---- requests ---------------------------------------------------------------------------------


def auth_headers(api_key: str | None, *, organization: str | None = None) -> dict[str, str]:
    """`Authorization: Bearer` (when there is a key) and `OpenAI-Organization` (when given)."""
    headers: dict[str, str] = {}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    if organization:
        headers["OpenAI-Organization"] = organization
    return headers


def chat_request_body(
    model: str,
    prompt_messages: Sequence[PromptMessage],
    parameters: Mapping[str, Any],
    *,
    tools: Sequence[PromptMessageTool] | None = None,
    stop: Sequence[str] | None = None,
    stream: bool,
    user: str | None = None,
    dialect: Dialect = OPENAI,
) -> dict[str, Any]:
    """A `/chat/completions` body. `parameters` go in as they are (already checked against the
    model's rules, already renamed where the upstream wants other names)."""
    body: dict[str, Any] = {
        "model": model,
        "messages": messages_to_wire(prompt_messages, dialect),
        **parameters,
    }
    if tools:
        body["tools"] = tools_to_wire(tools)
    _add_common(body, stop=stop, stream=stream, user=user, dialect=dialect)
    return body


def completion_request_body(
    model: str,
    prompt: str,
    parameters: Mapping[str, Any],
    *,
    stop: Sequence[str] | None = None,
    stream: bool,
    user: str | None = None,
    dialect: Dialect = OPENAI,
) -> dict[str, Any]:
    """A legacy `/completions` body."""
    body: dict[str, Any] = {"model": model, "prompt": prompt, **parameters}
    _add_common(body, stop=stop, stream=stream, user=user, dialect=dialect)
    return body


def _add_common(
    body: dict[str, Any],
    *,
    stop: Sequence[str] | None,
    stream: bool,
    user: str | None,
    dialect: Dialect,
) -> None:
    if stop:
        body["stop"] = list(stop)
    if user:
        body["user"] = user
    if stream:
        body["stream"] = True
        if dialect.include_usage:
            body["stream_options"] = {"include_usage": True}


def completion_prompt(prompt_messages: Sequence[PromptMessage]) -> str:
    """The prompt of a completion-mode call: the messages' texts, one after another."""
    return "\n\n".join(text for m in prompt_messages if (text := m.get_text_content()))


def messages_to_wire(
    prompt_messages: Sequence[PromptMessage], dialect: Dialect = OPENAI
) -> list[dict[str, Any]]:
    return [message_to_wire(message, dialect) for message in prompt_messages]


def message_to_wire(message: PromptMessage, dialect: Dialect = OPENAI) -> dict[str, Any]:
    """One message. Assistant tool calls carry their arguments as a JSON string; a tool result
    names the call it answers."""
    role = message.role.value
    if message.role is PromptMessageRole.DEVELOPER:
        role = dialect.developer_role
    wire: dict[str, Any] = {"role": role}
    if isinstance(message, AssistantPromptMessage) and message.tool_calls:
        wire["content"] = message.get_text_content() or None
        wire["tool_calls"] = [
            {
                "id": call.id,
                "type": call.type or "function",
                "function": {"name": call.function.name, "arguments": call.function.arguments},
            }
            for call in message.tool_calls
        ]
    elif isinstance(message, ToolPromptMessage):
        wire["tool_call_id"] = message.tool_call_id
        wire["content"] = message.get_text_content()
    elif message.role is PromptMessageRole.USER:
        wire["content"] = _content_to_wire(message.content, dialect)
    else:
        # System, developer and assistant turns are text for every server of this family.
        wire["content"] = message.get_text_content()
    if message.name:
        wire["name"] = message.name
    return wire


def _content_to_wire(
    content: str | list[Any] | None, dialect: Dialect
) -> str | list[dict[str, Any]]:
    if content is None or isinstance(content, str):
        return content or ""
    if all(isinstance(part, TextPromptMessageContent) for part in content):
        # Plain text as a string: text-only servers reject part lists.
        return "".join(part.data for part in content)
    return [content_part_to_wire(part, dialect) for part in content]


def content_part_to_wire(
    part: TextPromptMessageContent | MultiModalPromptMessageContent, dialect: Dialect = OPENAI
) -> dict[str, Any]:
    """A content part: text, `image_url` (URL or data URI, with detail), `input_audio`
    (inline base64 only), `file` (a document as a data URI) or `video_url`."""
    if isinstance(part, TextPromptMessageContent):
        return {"type": "text", "text": part.data}
    if part.type is PromptMessageContentType.IMAGE:
        image: dict[str, Any] = {"url": part.data}
        if dialect.image_detail:
            image["detail"] = part.detail.value
        return {"type": "image_url", "image_url": image}
    if part.type is PromptMessageContentType.AUDIO:
        if not part.base64_data:
            raise _part_refused("audio must be sent inline as base64, not by URL")
        audio_format = part.format or part.mime_type.rpartition("/")[2]
        audio_format = {"mpeg": "mp3", "x-wav": "wav"}.get(audio_format, audio_format)
        return {
            "type": "input_audio",
            "input_audio": {"data": part.base64_data, "format": audio_format},
        }
    if part.type is PromptMessageContentType.DOCUMENT:
        if not part.base64_data:
            raise _part_refused("documents must be sent inline as base64, not by URL")
        document: dict[str, Any] = {"file_data": part.data}
        if part.filename:
            document["filename"] = part.filename
        return {"type": "file", "file": document}
    return {"type": "video_url", "video_url": {"url": part.data}}


def _part_refused(reason: str) -> InvalidRequestError:
    return InvalidRequestError([FieldViolation("prompt_messages.content_parts", reason)])


def tools_to_wire(tools: Sequence[PromptMessageTool]) -> list[dict[str, Any]]:
    return [
        {
            "type": "function",
            "function": {
                "name": tool.name,
                "description": tool.description,
                "parameters": tool.parameters or {"type": "object", "properties": {}},
            },
        }
        for tool in tools
    ]


def response_format_to_wire(parameters: Mapping[str, Any]) -> dict[str, Any]:
    """`parameters` with Dify's `response_format` (`text`, `json_object`, `json_schema`) and
    `json_schema` (JSON text: a schema, or `{"name", "schema", "strict"}`) replaced by OpenAI's
    `response_format` object. `text` is the default and is left out."""
    params = dict(parameters)
    kind = params.pop("response_format", None)
    schema_text = params.pop("json_schema", None)
    if kind == "json_object":
        params["response_format"] = {"type": "json_object"}
    elif kind == "json_schema":
        params["response_format"] = {
            "type": "json_schema",
            "json_schema": _json_schema(schema_text),
        }
    elif isinstance(kind, dict):
        params["response_format"] = kind
    return params


def _json_schema(text: Any) -> dict[str, Any]:
    def refused(reason: str) -> InvalidParameterError:
        return InvalidParameterError([FieldViolation("model_parameters.json_schema", reason)])

    if not text:
        raise refused("is required when response_format is json_schema")
    try:
        parsed = json.loads(text) if isinstance(text, str) else text
    except ValueError as exc:
        raise refused(f"is not valid JSON ({exc})") from exc
    if not isinstance(parsed, dict):
        raise refused("must be a JSON object")
    if isinstance(parsed.get("schema"), dict):
        return {"name": "response", **parsed}
    return {"name": "response", "schema": parsed}


def embeddings_request_body(
    model: str,
    texts: Sequence[str],
    *,
    encoding_format: str | None = "base64",
    dimensions: int | None = None,
    user: str | None = None,
) -> dict[str, Any]:
    """An `/embeddings` body. base64 is a quarter of the bytes of float lists (OpenAI's own SDK
    asks for it); pass None for servers that reject the key."""
    body: dict[str, Any] = {"model": model, "input": list(texts)}
    if encoding_format:
        body["encoding_format"] = encoding_format
    if dimensions:
        body["dimensions"] = dimensions
    if user:
        body["user"] = user
    return body


# ---- answers ----------------------------------------------------------------------------------


def usage_from_wire(raw: Any) -> LLMUsage | None:
    """A `usage` object; None when absent or nonsensical (very old servers sent -1)."""
    if not isinstance(raw, dict):
        return None
    prompt = _int(raw.get("prompt_tokens"))
    completion = _int(raw.get("completion_tokens"))
    if prompt < 0 or completion < 0:
        return None
    prompt_details = raw.get("prompt_tokens_details") or {}
    completion_details = raw.get("completion_tokens_details") or {}
    return LLMUsage(
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=_int(raw.get("total_tokens")) or prompt + completion,
        cached_prompt_tokens=_int(prompt_details.get("cached_tokens")),
        reasoning_tokens=_int(completion_details.get("reasoning_tokens")),
    )


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _text(value: Any) -> str:
    """Content as text: a string, or (some servers) a list of text parts."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "".join(p.get("text") or "" for p in value if isinstance(p, dict))
    return ""


def _reasoning(source: Mapping[str, Any], dialect: Dialect) -> str:
    for name in dialect.reasoning_fields:
        if value := source.get(name):
            return _text(value)
    return ""


def _arguments(value: Any) -> str:
    # Some servers send the arguments as an object instead of the JSON string OpenAI sends.
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _first_choice(payload: Mapping[str, Any]) -> dict[str, Any] | None:
    choices = payload.get("choices")
    if not isinstance(choices, list) or not choices:
        return None
    for choice in choices:
        if isinstance(choice, dict) and choice.get("index", 0) == 0:
            return choice
    return None


def _object(payload: Any, what: str) -> dict[str, Any]:
    if not isinstance(payload, dict):
        raise InvokeServerUnavailableError(f"the upstream's {what} is not a JSON object")
    if "error" in payload or payload.get("object") == "error":
        raise in_band_error(payload)
    return payload


def result_from_chat_completion(body: Any, model: str, dialect: Dialect = OPENAI) -> LLMResult:
    """A non-streamed `chat.completion`."""
    payload = _object(body, "answer")
    choice = _first_choice(payload)
    if choice is None:
        raise InvokeServerUnavailableError("the upstream's answer has no choices")
    message = choice.get("message") or {}
    tool_calls = [
        ToolCall(
            id=call.get("id") or "",
            type=call.get("type") or "function",
            function=ToolCallFunction(
                (call.get("function") or {}).get("name") or "",
                _arguments((call.get("function") or {}).get("arguments")),
            ),
        )
        for call in message.get("tool_calls") or ()
        if isinstance(call, dict)
    ]
    return LLMResult(
        model=payload.get("model") or model,
        message=AssistantPromptMessage(
            content=_text(message.get("content")), tool_calls=tool_calls
        ),
        usage=usage_from_wire(payload.get("usage")) or LLMUsage(),
        id=payload.get("id"),
        system_fingerprint=payload.get("system_fingerprint"),
        reasoning_content=_reasoning(message, dialect),
        refusal=message.get("refusal") or "",
        finish_reason=choice.get("finish_reason"),
    )


def result_from_text_completion(body: Any, model: str) -> LLMResult:
    """A non-streamed legacy `text_completion`."""
    payload = _object(body, "answer")
    choice = _first_choice(payload)
    if choice is None:
        raise InvokeServerUnavailableError("the upstream's answer has no choices")
    return LLMResult(
        model=payload.get("model") or model,
        message=AssistantPromptMessage(content=_text(choice.get("text"))),
        usage=usage_from_wire(payload.get("usage")) or LLMUsage(),
        id=payload.get("id"),
        system_fingerprint=payload.get("system_fingerprint"),
        finish_reason=choice.get("finish_reason"),
    )


def decode_base64_embedding(data: str) -> list[float]:
    """A base64 embedding: little-endian float32 values, as OpenAI sends them."""
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvokeServerUnavailableError(
            "the upstream sent an embedding that is not base64"
        ) from exc
    if len(raw) % 4:
        raise InvokeServerUnavailableError(
            f"the upstream sent a base64 embedding of {len(raw)} bytes, not float32 values"
        )
    values = array.array("f")
    values.frombytes(raw)
    if sys.byteorder == "big":
        values.byteswap()
    return values.tolist()


def embeddings_from_response(body: Any) -> tuple[list[list[float]], int]:
    """The vectors of an `/embeddings` answer in input order, and its prompt tokens (0 when
    not reported)."""
    payload = _object(body, "embeddings answer")
    items = payload.get("data")
    if not isinstance(items, list):
        raise InvokeServerUnavailableError("the upstream's embeddings answer has no data list")
    ordered = sorted(
        (item for item in items if isinstance(item, dict)),
        key=lambda item: _int(item.get("index")),
    )
    vectors: list[list[float]] = []
    for item in ordered:
        embedding = item.get("embedding")
        if isinstance(embedding, str):
            vectors.append(decode_base64_embedding(embedding))
        elif isinstance(embedding, list):
            vectors.append([float(value) for value in embedding])
        else:
            raise InvokeServerUnavailableError(
                "the upstream sent an embedding that is not a vector"
            )
    usage = payload.get("usage") or {}
    return vectors, _int(usage.get("prompt_tokens")) or _int(usage.get("total_tokens"))


# ---- streams ----------------------------------------------------------------------------------


class _StreamParser:
    """One stream's state: turns each `data:` payload into at most one chunk."""

    def __init__(self, model: str, *, done_marker: bool, dialect: Dialect) -> None:
        self.model = model
        self.dialect = dialect
        self.done_marker = done_marker
        self.usage_follows = dialect.include_usage and dialect.finish_reason_on_usage_chunk
        self.done = False
        self.finish_reason: str | None = None
        self.finish_sent = False
        self.running_usage: LLMUsage | None = None

    def feed(self, data: str, event: str = "") -> LLMResultChunk | None:
        """The chunk for one event's data; None for `[DONE]` (then `done` is set) and for an
        event that carries neither a choice nor usage. Raises for an in-band error."""
        if data.strip() == DONE:
            self.done = True
            return None
        try:
            payload = json.loads(data)
        except ValueError as exc:
            raise InvokeServerUnavailableError(
                f"the upstream sent a malformed stream event ({exc})"
            ) from exc
        if event == "error":
            raise in_band_error(payload if isinstance(payload, dict) else {"error": payload})
        payload = _object(payload, "stream event")
        usage = usage_from_wire(payload.get("usage"))
        choice = _first_choice(payload)
        if choice is None:
            if usage is None:
                return None
            return self._chunk(payload, AssistantPromptMessageDelta(), usage, self.finish_reason)
        finish_reason = choice.get("finish_reason") or None
        if not finish_reason:
            self.running_usage = usage or self.running_usage
            return self._chunk(payload, self._message(choice), None, None)
        self.finish_reason = finish_reason
        usage = usage or self.running_usage
        if usage is None and self.usage_follows:
            finish_reason = None
        return self._chunk(payload, self._message(choice), usage, finish_reason)

    def end_of_body(self) -> None:
        """Called when the body ended without `[DONE]`: raises unless that is a proper end."""
        if self.done_marker:
            raise stream_cut(DONE)
        if self.finish_reason is None:
            raise stream_cut("finish_reason")

    def unsent_finish(self) -> LLMResultChunk | None:
        """At the end: a chunk with the finish reason held back for a usage chunk that never
        came (a server that ignores include_usage), so it is not lost."""
        if self.finish_reason is None or self.finish_sent:
            return None
        return self._chunk({}, AssistantPromptMessageDelta(), None, self.finish_reason)

    def _chunk(
        self,
        payload: Mapping[str, Any],
        message: AssistantPromptMessageDelta,
        usage: LLMUsage | None,
        finish_reason: str | None,
    ) -> LLMResultChunk:
        self.finish_sent = self.finish_sent or finish_reason is not None
        return LLMResultChunk(
            model=payload.get("model") or self.model,
            system_fingerprint=payload.get("system_fingerprint"),
            delta=LLMResultChunkDelta(message=message, usage=usage, finish_reason=finish_reason),
        )

    def _message(self, choice: Mapping[str, Any]) -> AssistantPromptMessageDelta:
        raise NotImplementedError


class ChatStreamParser(_StreamParser):
    """A `/chat/completions` stream: content, refusal, reasoning and tool-call fragments. Tool
    calls pass through by `index`: id and name on a call's first fragment, argument pieces
    after, several calls side by side in one delta."""

    def __init__(self, model: str, dialect: Dialect = OPENAI) -> None:
        super().__init__(model, done_marker=dialect.chat_done_marker, dialect=dialect)

    def _message(self, choice: Mapping[str, Any]) -> AssistantPromptMessageDelta:
        delta = choice.get("delta") or {}
        return AssistantPromptMessageDelta(
            content=_text(delta.get("content")),
            reasoning_content=_reasoning(delta, self.dialect),
            refusal=delta.get("refusal") or "",
            tool_calls=[
                _tool_call_delta(position, call)
                for position, call in enumerate(delta.get("tool_calls") or ())
                if isinstance(call, dict)
            ],
        )


def _tool_call_delta(position: int, call: Mapping[str, Any]) -> ToolCallDelta:
    function = call.get("function") or {}
    index = call.get("index")
    return ToolCallDelta(
        # A few servers leave out `index` when they send whole calls; their order is the index.
        index=index if isinstance(index, int) else position,
        id=call.get("id") or "",
        type=call.get("type") or "",
        function=ToolCallFunction(
            function.get("name") or "", _arguments(function.get("arguments"))
        ),
    )


class CompletionStreamParser(_StreamParser):
    """A legacy `/completions` stream: text pieces in `choices[0].text`."""

    def __init__(self, model: str, dialect: Dialect = OPENAI) -> None:
        super().__init__(model, done_marker=dialect.completion_done_marker, dialect=dialect)

    def _message(self, choice: Mapping[str, Any]) -> AssistantPromptMessageDelta:
        return AssistantPromptMessageDelta(content=_text(choice.get("text")))


# Reads a stream's events as (data, event name) pairs; the default is SSE (`sse_data_events`).
# A provider whose servers frame their streams another way passes its own reader.
EventReader = Callable[[httpx.Response], AsyncIterator[tuple[str, str]]]


async def sse_data_events(response: httpx.Response) -> AsyncIterator[tuple[str, str]]:
    """The (data, event name) of each SSE event; the name is "" for plain `data:` events."""
    async for event in sse_events(response):
        yield event.data, event.event if event.event != "message" else ""


async def stream_chat(
    response: httpx.Response,
    *,
    model: str,
    dialect: Dialect = OPENAI,
    parser: ChatStreamParser | None = None,
    events: EventReader = sse_data_events,
) -> AsyncIterator[LLMResultChunk]:
    """The chunks of an open `/chat/completions` stream, one per upstream delta. `parser` may
    be a ChatStreamParser subclass that reads more of each delta."""
    parser = parser or ChatStreamParser(model, dialect)
    async for chunk in _stream(response, parser, result_from_chat_completion, events):
        yield chunk


async def stream_completion(
    response: httpx.Response,
    *,
    model: str,
    dialect: Dialect = OPENAI,
    events: EventReader = sse_data_events,
) -> AsyncIterator[LLMResultChunk]:
    """The chunks of an open legacy `/completions` stream, one per upstream delta."""

    def read(body: Any, model: str, dialect: Dialect) -> LLMResult:
        return result_from_text_completion(body, model)

    async for chunk in _stream(response, CompletionStreamParser(model, dialect), read, events):
        yield chunk


async def _stream(
    response: httpx.Response, parser: _StreamParser, read_whole: Any, events: EventReader
) -> AsyncIterator[LLMResultChunk]:
    if _is_json(response):
        # The server ignored `stream` (or reports an error with a 200): one whole answer.
        with upstream_errors():
            body = json.loads(await response.aread())
        yield _whole_answer_chunk(read_whole(body, parser.model, parser.dialect))
        return
    async for data, event in events(response):
        chunk = parser.feed(data, event)
        if chunk is not None:
            yield chunk
        elif parser.done:
            break
    else:
        parser.end_of_body()
    if (last := parser.unsent_finish()) is not None:
        yield last


def _is_json(response: httpx.Response) -> bool:
    return "json" in response.headers.get("content-type", "").partition(";")[0]


def _whole_answer_chunk(result: LLMResult) -> LLMResultChunk:
    message = result.message
    has_usage = bool(result.usage.prompt_tokens or result.usage.total_tokens)
    return LLMResultChunk(
        model=result.model,
        system_fingerprint=result.system_fingerprint,
        delta=LLMResultChunkDelta(
            message=AssistantPromptMessageDelta(
                content=message.get_text_content(),
                reasoning_content=result.reasoning_content,
                refusal=result.refusal,
                tool_calls=[
                    ToolCallDelta(index=i, id=call.id, type=call.type, function=call.function)
                    for i, call in enumerate(message.tool_calls)
                ],
            ),
            usage=result.usage if has_usage else None,
            finish_reason=result.finish_reason or "stop",
        ),
    )


# ---- errors -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WireError:
    """What an error body says, whichever of the family's shapes it came in."""

    message: str
    type: str = ""
    code: str = ""
    param: str = ""
    # The HTTP status the flat `{"object": "error", "code": 400}` shape (vLLM) carries.
    status: int | None = None

    def is_quota(self, quota_codes: Collection[str] = QUOTA_CODES) -> bool:
        return self.type in quota_codes or self.code in quota_codes

    def describe(self) -> str:
        """The message, with the vendor's code (or type) when the message does not say it."""
        label = self.code or self.type
        if label and label not in self.message:
            return f"{self.message} ({label})" if self.message else label
        return self.message


def parse_error(body: Any, text: str = "") -> WireError:
    """Reads `{"error": {message, type, param, code}}`, `{"error": "text"}`, the flat
    `{"object": "error", "message", "type", "param", "code": <int>}`, FastAPI's
    `{"detail": "text" | [{"loc", "msg"}...]}`, and falls back to `text` (a plain body)."""
    if not isinstance(body, dict):
        return WireError(message=text)
    error = body.get("error")
    if isinstance(error, dict):
        return _error_fields(error, text)
    if isinstance(error, str):
        return WireError(message=error)
    if "detail" in body:
        return WireError(message=_detail(body["detail"]) or text)
    if "message" in body:
        return _error_fields(body, text)
    return WireError(message=text)


def error_message(body: Any, text: str = "") -> str:
    """The message of an error body of any of the family's shapes (see `parse_error`), with the
    vendor's code when the message does not say it."""
    return parse_error(body, text).describe()


def _error_fields(fields: Mapping[str, Any], text: str) -> WireError:
    code = fields.get("code")
    status = code if isinstance(code, int) and 400 <= code < 600 else None
    return WireError(
        message=str(fields.get("message") or "") or text,
        type=str(fields.get("type") or ""),
        code="" if code is None or status is not None else str(code),
        param=str(fields.get("param") or ""),
        status=status,
    )


def _detail(detail: Any) -> str:
    if isinstance(detail, list):
        return "; ".join(_detail_item(item) for item in detail)
    return detail if isinstance(detail, str) else json.dumps(detail)


def _detail_item(item: Any) -> str:
    if not isinstance(item, dict):
        return str(item)
    location = ".".join(str(part) for part in item.get("loc") or ())
    message = str(item.get("msg") or "")
    return f"{location}: {message}" if location else message


def error_check(quota_codes: Collection[str] = QUOTA_CODES) -> ErrorCheck:
    """The `check` callback for `providers.sdk.http`: raises the InvokeError a non-2xx answer
    means, quoting the vendor's message (`quota_codes` mark a spent quota)."""

    async def check(response: httpx.Response) -> None:
        body, text = await read_error_body(response)
        error = parse_error(body, text)
        raise error_for_status(
            response.status_code,
            error.describe(),
            response.headers,
            quota=error.is_quota(quota_codes),
        )

    return check


# Error `type`/`code` words that say what kind of failure an in-band error (no status) is.
_IN_BAND_KINDS: dict[str, type[InvokeError]] = {
    "rate_limit_exceeded": InvokeRateLimitError,
    "rate_limit_error": InvokeRateLimitError,
    "invalid_request_error": InvokeBadRequestError,
    "context_length_exceeded": InvokeBadRequestError,
    "BadRequestError": InvokeBadRequestError,
    "authentication_error": InvokeAuthorizationError,
    "invalid_api_key": InvokeAuthorizationError,
    "permission_error": InvokeAuthorizationError,
}


def in_band_error(payload: Any, quota_codes: Collection[str] = QUOTA_CODES) -> InvokeError:
    """The InvokeError for an error that came inside a 200 answer (a stream event or a JSON
    body). Without a status, the flat shape's `code`, then the vendor's type/code words decide;
    anything else is the upstream failing mid-answer (server unavailable)."""
    error = parse_error(payload, json.dumps(payload) if not isinstance(payload, str) else payload)
    message = f"the upstream reported an error mid-answer: {error.describe() or 'no message'}"
    if error.is_quota(quota_codes):
        return InvokeQuotaExceededError(message)
    if error.status is not None:
        return error_for_status(error.status, error.describe(), {}, quota=False)
    kind = _IN_BAND_KINDS.get(error.code) or _IN_BAND_KINDS.get(error.type)
    if kind is None and "rate limit" in error.message.lower():
        kind = InvokeRateLimitError
    return (kind or InvokeServerUnavailableError)(message)
