"""Plain Python values -> request protos, and streamed chunks -> one answer.

Every converter also accepts the proto it produces, unchanged, so callers can mix dicts and
protos. Mistakes in the values (an unknown key, a wrong type) raise `TypeError` or `ValueError`
here, before any call is made; they are programming errors, not `ModelRuntimeError`s.
"""

from __future__ import annotations

import base64
import dataclasses
import json
from collections.abc import AsyncIterable, Iterable, Mapping, Sequence
from typing import Any, Final, TypeAlias

from google.protobuf import struct_pb2

from modelruntime.v1 import llm_pb2, model_runtime_service_pb2, schema_pb2, value_pb2

ParameterInput: TypeAlias = bool | int | float | str | value_pb2.ParameterValue
ContentPartInput: TypeAlias = str | llm_pb2.PromptMessageContent | Mapping[str, Any]
ContentInput: TypeAlias = str | Sequence[ContentPartInput]
ToolCallInput: TypeAlias = llm_pb2.ToolCall | Mapping[str, Any]
PromptMessageInput: TypeAlias = llm_pb2.PromptMessage | Mapping[str, Any]
# A bare string is one user message.
PromptMessagesInput: TypeAlias = str | Iterable[PromptMessageInput]
ToolInput: TypeAlias = llm_pb2.PromptMessageTool | Mapping[str, Any]
ModelTypeInput: TypeAlias = str | schema_pb2.ModelType.ValueType
EmbeddingInputTypeInput: TypeAlias = str | model_runtime_service_pb2.EmbeddingInputType.ValueType

_ROLES: Final[Mapping[str, llm_pb2.PromptMessageRole.ValueType]] = {
    "system": llm_pb2.PROMPT_MESSAGE_ROLE_SYSTEM,
    "user": llm_pb2.PROMPT_MESSAGE_ROLE_USER,
    "assistant": llm_pb2.PROMPT_MESSAGE_ROLE_ASSISTANT,
    "tool": llm_pb2.PROMPT_MESSAGE_ROLE_TOOL,
    "developer": llm_pb2.PROMPT_MESSAGE_ROLE_DEVELOPER,
}
_MODEL_TYPES: Final[Mapping[str, schema_pb2.ModelType.ValueType]] = {
    "llm": schema_pb2.MODEL_TYPE_LLM,
    "text-embedding": schema_pb2.MODEL_TYPE_TEXT_EMBEDDING,
    "text_embedding": schema_pb2.MODEL_TYPE_TEXT_EMBEDDING,
    "rerank": schema_pb2.MODEL_TYPE_RERANK,
    "speech2text": schema_pb2.MODEL_TYPE_SPEECH2TEXT,
    "tts": schema_pb2.MODEL_TYPE_TTS,
    "moderation": schema_pb2.MODEL_TYPE_MODERATION,
}
_EMBEDDING_INPUT_TYPES: Final[
    Mapping[str, model_runtime_service_pb2.EmbeddingInputType.ValueType]
] = {
    "document": model_runtime_service_pb2.EMBEDDING_INPUT_TYPE_DOCUMENT,
    "query": model_runtime_service_pb2.EMBEDDING_INPUT_TYPE_QUERY,
}
_IMAGE_DETAILS: Final[Mapping[str, llm_pb2.ImageDetail.ValueType]] = {
    "low": llm_pb2.IMAGE_DETAIL_LOW,
    "high": llm_pb2.IMAGE_DETAIL_HIGH,
}
_MEDIA_TYPES: Final = frozenset({"image", "audio", "video", "document"})
_MESSAGE_KEYS: Final = frozenset(
    {"role", "content", "name", "tool_calls", "tool_call_id", "opaque_body"}
)
_MEDIA_KEYS: Final = frozenset(
    {"type", "url", "base64_data", "data", "mime_type", "format", "filename", "detail"}
)
_TOOL_KEYS: Final = frozenset({"name", "description", "parameters"})


