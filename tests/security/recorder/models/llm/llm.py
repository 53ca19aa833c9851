from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from providers.sdk.entities import (
    AssistantPromptMessageDelta,
    LLMResultChunk,
    LLMResultChunkDelta,
    PromptMessage,
    PromptMessageTool,
)
from providers.sdk.model_types import LargeLanguageModel

from ...upstream import call


class RecorderLargeLanguageModel(LargeLanguageModel):
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
        call("llm", model, credentials)
        return self._answer(model, len(prompt_messages))

    async def _answer(self, model: str, messages: int) -> AsyncIterator[LLMResultChunk]:
        yield LLMResultChunk(
            model=model,
            delta=LLMResultChunkDelta(
                message=AssistantPromptMessageDelta(content=f"{messages} messages")
            ),
        )

    async def validate_credentials(self, model: str, credentials: dict[str, str]) -> None:
        call("llm", model, credentials)
