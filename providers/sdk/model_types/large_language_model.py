"""The LLM base class: the seed's `_invoke` contract, streamed or not, sync or async."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from typing import Any

from providers.sdk.concurrency import call_maybe_async, iterate
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
    PromptMessageTool,
    ToolCall,
    ToolCallFunction,
)
from providers.sdk.entities.schema import AIModelEntity, ModelFeature, ModelType
from providers.sdk.errors import FieldViolation, InvalidRequestError
from providers.sdk.model_types.ai_model import AIModel, Credentials, MaybeAwaitable
from providers.sdk.pricing import price_llm_usage

InvokeResult = LLMResult | Iterator[LLMResultChunk] | AsyncIterator[LLMResultChunk]

_FEATURE_FOR_CONTENT = {
    PromptMessageContentType.IMAGE: ModelFeature.VISION,
    PromptMessageContentType.AUDIO: ModelFeature.AUDIO,
    PromptMessageContentType.VIDEO: ModelFeature.VIDEO,
    PromptMessageContentType.DOCUMENT: ModelFeature.DOCUMENT,
}


class LargeLanguageModel(AIModel):
    """Implement `_invoke` (returning an LLMResult when `stream` is false and a generator of
    LLMResultChunk when it is true, or either in both cases), `validate_credentials`, and
    optionally `get_num_tokens`. The base class checks the request, maps errors, numbers the
    chunks, measures timing and prices the usage."""

    model_type = ModelType.LLM

    def _invoke(
        self,
        model: str,
        credentials: Credentials,
        prompt_messages: list[PromptMessage],
        model_parameters: dict[str, Any],
        tools: list[PromptMessageTool] | None = None,
        stop: list[str] | None = None,
        stream: bool = True,
        user: str | None = None,
    ) -> MaybeAwaitable[InvokeResult]:
        raise NotImplementedError

    def get_num_tokens(
        self,
        model: str,
        credentials: Credentials,
        prompt_messages: list[PromptMessage],
        tools: list[PromptMessageTool] | None = None,
    ) -> MaybeAwaitable[int]:
        """An offline estimate; providers with a real tokenizer override it."""
        return estimate_prompt_tokens(self._get_num_tokens_by_gpt2, prompt_messages, tools)

    # ---- used by the runtime -----------------------------------------------------------------

    async def count_tokens(
        self,
        model: str,
        credentials: Mapping[str, str],
        prompt_messages: list[PromptMessage],
        tools: list[PromptMessageTool] | None,
    ) -> int:
        _, checked, _ = await self.prepare(model, credentials, None)
        with self.mapped_errors(model, checked):
            count = await call_maybe_async(
                self.get_num_tokens, model, checked, prompt_messages, tools
            )
        return int(count)

    async def invoke(
        self,
        model: str,
        credentials: Mapping[str, str],
        prompt_messages: list[PromptMessage],
        model_parameters: Mapping[str, Any],
        tools: list[PromptMessageTool] | None = None,
        stop: list[str] | None = None,
        user: str | None = None,
    ) -> LLMResult:
        """The whole answer. An implementation that streams anyway is collected here."""
        started = time.perf_counter()
        schema, checked, params = await self._prepare_llm(
            model, credentials, prompt_messages, model_parameters
        )
        with self.mapped_errors(model, checked):
            result = await call_maybe_async(
                self._invoke, model, checked, prompt_messages, params, tools, stop, False, user
            )
        if not isinstance(result, LLMResult):
            collector = ChunkCollector(model)
            async for chunk in self._finish_chunks(
                model, checked, schema, prompt_messages, tools, result, started
            ):
                collector.add(chunk)
            return collector.result()
        if not result.model:
            result.model = model
        if result.usage.total_tokens == 0 and result.usage.prompt_tokens == 0:
            result.usage = await self._estimate_usage(
                model, checked, prompt_messages, tools, result.message.get_text_content()
            )
        price_llm_usage(result.usage, schema.pricing)
        result.usage.latency = time.perf_counter() - started
        return result

    async def invoke_stream(
        self,
        model: str,
        credentials: Mapping[str, str],
        prompt_messages: list[PromptMessage],
        model_parameters: Mapping[str, Any],
        tools: list[PromptMessageTool] | None = None,
        stop: list[str] | None = None,
        user: str | None = None,
    ) -> AsyncIterator[LLMResultChunk]:
        """The answer chunk by chunk, each passed on the moment the implementation yields it.
        Errors before the first chunk and mid-stream are mapped alike."""
        started = time.perf_counter()
        schema, checked, params = await self._prepare_llm(
            model, credentials, prompt_messages, model_parameters
        )
        with self.mapped_errors(model, checked):
            result = await call_maybe_async(
                self._invoke, model, checked, prompt_messages, params, tools, stop, True, user
            )
        if isinstance(result, LLMResult):
            result = iter([_result_as_chunk(result)])
        async for chunk in self._finish_chunks(
            model, checked, schema, prompt_messages, tools, result, started
        ):
            yield chunk

    # ---- internals ---------------------------------------------------------------------------

    async def _prepare_llm(
        self,
        model: str,
        credentials: Mapping[str, str],
        prompt_messages: list[PromptMessage],
        model_parameters: Mapping[str, Any],
    ) -> tuple[AIModelEntity, Credentials, dict[str, Any]]:
        schema, checked, params = await self.prepare(model, credentials, model_parameters)
        self._check_content_supported(schema, prompt_messages)
        return schema, checked, params

    def _check_content_supported(
        self, schema: AIModelEntity, prompt_messages: Sequence[PromptMessage]
    ) -> None:
        violations = []
        for i, message in enumerate(prompt_messages):
            if not isinstance(message.content, list):
                continue
            for j, part in enumerate(message.content):
                if not isinstance(part, MultiModalPromptMessageContent):
                    continue
                feature = _FEATURE_FOR_CONTENT[part.type]
                if not schema.has_feature(feature):
                    violations.append(
                        FieldViolation(
                            f"prompt_messages[{i}].content_parts[{j}]",
                            f"model {schema.model} does not accept {part.type.value} content "
                            f"(it lacks the {feature.value} feature)",
                        )
                    )
        if violations:
            raise InvalidRequestError(violations, provider=self.provider_name, model=schema.model)

    async def _finish_chunks(
        self,
        model: str,
        credentials: Credentials,
        schema: AIModelEntity,
        prompt_messages: list[PromptMessage],
        tools: list[PromptMessageTool] | None,
        source: Iterator[LLMResultChunk] | AsyncIterator[LLMResultChunk],
        started: float,
    ) -> AsyncIterator[LLMResultChunk]:
        # The hot path: per chunk only a counter, a clock read until the first output, and a
        # list append kept for the usage estimate when the upstream gives none.
        index = 0
        first_output_at = 0.0
        usage_seen = False
        finish_reason: str | None = None
        texts: list[str] = []
        chunks = iterate(source)
        try:
            with self.mapped_errors(model, credentials):
                async for chunk in chunks:
                    delta = chunk.delta
                    delta.index = index
                    index += 1
                    if not chunk.model:
                        chunk.model = model
                    message = delta.message
                    if not first_output_at and message.has_output():
                        first_output_at = time.perf_counter()
                    if message.content:
                        texts.append(message.content)
                    if delta.finish_reason:
                        finish_reason = delta.finish_reason
                    if delta.usage is not None:
                        usage_seen = True
                        self._complete_usage(delta.usage, schema, started, first_output_at)
                    yield chunk
        finally:
            # Closing the source promptly releases the provider's upstream request.
            await chunks.aclose()
        if usage_seen:
            return
        # The implementation gave no usage: close the stream with a chunk that carries an
        # estimate, so the last chunk always has usage and a finish reason.
        usage = await self._estimate_usage(model, credentials, prompt_messages, tools, *texts)
        self._complete_usage(usage, schema, started, first_output_at)
        yield LLMResultChunk(
            model=model,
            delta=LLMResultChunkDelta(
                index=index, usage=usage, finish_reason=finish_reason or "stop"
            ),
        )

    @staticmethod
    def _complete_usage(
        usage: LLMUsage, schema: AIModelEntity, started: float, first_output_at: float
    ) -> None:
        now = time.perf_counter()
        price_llm_usage(usage, schema.pricing)
        usage.latency = now - started
        if first_output_at:
            usage.time_to_first_token = first_output_at - started
            usage.time_to_generate = now - first_output_at

    async def _estimate_usage(
        self,
        model: str,
        credentials: Credentials,
        prompt_messages: list[PromptMessage],
        tools: list[PromptMessageTool] | None,
        *completion_texts: str,
    ) -> LLMUsage:
        with self.mapped_errors(model, credentials):
            prompt_tokens = await call_maybe_async(
                self.get_num_tokens, model, credentials, prompt_messages, tools
            )
        completion = "".join(completion_texts)
        return LLMUsage(
            prompt_tokens=int(prompt_tokens),
            completion_tokens=self._get_num_tokens_by_gpt2(completion) if completion else 0,
        )


def estimate_prompt_tokens(
    count: Any, prompt_messages: Sequence[PromptMessage], tools: Sequence[PromptMessageTool] | None
) -> int:
    """OpenAI-style accounting: each message's text plus 3 tokens of framing, 1 for a name,
    the tool definitions as JSON, and 3 to prime the answer."""
    total = 3
    for message in prompt_messages:
        total += 3 + count(message.get_text_content())
        if message.name:
            total += 1 + count(message.name)
        if isinstance(message, AssistantPromptMessage):
            for call in message.tool_calls:
                total += count(call.function.name) + count(call.function.arguments)
    for tool in tools or ():
        total += count(tool.name) + count(tool.description) + count(json.dumps(tool.parameters))
    return int(total)


def _result_as_chunk(result: LLMResult) -> LLMResultChunk:
    message = result.message
    return LLMResultChunk(
        model=result.model,
        system_fingerprint=result.system_fingerprint,
        delta=LLMResultChunkDelta(
            message=AssistantPromptMessageDelta(
                content=message.get_text_content(),
                tool_calls=[
                    _tool_call_as_delta(i, call) for i, call in enumerate(message.tool_calls)
                ],
                reasoning_content=result.reasoning_content,
                refusal=result.refusal,
                opaque_body=message.opaque_body,
            ),
            usage=result.usage
            if (result.usage.prompt_tokens or result.usage.total_tokens)
            else None,
            finish_reason=result.finish_reason or "stop",
        ),
    )


def _tool_call_as_delta(index: int, call: ToolCall) -> ToolCallDelta:
    return ToolCallDelta(index=index, id=call.id, type=call.type, function=call.function)


class ChunkCollector:
    """Builds the whole answer from streamed chunks: text, reasoning and refusal joined, tool
    calls assembled from their fragments by index, the last usage and finish reason kept."""

    def __init__(self, model: str) -> None:
        self.model = model
        self.system_fingerprint: str | None = None
        self.content: list[str] = []
        self.reasoning: list[str] = []
        self.refusal: list[str] = []
        self.tool_calls: dict[int, ToolCall] = {}
        self.opaque_body: dict[str, Any] | None = None
        self.usage = LLMUsage()
        self.finish_reason: str | None = None

    def add(self, chunk: LLMResultChunk) -> None:
        self.model = chunk.model or self.model
        self.system_fingerprint = chunk.system_fingerprint or self.system_fingerprint
        delta = chunk.delta
        message = delta.message
        if message.content:
            self.content.append(message.content)
        if message.reasoning_content:
            self.reasoning.append(message.reasoning_content)
        if message.refusal:
            self.refusal.append(message.refusal)
        if message.opaque_body is not None:
            self.opaque_body = message.opaque_body
        for fragment in message.tool_calls:
            call = self.tool_calls.get(fragment.index)
            if call is None:
                call = self.tool_calls[fragment.index] = ToolCall(
                    id="", function=ToolCallFunction("", "")
                )
            call.id = fragment.id or call.id
            call.type = fragment.type or call.type
            call.function.name = fragment.function.name or call.function.name
            call.function.arguments += fragment.function.arguments
        if delta.usage is not None:
            self.usage = delta.usage
        if delta.finish_reason:
            self.finish_reason = delta.finish_reason

    def result(self) -> LLMResult:
        return LLMResult(
            model=self.model,
            message=AssistantPromptMessage(
                content="".join(self.content),
                tool_calls=[self.tool_calls[i] for i in sorted(self.tool_calls)],
                opaque_body=self.opaque_body,
            ),
            usage=self.usage,
            system_fingerprint=self.system_fingerprint,
            reasoning_content="".join(self.reasoning),
            refusal="".join(self.refusal),
            finish_reason=self.finish_reason,
        )
