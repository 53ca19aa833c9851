"""Streams `data: {"text": ...}` events from `<base_url>/v1/relay` until `data: [DONE]`; an
event with `usage` carries the token counts, one with `crash` makes the model raise a bug."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx

from providers.sdk import http
from providers.sdk.entities import (
    AssistantPromptMessageDelta,
    LLMResultChunk,
    LLMResultChunkDelta,
    PromptMessage,
    PromptMessageTool,
)
from providers.sdk.entities.llm import LLMUsage
from providers.sdk.model_types import LargeLanguageModel


class RelayLargeLanguageModel(LargeLanguageModel):
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
        prompt = str(prompt_messages[-1].content)
        return self._relay(model, credentials, prompt)

    async def _relay(
        self, model: str, credentials: dict[str, str], prompt: str
    ) -> AsyncIterator[LLMResultChunk]:
        client = http.client_for(credentials["base_url"])
        async with http.open_stream(
            client,
            "POST",
            "/v1/relay",
            check=_check,
            json={"prompt": prompt},
            # The key in the query string too, as Gemini takes it: it must not leak into spans.
            params={"key": credentials["api_key"]},
            headers={"authorization": f"Bearer {credentials['api_key']}"},
        ) as response:
            async for event in http.sse_events(response):
                if event.data == "[DONE]":
                    return
                data = json.loads(event.data)
                if data.get("crash"):
                    # A provider bug whose message holds the key: logs must not show it.
                    raise RuntimeError(f"relay bug while using key {credentials['api_key']}")
                usage = None
                if "usage" in data:
                    usage = LLMUsage(
                        prompt_tokens=data["usage"]["input"],
                        completion_tokens=data["usage"]["output"],
                        total_tokens=data["usage"]["input"] + data["usage"]["output"],
                    )
                yield LLMResultChunk(
                    model=model,
                    delta=LLMResultChunkDelta(
                        message=AssistantPromptMessageDelta(content=data.get("text", "")),
                        usage=usage,
                        finish_reason="stop" if usage else None,
                    ),
                )
        raise http.stream_cut("[DONE]")

    def validate_credentials(self, model: str, credentials: dict[str, str]) -> None:
        pass


async def _check(response: httpx.Response) -> None:
    _, text = await http.read_error_body(response)
    raise http.error_for_status(response.status_code, text, response.headers)
