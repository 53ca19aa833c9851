"""Xinference LLMs: `/v1/chat/completions` for chat models, `/v1/completions` for generate-only
ones, chosen by the launched model's description.

Streamed tool calls (Xinference sends none while streaming; reference §6): for Qwen-family
models the tagged tool-call text is read out of the stream as it arrives (`tool_tags`); for
other families a call with tools is made without streaming, and its whole answer, tool calls
included, is passed on as one chunk. Either way the caller gets real tool calls.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from providers.sdk.entities.llm import LLMResult, LLMResultChunk
from providers.sdk.entities.message import PromptMessage, PromptMessageTool
from providers.sdk.entities.schema import AIModelEntity
from providers.sdk.errors import InvokeBadRequestError, InvokeError
from providers.sdk.model_types import LargeLanguageModel
from providers.sdk.model_types.ai_model import Credentials
from providers.sdk.protocols.openai_wire import (
    ChatStreamParser,
    Dialect,
    chat_request_body,
    completion_prompt,
    completion_request_body,
    result_from_chat_completion,
    result_from_text_completion,
    stream_chat,
    stream_completion,
)
from providers.xinference.api import (
    Connection,
    describe_as,
    open_stream,
    request_json,
    scrub_addresses,
    validate,
)
from providers.xinference.models.llm.tool_tags import TaggedToolCallParser
from providers.xinference.schemas import llm_schema, writes_tagged_tool_calls

# Usage comes on the finish chunk; completion streams end at EOF, chat streams with [DONE].
XINFERENCE = Dialect(include_usage=False, completion_done_marker=False, developer_role="system")


class XinferenceLargeLanguageModel(LargeLanguageModel):
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
        # `user` is not sent: Xinference passes unknown keys to the engine, which may refuse it.
        connection = Connection.of(credentials)
        description = await describe_as(connection, self.model_type)
        parameters = _wire_parameters(model_parameters)
        uid = connection.model_uid
        if not description.chats:
            if tools:
                raise InvokeBadRequestError(
                    f"model uid {uid!r} is a completion (generate) model; tools need a chat model"
                )
            body = completion_request_body(
                uid,
                completion_prompt(prompt_messages),
                parameters,
                stop=stop,
                stream=stream,
                dialect=XINFERENCE,
            )
            if stream:
                return self._stream(connection, "/v1/completions", body, model, None)
            answer = await request_json(connection, "POST", "/v1/completions", json=body)
            return result_from_text_completion(answer, model)
        tagged = bool(tools) and writes_tagged_tool_calls(description)
        stream = stream and (not tools or tagged)
        body = chat_request_body(
            uid,
            prompt_messages,
            parameters,
            tools=tools,
            stop=stop,
            stream=stream,
            dialect=XINFERENCE,
        )
        if stream:
            parser = TaggedToolCallParser(model, XINFERENCE) if tagged else None
            return self._stream(connection, "/v1/chat/completions", body, model, parser)
        answer = await request_json(connection, "POST", "/v1/chat/completions", json=body)
        return result_from_chat_completion(answer, model, XINFERENCE)

    @staticmethod
    async def _stream(
        connection: Connection,
        path: str,
        body: dict[str, Any],
        model: str,
        parser: ChatStreamParser | None,
    ) -> AsyncIterator[LLMResultChunk]:
        try:
            async with open_stream(connection, "POST", path, json=body) as response:
                if path == "/v1/completions":
                    chunks = stream_completion(response, model=model, dialect=XINFERENCE)
                else:
                    chunks = stream_chat(response, model=model, dialect=XINFERENCE, parser=parser)
                async for chunk in chunks:
                    yield chunk
        except InvokeError as exc:
            # An error event mid-stream quotes the server's exception text as it is.
            scrub_addresses(exc)
            raise

    async def validate_credentials(self, model: str, credentials: Credentials) -> None:
        await validate(Connection.of(credentials), self.model_type)

    async def get_customizable_model_schema(
        self, model: str, credentials: Credentials
    ) -> AIModelEntity:
        return llm_schema(model, await describe_as(Connection.of(credentials), self.model_type))


def _wire_parameters(model_parameters: dict[str, Any]) -> dict[str, Any]:
    parameters = dict(model_parameters)
    think = parameters.pop("think", None)
    if think is not None:
        parameters["chat_template_kwargs"] = {"enable_thinking": bool(think)}
    return parameters
