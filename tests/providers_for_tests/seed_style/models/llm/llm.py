"""A seed-style synchronous LLM: blocking sleeps, a plain generator, `_invoke` returning either
an LLMResult or a generator, exactly as the seed's documentation shows."""

import time
from collections.abc import Generator

from providers_for_tests import events

from providers.sdk.entities import (
    AssistantPromptMessage,
    AssistantPromptMessageDelta,
    LLMResult,
    LLMResultChunk,
    LLMResultChunkDelta,
    LLMUsage,
    PromptMessage,
    PromptMessageTool,
)
from providers.sdk.errors import InvokeConnectionError
from providers.sdk.model_types import LargeLanguageModel


class SeedStyleLargeLanguageModel(LargeLanguageModel):
    def _invoke(
        self,
        model: str,
        credentials: dict,
        prompt_messages: list[PromptMessage],
        model_parameters: dict,
        tools: list[PromptMessageTool] | None = None,
        stop: list[str] | None = None,
        stream: bool = True,
        user: str | None = None,
    ) -> LLMResult | Generator:
        if stream:
            return self._handle_stream_response(model, model_parameters)
        return self._handle_sync_response(model, model_parameters)

    def _handle_stream_response(self, model: str, params: dict) -> Generator:
        delay = params["chunk_delay_ms"] / 1000
        try:
            for i in range(params["words"]):
                if delay:
                    time.sleep(delay)
                yield LLMResultChunk(
                    model=model,
                    delta=LLMResultChunkDelta(
                        message=AssistantPromptMessageDelta(content=f"w{i} ")
                    ),
                )
        except GeneratorExit:
            events.generator_stopped(params.get("tag") or "seed_style")
            raise
        yield LLMResultChunk(
            model=model,
            delta=LLMResultChunkDelta(
                usage=LLMUsage(prompt_tokens=3, completion_tokens=params["words"]),
                finish_reason="stop",
            ),
        )

    def _handle_sync_response(self, model: str, params: dict) -> LLMResult:
        text = "".join(f"w{i} " for i in range(params["words"]))
        return LLMResult(
            model=model,
            message=AssistantPromptMessage(content=text),
            usage=LLMUsage(prompt_tokens=3, completion_tokens=params["words"]),
            finish_reason="stop",
        )

    def validate_credentials(self, model: str, credentials: dict) -> None:
        pass

    @property
    def _invoke_error_mapping(self) -> dict:
        # The kind of mapping a requests-based provider declares.
        return {InvokeConnectionError: [ConnectionError]}