def _lookup(table: Mapping[str, Any], value: str, what: str) -> Any:
    try:
        return table[value]
    except KeyError:
        allowed = ", ".join(repr(name) for name in table)
        raise ValueError(f"unknown {what} {value!r}; expected one of {allowed}") from None


def _check_keys(data: Mapping[str, Any], allowed: frozenset[str], where: str) -> None:
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise ValueError(
            f"{where}: unknown key(s) {', '.join(map(repr, unknown))}; "
            f"expected some of {', '.join(map(repr, sorted(allowed)))}"
        )


def to_model_type(value: ModelTypeInput) -> schema_pb2.ModelType.ValueType:
    """`"llm"`, `"text-embedding"` (or `"text_embedding"`), `"rerank"`, `"speech2text"`,
    `"tts"`, `"moderation"`, or a `ModelType` value."""
    if isinstance(value, str):
        model_type: schema_pb2.ModelType.ValueType = _lookup(_MODEL_TYPES, value, "model type")
        return model_type
    return value


def _to_embedding_input_type(
    value: EmbeddingInputTypeInput,
) -> model_runtime_service_pb2.EmbeddingInputType.ValueType:
    """`"document"`, `"query"`, or an `EmbeddingInputType` value."""
    if isinstance(value, str):
        input_type: model_runtime_service_pb2.EmbeddingInputType.ValueType = _lookup(
            _EMBEDDING_INPUT_TYPES, value, "embedding input type"
        )
        return input_type
    return value


def _to_struct(value: Mapping[str, Any] | struct_pb2.Struct, where: str) -> struct_pb2.Struct:
    if isinstance(value, struct_pb2.Struct):
        return value
    if not isinstance(value, Mapping):
        raise TypeError(f"{where} must be a dict (a JSON object), not {type(value).__name__}")
    struct = struct_pb2.Struct()
    try:
        struct.update(value)
    except ValueError as exc:
        raise TypeError(f"{where} must hold only JSON values: {exc}") from exc
    return struct


def _to_parameter_value(name: str, value: ParameterInput) -> value_pb2.ParameterValue:
    if isinstance(value, value_pb2.ParameterValue):
        return value
    # bool before int: bool is a subclass of int, and True must not become int_value 1.
    if isinstance(value, bool):
        return value_pb2.ParameterValue(bool_value=value)
    if isinstance(value, int):
        try:
            return value_pb2.ParameterValue(int_value=value)
        except ValueError:
            raise ValueError(
                f"model parameter {name!r}: {value} does not fit in a 64-bit integer"
            ) from None
    if isinstance(value, float):
        return value_pb2.ParameterValue(float_value=value)
    if isinstance(value, str):
        return value_pb2.ParameterValue(string_value=value)
    raise TypeError(
        f"model parameter {name!r} must be a bool, int, float or str, not {type(value).__name__}"
    )


def to_model_parameters(
    parameters: Mapping[str, ParameterInput] | None,
) -> dict[str, value_pb2.ParameterValue]:
    """`{"temperature": 0.2, "max_tokens": 100, "stream": True, "format": "json"}` -> proto map."""
    if parameters is None:
        return {}
    return {name: _to_parameter_value(name, value) for name, value in parameters.items()}


