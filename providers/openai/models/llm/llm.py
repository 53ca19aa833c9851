"""OpenAI chat models over `/chat/completions`, streamed chunk by chunk or answered whole.

The wire format itself (messages, tool calls, stream events, errors) is
`providers.sdk.protocols.openai_wire`; this module adds what is OpenAI's own: which models
reason, and what those accept.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

from providers.openai.models.common import OpenAIApi, OpenAICredentialCheck
from providers.openai.models.llm import tokens
from providers.sdk.entities.llm import LLMResult, LLMResultChunk
from providers.sdk.entities.message import PromptMessage, PromptMessageTool
from providers.sdk.model_types import LargeLanguageModel
from providers.sdk.model_types.ai_model import Credentials
from providers.sdk.protocols import openai_wire

# Reasoning models: they take `max_completion_tokens` (which also bounds the hidden reasoning)
# and refuse `max_tokens` and the sampling parameters. gpt-5-chat is GPT-5's non-reasoning
# chat model and takes what GPT-4o takes.
REASONING_MODELS = ("o1", "o3", "o4", "gpt-5")
NON_REASONING_MODELS = ("gpt-5-chat",)
# OpenAI always sends the include_usage chunk last, so it alone carries the finish reason.
DIALECT = openai_wire.Dialect(finish_reason_on_usage_chunk=True)
REFUSED_BY_REASONING_MODELS = (
    "temperature",
    "top_p",
    "presence_penalty",
    "frequency_penalty",
    "logprobs",
    "top_logprobs",
    "logit_bias",
)


def is_reasoning_model(model: str) -> bool:
    base = model.split(":")[1] if model.startswith("ft:") and ":" in model[3:] else model
    return base.startswith(REASONING_MODELS) and not base.startswith(NON_REASONING_MODELS)


def chat_parameters(model: str, parameters: Mapping[str, Any]) -> dict[str, Any]:
    """The checked model parameters as OpenAI takes them for `model`."""
    params = openai_wire.response_format_to_wire(parameters)
    if is_reasoning_model(model):
        for name in REFUSED_BY_REASONING_MODELS:
            params.pop(name, None)
        if "max_tokens" in params:
            params["max_completion_tokens"] = params.pop("max_tokens")
    return params


class OpenAILargeLanguageModel(OpenAICredentialCheck, LargeLanguageModel):
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
    ) -> LLMResult | AsyncIterator[LLMResultChunk]:
        api = OpenAIApi(credentials)
        body = openai_wire.chat_request_body(
            model,
            prompt_messages,
            chat_parameters(model, model_parameters),
            tools=tools,
            stop=stop,
            stream=stream,
            user=user,
            dialect=DIALECT,
        )
        if stream:
            return self._stream(api, body, model)
        answer = await api.post_json("/chat/completions", body)
        return openai_wire.result_from_chat_completion(answer, model, DIALECT)

    async def _stream(
        self, api: OpenAIApi, body: dict[str, Any], model: str
    ) -> AsyncIterator[LLMResultChunk]:
        async with api.stream("/chat/completions", body) as response:
            async for chunk in openai_wire.stream_chat(response, model=model, dialect=DIALECT):
                yield chunk

    async def get_num_tokens(
        self,
        model: str,
        credentials: Credentials,
        prompt_messages: list[PromptMessage],
        tools: list[PromptMessageTool] | None = None,
    ) -> int:
        return await tokens.count_prompt(model, prompt_messages, tools)
