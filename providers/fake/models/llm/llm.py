"""The fake LLM: streams a scripted answer (reasoning, text, tool calls) at a chosen pace, and
fails on request before or after any chunk."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from typing import Any

from providers.fake.upstream import check_call, failure, number_credential
from providers.sdk.entities.llm import (
    AssistantPromptMessageDelta,
    LLMMode,
    LLMResultChunk,
    LLMResultChunkDelta,
    LLMUsage,
    ToolCallDelta,
)
from providers.sdk.entities.message import (
    PromptMessage,
    PromptMessageRole,
    PromptMessageTool,
    ToolCallFunction,
)
from providers.sdk.entities.schema import (
    AIModelEntity,
    FetchFrom,
    I18nObject,
    ModelFeature,
    ModelProperties,
    ModelType,
    ParameterRule,
)
from providers.sdk.errors import InvokeBadRequestError
from providers.sdk.model_types import LargeLanguageModel
from providers.sdk.model_types.ai_model import Credentials
from providers.sdk.model_types.large_language_model import estimate_prompt_tokens

_WORDS = re.compile(r"\s*\S+\s*|\s+")


class FakeLargeLanguageModel(LargeLanguageModel):
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
    ) -> AsyncIterator[LLMResultChunk]:
        check_call(credentials)
        # Streamed either way; the base class collects the chunks when stream is false.
        return self._stream(model, credentials, prompt_messages, model_parameters, stop)

    async def _stream(
        self,
        model: str,
        credentials: Credentials,
        prompt_messages: list[PromptMessage],
        params: dict[str, Any],
        stop: list[str] | None,
    ) -> AsyncIterator[LLMResultChunk]:
        deltas = self._script(prompt_messages, params, stop)
        finish_reason = deltas.pop()
        fail_with = params.get("fail_with")
        fail_after = params.get("fail_after_chunks", 0)
        delay = params.get("chunk_delay_ms", 0) / 1000
        completion_tokens = 0
        for sent, delta in enumerate(deltas):
            if fail_with and sent == fail_after:
                raise failure(fail_with, params.get("retry_after"))
            if delay:
                await asyncio.sleep(delay)
            completion_tokens += 1
            yield LLMResultChunk(model=model, delta=LLMResultChunkDelta(message=delta))
        if fail_with:
            raise failure(fail_with, params.get("retry_after"))
        prompt_tokens = estimate_prompt_tokens(self._get_num_tokens_by_gpt2, prompt_messages, None)
        yield LLMResultChunk(
            model=model,
            system_fingerprint="fp_fake",
            delta=LLMResultChunkDelta(
                usage=LLMUsage(prompt_tokens=prompt_tokens, completion_tokens=completion_tokens),
                finish_reason=finish_reason,
            ),
        )

    def _script(
        self, prompt_messages: list[PromptMessage], params: dict[str, Any], stop: list[str] | None
    ) -> list[Any]:
        """The deltas to stream, then the finish reason as the last element."""
        deltas: list[Any] = []
        for word in _words(params.get("reasoning", "")):
            deltas.append(AssistantPromptMessageDelta(reasoning_content=word))
        if params.get("refusal"):
            deltas.extend(AssistantPromptMessageDelta(refusal=w) for w in _words(params["refusal"]))
            return [*deltas, "content_filter"]
        reply = params.get("reply")
        if reply is None:
            reply = _last_user_text(prompt_messages)
        finish_reason = "stop"
        for sequence in stop or ():
            if sequence and sequence in reply:
                reply = reply[: reply.index(sequence)]
        words = _words(reply)
        max_tokens = params.get("max_tokens")
        if max_tokens is not None and len(words) > max_tokens:
            words = words[:max_tokens]
            finish_reason = "length"
        deltas.extend(AssistantPromptMessageDelta(content=w) for w in words)
        calls = _tool_calls(params.get("tool_calls"))
        for index, (name, arguments) in enumerate(calls):
            deltas.append(
                AssistantPromptMessageDelta(
                    tool_calls=[
                        ToolCallDelta(
                            index=index,
                            id=f"call_fake_{index}",
                            type="function",
                            function=ToolCallFunction(name, ""),
                        )
                    ]
                )
            )
            third = max(1, len(arguments) // 3)
            for start in range(0, len(arguments), third):
                piece = arguments[start : start + third]
                deltas.append(
                    AssistantPromptMessageDelta(
                        tool_calls=[
                            ToolCallDelta(index=index, function=ToolCallFunction("", piece))
                        ]
                    )
                )
        if calls and finish_reason == "stop":
            finish_reason = "tool_calls"
        return [*deltas, finish_reason]

    async def validate_credentials(self, model: str, credentials: Credentials) -> None:
        # A refusal becomes CREDENTIALS_VALIDATE_FAILED in the base class; an outage stays one.
        check_call(credentials)

    def get_customizable_model_schema(
        self, model: str, credentials: Credentials
    ) -> AIModelEntity | None:
        context_size = int(number_credential(credentials, "context_size") or 4096)
        return AIModelEntity(
            model=model,
            label=I18nObject(en_US=model),
            model_type=ModelType.LLM,
            fetch_from=FetchFrom.CUSTOMIZABLE_MODEL,
            features=[ModelFeature.TOOL_CALL, ModelFeature.STREAM_TOOL_CALL],
            model_properties=ModelProperties(mode=LLMMode.CHAT, context_size=context_size),
            parameter_rules=[
                ParameterRule.of("temperature", use_template="temperature"),
                ParameterRule.of(
                    "max_tokens", use_template="max_tokens", default=512, max=context_size
                ),
                ParameterRule.of("reply", type="text"),
                ParameterRule.of("chunk_delay_ms", type="int", default=0, min=0),
            ],
        )


def _words(text: str) -> list[str]:
    return _WORDS.findall(text)


def _last_user_text(prompt_messages: list[PromptMessage]) -> str:
    for message in reversed(prompt_messages):
        if message.role is PromptMessageRole.USER:
            return message.get_text_content()
    return ""


def _tool_calls(spec: str | None) -> list[tuple[str, str]]:
    if not spec:
        return []
    try:
        calls = json.loads(spec)
        return [
            (str(call["name"]), json.dumps(call.get("arguments", {}), separators=(",", ":")))
            for call in calls
        ]
    except (ValueError, TypeError, KeyError) as exc:
        raise InvokeBadRequestError(
            'tool_calls must be a JSON list like [{"name": "f", "arguments": {}}]'
        ) from exc