def _to_content_part(
    part: ContentPartInput, where: str = "content part"
) -> llm_pb2.PromptMessageContent:
    """A str, `{"type": "text", "text": ...}`, or a media dict such as
    `{"type": "image", "url": ..., "mime_type": "image/png", "detail": "high"}`.

    A media dict takes its source from exactly one of `url`, `base64_data` (a str) or `data`
    (raw bytes, encoded here); `detail` (`"low"`/`"high"`) is for images only.
    """
    if isinstance(part, llm_pb2.PromptMessageContent):
        return part
    if isinstance(part, str):
        return llm_pb2.PromptMessageContent(text=part)
    if not isinstance(part, Mapping):
        raise TypeError(f"{where} must be a str or a dict, not {type(part).__name__}")
    kind = part.get("type")
    if kind == "text":
        _check_keys(part, frozenset({"type", "text"}), where)
        if not isinstance(part.get("text"), str):
            raise TypeError(f"{where}: a text part needs 'text' as a str")
        return llm_pb2.PromptMessageContent(text=part["text"])
    if kind not in _MEDIA_TYPES:
        raise ValueError(
            f"{where}: 'type' must be one of 'text', 'image', 'audio', 'video', 'document', "
            f"not {kind!r}"
        )
    _check_keys(part, _MEDIA_KEYS, where)
    sources = [key for key in ("url", "base64_data", "data") if part.get(key) is not None]
    if len(sources) != 1:
        raise ValueError(f"{where}: give exactly one of 'url', 'base64_data' or 'data'")
    media = llm_pb2.MediaContent(
        mime_type=part.get("mime_type", ""),
        format=part.get("format", ""),
        filename=part.get("filename", ""),
    )
    if sources[0] == "url":
        media.url = part["url"]
    elif sources[0] == "base64_data":
        media.base64_data = part["base64_data"]
    else:
        media.base64_data = base64.b64encode(part["data"]).decode("ascii")
    detail = part.get("detail")
    if detail is not None:
        if kind != "image":
            raise ValueError(f"{where}: 'detail' applies to images only")
        media.detail = (
            _lookup(_IMAGE_DETAILS, detail, "image detail") if isinstance(detail, str) else detail
        )
    content = llm_pb2.PromptMessageContent()
    getattr(content, kind).CopyFrom(media)
    return content


def _to_tool_call(call: ToolCallInput, where: str = "tool call") -> llm_pb2.ToolCall:
    """`{"id": ..., "type": "function", "function": {"name": ..., "arguments": ...}}`.

    `arguments` may be a JSON string or a dict (JSON-encoded here); `type` defaults to
    `"function"`.
    """
    if isinstance(call, llm_pb2.ToolCall):
        return call
    if not isinstance(call, Mapping):
        raise TypeError(f"{where} must be a dict, not {type(call).__name__}")
    _check_keys(call, frozenset({"id", "type", "function"}), where)
    function = call.get("function") or {}
    _check_keys(function, frozenset({"name", "arguments"}), f"{where}.function")
    arguments = function.get("arguments", "")
    if isinstance(arguments, Mapping):
        arguments = json.dumps(arguments, ensure_ascii=False)
    return llm_pb2.ToolCall(
        id=call.get("id", ""),
        type=call.get("type") or "function",
        function=llm_pb2.ToolCallFunction(name=function.get("name", ""), arguments=arguments),
    )


def _fill_content(message: llm_pb2.PromptMessage, content: ContentInput | None, where: str) -> None:
    if content is None:
        return
    if isinstance(content, str):
        message.content = content
        return
    if isinstance(content, Mapping | bytes | llm_pb2.PromptMessageContent):
        raise TypeError(f"{where}.content must be a str or a list of parts, not one part")
    message.content_parts.extend(
        _to_content_part(part, f"{where}.content[{i}]") for i, part in enumerate(content)
    )


def _message(
    role: llm_pb2.PromptMessageRole.ValueType,
    content: ContentInput | None,
    *,
    name: str = "",
    tool_calls: Iterable[ToolCallInput] = (),
    tool_call_id: str = "",
    opaque_body: Mapping[str, Any] | struct_pb2.Struct | None = None,
    where: str = "prompt message",
) -> llm_pb2.PromptMessage:
    message = llm_pb2.PromptMessage(role=role, name=name, tool_call_id=tool_call_id)
    _fill_content(message, content, where)
    message.tool_calls.extend(
        _to_tool_call(call, f"{where}.tool_calls[{i}]") for i, call in enumerate(tool_calls)
    )
    if opaque_body is not None:
        message.opaque_body.CopyFrom(_to_struct(opaque_body, f"{where}.opaque_body"))
    return message


