"""An async LLM whose stream never ends by itself; it records when it is stopped."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from providers_for_tests import events

from providers.sdk.entities import (
    AssistantPromptMessageDelta,
    LLMResultChunk,
    LLMResultChunkDelta,
    PromptMessage,
    PromptMessageTool,
)
from providers.sdk.model_types import LargeLanguageModel


class EndlessLargeLanguageModel(LargeLanguageModel):
    async def _invoke(
        self,
        model: str,
        credentials: dict[str, str],
        prompt_messages: list[PromptMessage],
        model_parameters: dict[str, Any],
        tools: list[PromptMessageTool] | None = None,
        stop: list[str] | None = None,
        stream: bool = True,
        user: str | None = None,
    ) -> AsyncIterator[LLMResultChunk]:
        return self._endless(model, model_parameters)

    async def _endless(self, model: str, params: dict[str, Any]) -> AsyncIterator[LLMResultChunk]:
        delay = params["chunk_delay_ms"] / 1000
        raise_after = params.get("raise_after")
        i = 0
        try:
            while True:
                if raise_after is not None and i == raise_after:
                    raise KeyError("a bug in the provider")
                await asyncio.sleep(delay)
                yield LLMResultChunk(
                    model=model,
                    delta=LLMResultChunkDelta(message=AssistantPromptMessageDelta(content=f"{i} ")),
                )
                i += 1
        except (asyncio.CancelledError, GeneratorExit):
            events.generator_stopped(params["tag"])
            raise

    def validate_credentials(self, model: str, credentials: dict[str, str]) -> None:
        pass
