"""The runtime's prompt, tools and parameters -> the body of a Messages API request.

The Messages API differs from the chat shape callers send in a few ways this module absorbs:
there is no system role (system prompts go to the top-level `system`), turns must alternate
user/assistant (consecutive turns of one role are merged), tool results are `tool_result` blocks
inside a user turn (placed before any other block of that turn, as the API demands), tool-call
arguments are objects rather than JSON strings, and the signed thinking blocks of an assistant
turn must come back unchanged ahead of its tool calls.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from typing import Any

from providers.sdk.entities.message import (
    AssistantPromptMessage,
    MultiModalPromptMessageContent,
    PromptMessage,
    PromptMessageContent,
    PromptMessageContentType,
    PromptMessageRole,
    PromptMessageTool,
    TextPromptMessageContent,
    ToolPromptMessage,
)
from providers.sdk.errors import (
    FieldViolation,
    InvalidParameterError,
    InvalidRequestError,
)

# Where an answer's thinking blocks travel in `opaque_body` (Dify's keys, so conversations
# stored by Dify's Anthropic plugin continue here, and the other way round). Thinking and
# redacted thinking blocks are written in their original order under the first key; the second
# is read for Dify's older split form.
THINKING_BLOCKS_KEY = "anthropic_thinking_blocks"
REDACTED_THINKING_BLOCKS_KEY = "anthropic_redacted_thinking_blocks"
_THINKING_TYPES = frozenset({"thinking", "redacted_thinking"})

IMAGE_MEDIA_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
PDF = "application/pdf"

# Parameters that switch an API beta on, and the `anthropic-beta` flag each sends.
BETA_FLAGS = {
    "context_1m": "context-1m-2025-08-07",
    "extended_output": "output-128k-2025-02-19",
}
_SAMPLING = ("temperature", "top_p", "top_k")
# The API refuses a request without max_tokens; every shipped YAML requires it with a default,
# so this only serves a model file that forgot the rule.
DEFAULT_MAX_TOKENS = 4096
# The smallest thinking budget the API accepts.
MIN_THINKING_BUDGET = 1024
_SYSTEM_ROLES = frozenset({PromptMessageRole.SYSTEM, PromptMessageRole.DEVELOPER})


def messages_body(
    model: str,
    prompt_messages: Sequence[PromptMessage],
    tools: Sequence[PromptMessageTool] | None,
) -> dict[str, Any]:
    """What a Messages request and a token count share: model, system, messages and tools."""
    system, messages = convert_prompt(prompt_messages)
    body: dict[str, Any] = {"model": model, "messages": messages}
    if system:
        body["system"] = system
    if tools:
        body["tools"] = [_tool(tool) for tool in tools]
    return body


def request_body(
    model: str,
    prompt_messages: Sequence[PromptMessage],
    params: dict[str, Any],
    tools: Sequence[PromptMessageTool] | None,
    stop: Sequence[str] | None,
    user: str | None,
) -> tuple[dict[str, Any], list[str]]:
    """A Messages request body and the beta flags it needs."""
    body = messages_body(model, prompt_messages, tools)
    max_tokens = params.get("max_tokens", DEFAULT_MAX_TOKENS)
    body["max_tokens"] = max_tokens
    if params.get("thinking"):
        budget = params.get("thinking_budget", MIN_THINKING_BUDGET)
        if budget >= max_tokens:
            raise InvalidParameterError(
                [
                    FieldViolation(
                        "model_parameters.thinking_budget",
                        f"should be less than max_tokens ({max_tokens}), since thinking "
                        "tokens count against it",
                    )
                ]
            )
        body["thinking"] = {"type": "enabled", "budget_tokens": budget}
    else:
        # With thinking on the API fixes sampling itself and refuses these.
        for name in _SAMPLING:
            if name in params:
                body[name] = params[name]
        # Newer models refuse temperature and top_p together. A top_p of 1 samples from the
        # whole distribution, as no top_p does, so it is left out: Dify's model files give
        # both rules template defaults (0 and 1), which would otherwise always collide.
        if body.get("top_p") == 1.0 and "temperature" in body:
            del body["top_p"]
    stop_sequences = [s for s in stop or () if s]
    if stop_sequences:
        body["stop_sequences"] = stop_sequences
    tool_choice = _tool_choice(params, tools)
    if tool_choice is not None:
        body["tool_choice"] = tool_choice
    if user:
        body["metadata"] = {"user_id": user}
    betas = [flag for name, flag in BETA_FLAGS.items() if params.get(name)]
    return body, betas


def convert_prompt(
    prompt_messages: Sequence[PromptMessage],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The `system` blocks and the alternating `messages` of a request."""
    system: list[dict[str, Any]] = []
    turns: list[dict[str, Any]] = []
    for i, message in enumerate(prompt_messages):
        if message.role in _SYSTEM_ROLES:
            text = message.get_text_content()
            if text:
                system.append({"type": "text", "text": text})
            continue
        if isinstance(message, AssistantPromptMessage):
            role, blocks = "assistant", _assistant_blocks(message, i)
        elif isinstance(message, ToolPromptMessage):
            role, blocks = "user", [_tool_result(message, i)]
        else:
            role, blocks = "user", _content_blocks(message.content, f"prompt_messages[{i}]")
        if not blocks:
            continue
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    for turn in turns:
        if turn["role"] == "user":
            # Stable: tool results first, in order, then whatever the user added.
            turn["content"].sort(key=lambda block: block["type"] != "tool_result")
    if turns and turns[-1]["role"] == "assistant":
        _trim_prefill(turns[-1]["content"])
        if not turns[-1]["content"]:
            turns.pop()
    return system, turns