def _to_prompt_message(
    message: PromptMessageInput, where: str = "prompt message"
) -> llm_pb2.PromptMessage:
    """`{"role": "user", "content": "hi"}`; `content` may be a list of parts (see
    `_to_content_part`); also `name`, `tool_calls` (assistant), `tool_call_id` (tool) and
    `opaque_body` (assistant)."""
    if isinstance(message, llm_pb2.PromptMessage):
        return message
    if not isinstance(message, Mapping):
        raise TypeError(
            f"{where} must be a str, dict or PromptMessage, not {type(message).__name__}"
        )
    _check_keys(message, _MESSAGE_KEYS, where)
    if "role" not in message:
        raise ValueError(f"{where}: missing 'role'")
    role = message["role"]
    return _message(
        _lookup(_ROLES, role, "role") if isinstance(role, str) else role,
        message.get("content"),
        name=message.get("name") or "",
        tool_calls=message.get("tool_calls") or (),
        tool_call_id=message.get("tool_call_id") or "",
        opaque_body=message.get("opaque_body"),
        where=where,
    )


def to_prompt_messages(messages: PromptMessagesInput) -> list[llm_pb2.PromptMessage]:
    if isinstance(messages, str):
        return [user_message(messages)]
    if isinstance(messages, Mapping | llm_pb2.PromptMessage):
        raise TypeError("prompt_messages must be a list of messages (or a str), not one message")
    return [_to_prompt_message(m, f"prompt_messages[{i}]") for i, m in enumerate(messages)]


def _to_tool(tool: ToolInput, where: str = "tool") -> llm_pb2.PromptMessageTool:
    """`{"name": ..., "description": ..., "parameters": {JSON schema}}`, or the OpenAI shape
    `{"type": "function", "function": {...the same...}}`."""
    if isinstance(tool, llm_pb2.PromptMessageTool):
        return tool
    if not isinstance(tool, Mapping):
        raise TypeError(f"{where} must be a dict or PromptMessageTool, not {type(tool).__name__}")
    spec: Mapping[str, Any] = tool
    if tool.get("type") == "function" and isinstance(tool.get("function"), Mapping):
        _check_keys(tool, frozenset({"type", "function"}), where)
        spec = tool["function"]
    _check_keys(spec, _TOOL_KEYS, where)
    result = llm_pb2.PromptMessageTool(
        name=spec.get("name", ""), description=spec.get("description", "")
    )
    parameters = spec.get("parameters")
    if parameters is not None:
        result.parameters.CopyFrom(_to_struct(parameters, f"{where}.parameters"))
    return result


def to_tools(tools: Iterable[ToolInput] | None) -> list[llm_pb2.PromptMessageTool]:
    return [_to_tool(tool, f"tools[{i}]") for i, tool in enumerate(tools or ())]


def system_message(content: ContentInput, *, name: str = "") -> llm_pb2.PromptMessage:
    return _message(llm_pb2.PROMPT_MESSAGE_ROLE_SYSTEM, content, name=name)


def developer_message(content: ContentInput, *, name: str = "") -> llm_pb2.PromptMessage:
    return _message(llm_pb2.PROMPT_MESSAGE_ROLE_DEVELOPER, content, name=name)


def user_message(content: ContentInput, *, name: str = "") -> llm_pb2.PromptMessage:
    return _message(llm_pb2.PROMPT_MESSAGE_ROLE_USER, content, name=name)


def assistant_message(
    content: ContentInput = "",
    *,
    tool_calls: Iterable[ToolCallInput] = (),
    opaque_body: Mapping[str, Any] | struct_pb2.Struct | None = None,
    name: str = "",
) -> llm_pb2.PromptMessage:
    return _message(
        llm_pb2.PROMPT_MESSAGE_ROLE_ASSISTANT,
        content,
        name=name,
        tool_calls=tool_calls,
        opaque_body=opaque_body,
    )


