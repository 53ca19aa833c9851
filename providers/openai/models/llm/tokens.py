"""Counting tokens as OpenAI's models see them, offline, with each model's own encoding.

`bpe_openai` bundles the BPE files of `o200k_base` (GPT-4o, GPT-4.1, GPT-5, the o-series) and
`cl100k_base` (GPT-4, GPT-3.5, the embedding models), so nothing is downloaded. Chat prompts
are counted as OpenAI's cookbook counts them: every message costs its role, content and name
plus 3 tokens of framing (1 more for a name), and 3 tokens prime the reply. Tool definitions
are counted from their names, descriptions and parameters the way the cookbook approximates
the hidden text OpenAI renders them into. Images count what OpenAI charges for a low-detail
image (85) or a typical high-detail one (765); audio and files are not counted offline.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any

import bpe_openai  # type: ignore[import-untyped]  # ships no type information

from providers.sdk.concurrency import run_sync
from providers.sdk.entities.message import (
    AssistantPromptMessage,
    ImageDetail,
    MultiModalPromptMessageContent,
    PromptMessage,
    PromptMessageContentType,
    PromptMessageTool,
    TextPromptMessageContent,
)

O200K_MODELS = ("gpt-4o", "gpt-4.1", "gpt-4.5", "gpt-5", "o1", "o3", "o4", "chatgpt-4o", "omni")

MESSAGE_FRAMING = 3
NAME_FRAMING = 1
REPLY_PRIMER = 3
IMAGE_TOKENS = {ImageDetail.LOW: 85, ImageDetail.HIGH: 765}

# The tool-definition accounting: per function (by encoding), per properties block, per
# property, per enum block (negative: the enum replaces part of the property's framing), per
# enum item, and once after all tools.
FUNCTION_FRAMING = {"o200k_base": 7, "cl100k_base": 10}
PROPERTIES_FRAMING = 3
PROPERTY_FRAMING = 3
ENUM_FRAMING = -3
ENUM_ITEM_FRAMING = 3
TOOLS_END = 12

# The encoder refuses inputs over 200k tokens (and 1M characters) at once; pieces this long stay
# well below that even for text of four tokens per character.
PIECE_CHARS = 40_000
# Prompts longer than this are counted on the worker pool, not on the event loop (a 100 kB
# prompt takes a few milliseconds).
OFF_LOOP_CHARS = 50_000


def encoding_name(model: str) -> str:
    """The encoding of `model` (a fine-tuned `ft:<base>:...` counts as its base)."""
    base = model.split(":")[1] if model.startswith("ft:") and ":" in model[3:] else model
    return "o200k_base" if base.startswith(O200K_MODELS) else "cl100k_base"


@functools.cache
def encoding(name: str) -> bpe_openai.Encoding:
    return bpe_openai.get_encoding(name)


def count_text(encoder: bpe_openai.Encoding, text: str) -> int:
    """Tokens of `text` with special-token spellings counted as plain text (as a user's text
    is), in pieces the encoder accepts; long texts are cut at whitespace so words stay whole."""
    total = 0
    start = 0
    while start < len(text):
        end = min(start + PIECE_CHARS, len(text))
        if end < len(text):
            space = text.rfind(" ", start + PIECE_CHARS // 2, end)
            end = space if space > start else end
        total += len(encoder.encode_ordinary(text[start:end]))
        start = end
    return total


def count_texts(model: str, texts: Sequence[str]) -> list[int]:
    encoder = encoding(encoding_name(model))
    return [count_text(encoder, text) for text in texts]


def count_messages(
    model: str,
    prompt_messages: Sequence[PromptMessage],
    tools: Sequence[PromptMessageTool] | None = None,
) -> int:
    name = encoding_name(model)
    encoder = encoding(name)
    total = REPLY_PRIMER
    for message in prompt_messages:
        total += MESSAGE_FRAMING + count_text(encoder, message.role.value)
        total += _count_content(encoder, message.content)
        if message.name:
            total += NAME_FRAMING + count_text(encoder, message.name)
        if isinstance(message, AssistantPromptMessage):
            for call in message.tool_calls:
                total += count_text(encoder, call.function.name)
                total += count_text(encoder, call.function.arguments)
    if tools:
        total += _count_tools(encoder, FUNCTION_FRAMING.get(name, 7), tools)
    return total


async def count_prompt(
    model: str,
    prompt_messages: Sequence[PromptMessage],
    tools: Sequence[PromptMessageTool] | None = None,
) -> int:
    """`count_messages`, on the worker pool when the prompt is long."""
    size = sum(len(m.get_text_content()) for m in prompt_messages)
    if size > OFF_LOOP_CHARS:
        return await run_sync(count_messages, model, prompt_messages, tools)
    return count_messages(model, prompt_messages, tools)


def _count_content(encoder: bpe_openai.Encoding, content: str | list[Any] | None) -> int:
    if not content:
        return 0
    if isinstance(content, str):
        return count_text(encoder, content)
    total = 0
    for part in content:
        if isinstance(part, TextPromptMessageContent):
            total += count_text(encoder, part.data)
        elif (
            isinstance(part, MultiModalPromptMessageContent)
            and part.type is PromptMessageContentType.IMAGE
        ):
            total += IMAGE_TOKENS[part.detail]
    return total


def _count_tools(
    encoder: bpe_openai.Encoding, function_framing: int, tools: Sequence[PromptMessageTool]
) -> int:
    total = TOOLS_END
    for tool in tools:
        total += function_framing
        total += count_text(encoder, f"{tool.name}:{tool.description.removesuffix('.')}")
        properties = (tool.parameters or {}).get("properties") or {}
        if not isinstance(properties, Mapping) or not properties:
            continue
        total += PROPERTIES_FRAMING
        for key, spec in properties.items():
            spec = spec if isinstance(spec, Mapping) else {}
            total += PROPERTY_FRAMING
            enum = spec.get("enum")
            if isinstance(enum, list) and enum:
                total += ENUM_FRAMING
                total += sum(ENUM_ITEM_FRAMING + count_text(encoder, str(item)) for item in enum)
            description = str(spec.get("description") or "").removesuffix(".")
            total += count_text(encoder, f"{key}:{spec.get('type', '')}:{description}")
    return total