def thinking_blocks(opaque_body: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The thinking blocks an earlier answer left in `opaque_body`, unchanged."""
    if not isinstance(opaque_body, dict):
        return []
    found: list[dict[str, Any]] = []
    for key in (THINKING_BLOCKS_KEY, REDACTED_THINKING_BLOCKS_KEY):
        blocks = opaque_body.get(key)
        if isinstance(blocks, list):
            found.extend(
                block
                for block in blocks
                if isinstance(block, dict) and block.get("type") in _THINKING_TYPES
            )
    return found


def _assistant_blocks(message: AssistantPromptMessage, i: int) -> list[dict[str, Any]]:
    blocks = thinking_blocks(message.opaque_body)
    content = message.content
    if isinstance(content, str):
        if content:
            blocks.append({"type": "text", "text": content})
    elif content:
        blocks.extend(
            {"type": "text", "text": part.data}
            for part in content
            if isinstance(part, TextPromptMessageContent) and part.data
        )
    for k, call in enumerate(message.tool_calls):
        where = f"prompt_messages[{i}].tool_calls[{k}]"
        blocks.append(
            {
                "type": "tool_use",
                "id": call.id,
                "name": call.function.name,
                "input": _arguments(call.function.arguments, where),
            }
        )
    return blocks


def _arguments(arguments: str, where: str) -> dict[str, Any]:
    if not arguments.strip():
        return {}
    try:
        value = json.loads(arguments)
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise InvalidRequestError(
            [FieldViolation(f"{where}.function.arguments", "should be a JSON object")]
        )
    return value


def _tool_result(message: ToolPromptMessage, i: int) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "tool_result", "tool_use_id": message.tool_call_id}
    if isinstance(message.content, str):
        if message.content:
            block["content"] = message.content
    elif message.content:
        block["content"] = _content_blocks(message.content, f"prompt_messages[{i}]")
    return block


def _content_blocks(
    content: str | list[PromptMessageContent] | None, where: str
) -> list[dict[str, Any]]:
    if not content:
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    blocks: list[dict[str, Any]] = []
    for j, part in enumerate(content):
        if isinstance(part, TextPromptMessageContent):
            # The API refuses empty text blocks.
            if part.data:
                blocks.append({"type": "text", "text": part.data})
        else:
            blocks.append(_media_block(part, f"{where}.content_parts[{j}]"))
    return blocks


def _media_block(part: MultiModalPromptMessageContent, where: str) -> dict[str, Any]:
    mime_type, data = part.mime_type, part.base64_data
    url = part.url
    if url.startswith("data:"):
        mime_type, data = _parse_data_uri(url, where)
        url = ""
    if part.type is PromptMessageContentType.IMAGE:
        if url:
            return {"type": "image", "source": {"type": "url", "url": url}}
        if mime_type not in IMAGE_MEDIA_TYPES:
            raise _unsupported(where, f"image type {mime_type or '(none)'}", IMAGE_MEDIA_TYPES)
        return {
            "type": "image",
            "source": {"type": "base64", "media_type": mime_type, "data": data},
        }
    if part.type is PromptMessageContentType.DOCUMENT:
        block: dict[str, Any] = {"type": "document"}
        if url:
            block["source"] = {"type": "url", "url": url}
        elif mime_type == PDF:
            block["source"] = {"type": "base64", "media_type": PDF, "data": data}
        elif mime_type.startswith("text/"):
            block["source"] = {
                "type": "text",
                "media_type": "text/plain",
                "data": _decode_text(data, where),
            }
        else:
            raise _unsupported(where, f"document type {mime_type or '(none)'}", {PDF, "text/*"})
        if part.filename:
            block["title"] = part.filename
        return block
    raise InvalidRequestError(
        [FieldViolation(where, f"Anthropic's Messages API does not take {part.type.value}")]
    )


def _parse_data_uri(url: str, where: str) -> tuple[str, str]:
    header, sep, data = url.partition(",")
    mime_type, _, encoding = header.removeprefix("data:").partition(";")
    if not sep or encoding != "base64":
        raise InvalidRequestError([FieldViolation(where, "a data: URL must be base64-encoded")])
    return mime_type, data


def _decode_text(data: str, where: str) -> str:
    try:
        return base64.b64decode(data, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise InvalidRequestError(
            [FieldViolation(where, "a text document must be base64-encoded UTF-8")]
        ) from exc


def _unsupported(where: str, what: str, accepted: set[str] | frozenset[str]) -> InvalidRequestError:
    return InvalidRequestError(
        [
            FieldViolation(
                where,
                f"Anthropic does not accept {what}; it accepts {', '.join(sorted(accepted))}",
            )
        ]
    )


def _trim_prefill(blocks: list[dict[str, Any]]) -> None:
    # A final assistant turn is a prefill the answer continues; the API refuses one that ends
    # in whitespace.
    last = blocks[-1]
    if last["type"] == "text":
        last["text"] = last["text"].rstrip()
        if not last["text"]:
            blocks.pop()


def _tool(tool: PromptMessageTool) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "name": tool.name,
        "input_schema": tool.parameters or {"type": "object", "properties": {}},
    }
    if tool.description:
        spec["description"] = tool.description
    return spec


def _tool_choice(
    params: dict[str, Any], tools: Sequence[PromptMessageTool] | None
) -> dict[str, Any] | None:
    choice = params.get("tool_choice")
    parallel = params.get("parallel_tool_calls")
    if not tools:
        if choice in (None, "", "auto", "none"):
            return None
        raise InvalidParameterError(
            [FieldViolation("model_parameters.tool_choice", f"{choice!r} needs tools")]
        )
    if choice in (None, "", "auto"):
        spec: dict[str, Any] = {"type": "auto"}
    elif choice in ("any", "required"):
        spec = {"type": "any"}
    elif choice == "none":
        return {"type": "none"}
    else:
        names = [tool.name for tool in tools]
        if choice not in names:
            raise InvalidParameterError(
                [
                    FieldViolation(
                        "model_parameters.tool_choice",
                        "should be auto, any, none or one of the tools: " + ", ".join(names),
                    )
                ]
            )
        spec = {"type": "tool", "name": choice}
    if parallel is False:
        spec["disable_parallel_tool_use"] = True
    elif choice in (None, ""):
        # Nothing asked of the choice: leave it to the API's default.
        return None
    return spec