def tool_message(
    content: ContentInput, *, tool_call_id: str, name: str = ""
) -> llm_pb2.PromptMessage:
    return _message(llm_pb2.PROMPT_MESSAGE_ROLE_TOOL, content, name=name, tool_call_id=tool_call_id)


@dataclasses.dataclass
class _PartialToolCall:
    id: str = ""
    type: str = ""
    name: str = ""
    arguments: list[str] = dataclasses.field(default_factory=list)


class StreamAccumulator:
    """Assembles streamed `LLMResultChunk`s into the `LLMResult` a unary call would return.

    Content, reasoning and refusal pieces are joined in order; tool-call fragments are joined
    by their `index`; the last `finish_reason`, `usage`, `model` and `system_fingerprint` seen
    win. The result's `message` is ready to append to the conversation.

        accumulator = StreamAccumulator()
        for chunk in client.stream_llm(...):
            print(chunk.delta.message.content, end="")
            accumulator.add(chunk)
        result = accumulator.result()
    """

    def __init__(self) -> None:
        self._content: list[str] = []
        self._reasoning: list[str] = []
        self._refusal: list[str] = []
        self._tool_calls: dict[int, _PartialToolCall] = {}
        self._opaque_body: struct_pb2.Struct | None = None
        self._usage: llm_pb2.LLMUsage | None = None
        self._finish_reason = ""
        self._model = ""
        self._system_fingerprint = ""

    def add(self, chunk: llm_pb2.LLMResultChunk) -> None:
        if chunk.model:
            self._model = chunk.model
        if chunk.system_fingerprint:
            self._system_fingerprint = chunk.system_fingerprint
        delta = chunk.delta
        message = delta.message
        if message.content:
            self._content.append(message.content)
        if message.reasoning_content:
            self._reasoning.append(message.reasoning_content)
        if message.refusal:
            self._refusal.append(message.refusal)
        for fragment in message.tool_calls:
            call = self._tool_calls.setdefault(fragment.index, _PartialToolCall())
            call.id = call.id or fragment.id
            call.type = call.type or fragment.type
            call.name = call.name or fragment.function.name
            if fragment.function.arguments:
                call.arguments.append(fragment.function.arguments)
        if message.HasField("opaque_body"):
            self._opaque_body = message.opaque_body
        if delta.HasField("usage"):
            self._usage = delta.usage
        if delta.finish_reason:
            self._finish_reason = delta.finish_reason

    def result(self) -> llm_pb2.LLMResult:
        message = llm_pb2.PromptMessage(
            role=llm_pb2.PROMPT_MESSAGE_ROLE_ASSISTANT,
            content="".join(self._content),
            tool_calls=[
                llm_pb2.ToolCall(
                    id=call.id,
                    type=call.type or "function",
                    function=llm_pb2.ToolCallFunction(
                        name=call.name, arguments="".join(call.arguments)
                    ),
                )
                for _, call in sorted(self._tool_calls.items())
            ],
        )
        if self._opaque_body is not None:
            message.opaque_body.CopyFrom(self._opaque_body)
        return llm_pb2.LLMResult(
            model=self._model,
            message=message,
            usage=self._usage,
            system_fingerprint=self._system_fingerprint,
            reasoning_content="".join(self._reasoning),
            refusal="".join(self._refusal),
            finish_reason=self._finish_reason,
        )


def collect(chunks: Iterable[llm_pb2.LLMResultChunk]) -> llm_pb2.LLMResult:
    """Consumes a stream and returns the whole answer (see `StreamAccumulator`)."""
    accumulator = StreamAccumulator()
    for chunk in chunks:
        accumulator.add(chunk)
    return accumulator.result()


async def acollect(chunks: AsyncIterable[llm_pb2.LLMResultChunk]) -> llm_pb2.LLMResult:
    """`collect` for an async stream."""
    accumulator = StreamAccumulator()
    async for chunk in chunks:
        accumulator.add(chunk)
    return accumulator.result()
