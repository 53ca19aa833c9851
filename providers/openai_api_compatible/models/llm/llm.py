"""Chat and completion models of OpenAI-compatible servers.

The credentials describe the model, as in Dify's plugin:

- `mode`: `chat` calls `/chat/completions`, `completion` the legacy `/completions` (the prompt
  is the messages' texts, one after another).
- `function_calling_type`: `tool_call` sends `tools` and reads `tool_calls`; `function_call`
  speaks OpenAI's older `functions` / `function_call` (one call per turn; the call's id is the
  function's name, so the tool result's `tool_call_id` names the function as that format wants);
  `no_call` sends no tools at all, whatever the caller passed.
- `stream_function_calling`: when `not_supported`, a streamed call that carries tools is made
  unstreamed upstream (servers without it send the call as plain text or drop it) and its
  answer arrives as one chunk.
- `vision_support`, `audio_support`, `document_support`: which content parts the model
  accepts; the base class refuses the others before any request is made.
- `stream_mode_delimiter`: see `framing`. Standard SSE streams must end with `[DONE]`; streams
  in a server's own framing must at least have sent a finish reason, else they count as cut.
- `stream_include_usage`, `user_identity_support`, `token_param_name`, `structured_output_support`,
  `agent_thought_support` with `compatibility_mode`: see the provider YAML.

Reasoning arrives in `reasoning_content` (DeepSeek, older vLLM) or `reasoning` (newer vLLM,
Ollama); both are read, `reasoning_content` first, into the chunk's own reasoning field.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from providers.sdk.entities.llm import (
    AssistantPromptMessageDelta,
    LLMMode,
    LLMResult,
    LLMResultChunk,
    ToolCallDelta,
)
from providers.sdk.entities.message import (
    PromptMessage,
    PromptMessageTool,
    ToolCall,
    ToolCallFunction,
    UserPromptMessage,
)
from providers.sdk.entities.schema import (
    AIModelEntity,
    FetchFrom,
    ModelFeature,
    ModelProperties,
    ModelType,
    ParameterRule,
)
from providers.sdk.errors import CredentialsValidateFailedError, InvokeServerUnavailableError
from providers.sdk.http import open_stream, request, request_json, upstream_errors
from providers.sdk.model_types import LargeLanguageModel
from providers.sdk.model_types.ai_model import Credentials
from providers.sdk.protocols import openai_wire

from .. import common, framing

# Models that take `max_completion_tokens` and refuse `max_tokens` (OpenAI's reasoning models).
_NEEDS_MAX_COMPLETION_TOKENS = re.compile(r"^(o1|o3|o4|gpt-5)", re.IGNORECASE)
# A validation answer this short costs nothing; reasoning models need room to say anything.
_VALIDATION_TOKENS = 1
_VALIDATION_TOKENS_REASONING = 16


@dataclass(frozen=True, slots=True)
class _Setup:
    """What the credentials say about talking to this model, read once per call."""

    mode: LLMMode
    calling: str  # tool_call | function_call | no_call
    streams_calls: bool
    delimiter: str | None
    dialect: openai_wire.Dialect
    sends_user: bool
    token_parameter: str  # max_tokens | max_completion_tokens
    extended: bool
    thinking: str  # supported | only_thinking_supported | not_supported

    @property
    def path(self) -> str:
        return "chat/completions" if self.mode is LLMMode.CHAT else "completions"


def _setup(model: str, credentials: Credentials) -> _Setup:
    delimiter = framing.stream_delimiter(credentials)
    upstream = common.upstream_model(model, credentials)
    token_parameter = credentials.get("token_param_name") or "auto"
    if token_parameter == "auto":
        token_parameter = (
            "max_completion_tokens"
            if _NEEDS_MAX_COMPLETION_TOKENS.match(upstream)
            else "max_tokens"
        )
    return _Setup(
        mode=LLMMode(credentials.get("mode") or "chat"),
        calling=credentials.get("function_calling_type") or "no_call",
        streams_calls=credentials.get("stream_function_calling") == "supported",
        delimiter=delimiter,
        dialect=openai_wire.Dialect(
            include_usage=credentials.get("stream_include_usage") != "disabled",
            # Servers framing their streams their own way are rarely strict about [DONE].
            chat_done_marker=delimiter is None,
            completion_done_marker=delimiter is None,
            # Most self-hosted chat templates know system but not developer.
            developer_role="system",
        ),
        sends_user=credentials.get("user_identity_support") != "no_support",
        token_parameter=token_parameter,
        extended=credentials.get("compatibility_mode") == "extended",
        thinking=credentials.get("agent_thought_support") or "not_supported",
    )


class OpenAICompatibleLargeLanguageModel(LargeLanguageModel):
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
        setup = _setup(model, credentials)
        if setup.calling == "no_call" or setup.mode is LLMMode.COMPLETION:
            tools = None
        streamed = stream and not (tools and not setup.streams_calls)
        body = _request_body(
            setup,
            common.upstream_model(model, credentials),
            prompt_messages,
            _wire_parameters(setup, model_parameters),
            tools=tools,
            stop=stop,
            stream=streamed,
            user=user if setup.sends_user else None,
        )
        if streamed:
            return self._stream(setup, model, credentials, body)
        answer = await request_json(
            common.client(credentials),
            "POST",
            setup.path,
            check=common.check,
            json=body,
            headers=common.headers(credentials),
        )
        return _read_answer(setup, answer, model)

    async def _stream(
        self, setup: _Setup, model: str, credentials: Credentials, body: dict[str, Any]
    ) -> AsyncIterator[LLMResultChunk]:
        async with open_stream(
            common.client(credentials),
            "POST",
            setup.path,
            check=common.check,
            json=body,
            headers=common.headers(credentials),
        ) as response:
            async for chunk in _chunks(setup, response, model):
                yield chunk

    async def validate_credentials(self, model: str, credentials: Credentials) -> None:
        """The cheapest real call: a one-token answer to "ping", streamed when the server only
        streams (`stream_mode_auth`). Its failures say what to fix."""
        setup = _setup(model, credentials)
        limit = (
            _VALIDATION_TOKENS_REASONING
            if setup.token_parameter == "max_completion_tokens"
            else _VALIDATION_TOKENS
        )
        streamed = credentials.get("stream_mode_auth") == "use"
        body = _request_body(
            setup,
            common.upstream_model(model, credentials),
            [_PING],
            {setup.token_parameter: limit},
            tools=None,
            stop=None,
            stream=streamed,
            user=None,
        )
        check = common.explained(common.check, credentials, setup.path)
        client, headers = common.client(credentials), common.headers(credentials)
        if not streamed:
            response = await request(
                client, "POST", setup.path, check=check, json=body, headers=headers
            )
            with _wrong_shape_explained(setup):
                with upstream_errors():
                    answer = json.loads(response.content)
                _read_answer(setup, answer, model)
                _check_shape(setup, answer)
            return
        async with open_stream(
            client, "POST", setup.path, check=check, json=body, headers=headers
        ) as response:
            with _wrong_shape_explained(setup):
                async for _chunk in _chunks(setup, response, model):
                    # One chunk proves the server streams answers; the rest is not needed.
                    return

    def get_customizable_model_schema(
        self, model: str, credentials: Credentials
    ) -> AIModelEntity | None:
        setup = _setup(model, credentials)
        chat = setup.mode is LLMMode.CHAT
        features: list[ModelFeature] = []
        if chat and setup.calling == "tool_call":
            features += [ModelFeature.TOOL_CALL, ModelFeature.MULTI_TOOL_CALL]
        elif chat and setup.calling == "function_call":
            features.append(ModelFeature.TOOL_CALL)
        if features and setup.streams_calls:
            features.append(ModelFeature.STREAM_TOOL_CALL)
        if chat:
            for variable, feature in _CONTENT_FEATURES:
                if credentials.get(variable) == "support":
                    features.append(feature)
        thinks = setup.thinking in ("supported", "only_thinking_supported")
        if thinks:
            features.append(ModelFeature.AGENT_THOUGHT)
        structured = chat and credentials.get("structured_output_support") == "supported"
        if structured:
            features.append(ModelFeature.STRUCTURED_OUTPUT)

        max_tokens = common.int_credential(credentials, "max_tokens_to_sample", 4096)
        rules = [
            _without_default("temperature", max=2.0),
            _without_default("top_p"),
            _without_default("presence_penalty", min=-2.0, max=2.0),
            _without_default("frequency_penalty", min=-2.0, max=2.0),
            _without_default("max_tokens", max=max_tokens),
        ]
        if structured:
            rules += [
                ParameterRule.of(
                    "response_format",
                    use_template="response_format",
                    options=["text", "json_object", "json_schema"],
                ),
                ParameterRule.of("json_schema", use_template="json_schema"),
            ]
        if setup.thinking == "supported":
            rules.append(
                ParameterRule.of(
                    "enable_thinking",
                    type="boolean",
                    label={"en_US": "Thinking mode", "zh_Hans": "思考模式"},
                    help={
                        "en_US": "Whether the model thinks before answering (sent as "
                        "chat_template_kwargs and thinking in extended compatibility mode).",
                        "zh_Hans": "模型是否先思考再回答(扩展兼容模式下以 chat_template_kwargs 和 "
                        "thinking 发送)。",
                    },
                )
            )
        if thinks:
            rules.append(
                ParameterRule.of(
                    "reasoning_effort",
                    type="string",
                    options=["low", "medium", "high"],
                    label={"en_US": "Reasoning effort", "zh_Hans": "推理强度"},
                )
            )
        return AIModelEntity(
            model=model,
            label=common.label(model, credentials),
            model_type=ModelType.LLM,
            fetch_from=FetchFrom.CUSTOMIZABLE_MODEL,
            features=features,
            model_properties=ModelProperties(
                mode=setup.mode,
                context_size=common.int_credential(credentials, "context_size", 4096),
            ),
            parameter_rules=rules,
        )


_CONTENT_FEATURES = (
    ("vision_support", ModelFeature.VISION),
    ("audio_support", ModelFeature.AUDIO),
    ("document_support", ModelFeature.DOCUMENT),
)

_PING = UserPromptMessage(content="ping")


def _without_default(name: str, **limits: float) -> ParameterRule:
    """A rule from Dify's template with its range, but no default: what the caller does not set
    is not sent, so the server's own defaults (often the model's generation config) apply."""
    return ParameterRule.of(name, use_template=name, **limits).model_copy(update={"default": None})


def _wire_parameters(setup: _Setup, parameters: Mapping[str, Any]) -> dict[str, Any]:
    """The checked parameters renamed and reshaped the way this server wants them."""
    params = openai_wire.response_format_to_wire(parameters)
    if "max_tokens" in params and setup.token_parameter != "max_tokens":
        params[setup.token_parameter] = params.pop("max_tokens")
    asked = params.pop("enable_thinking", None)
    thinking = {"only_thinking_supported": True, "not_supported": False}.get(setup.thinking, asked)
    if setup.extended and thinking is not None:
        # vLLM and SGLang read chat_template_kwargs, Zhipu-style APIs `thinking`, others the flag.
        kwargs = params.setdefault("chat_template_kwargs", {})
        kwargs["enable_thinking"] = kwargs["thinking"] = thinking
        params["thinking"] = {"type": "enabled" if thinking else "disabled"}
        params["enable_thinking"] = thinking
    return params


def _request_body(
    setup: _Setup,
    upstream: str,
    prompt_messages: list[PromptMessage],
    parameters: dict[str, Any],
    *,
    tools: list[PromptMessageTool] | None,
    stop: list[str] | None,
    stream: bool,
    user: str | None,
) -> dict[str, Any]:
    if setup.mode is LLMMode.COMPLETION:
        return openai_wire.completion_request_body(
            upstream,
            openai_wire.completion_prompt(prompt_messages),
            parameters,
            stop=stop,
            stream=stream,
            user=user,
            dialect=setup.dialect,
        )
    body = openai_wire.chat_request_body(
        upstream,
        prompt_messages,
        parameters,
        tools=tools,
        stop=stop,
        stream=stream,
        user=user,
        dialect=setup.dialect,
    )
    if setup.calling == "function_call":
        _as_legacy_functions(body)
    return body


def _read_answer(setup: _Setup, answer: Any, model: str) -> LLMResult:
    if setup.mode is LLMMode.COMPLETION:
        return openai_wire.result_from_text_completion(answer, model)
    result = openai_wire.result_from_chat_completion(answer, model, setup.dialect)
    if setup.calling == "function_call":
        message = answer["choices"][0].get("message") or {}
        call = _legacy_call(message.get("function_call"))
        if call is not None:
            result.message.tool_calls = [
                ToolCall(id=call.id, type=call.type, function=call.function)
            ]
    return result


def _chunks(setup: _Setup, response: httpx.Response, model: str) -> AsyncIterator[LLMResultChunk]:
    events = framing.event_reader(setup.delimiter)
    if setup.mode is LLMMode.COMPLETION:
        return openai_wire.stream_completion(
            response, model=model, dialect=setup.dialect, events=events
        )
    parser = (
        _LegacyFunctionCallParser(model, setup.dialect)
        if setup.calling == "function_call"
        else None
    )
    return openai_wire.stream_chat(
        response, model=model, dialect=setup.dialect, parser=parser, events=events
    )


# ---- OpenAI's older function calling -----------------------------------------------------------


def _as_legacy_functions(body: dict[str, Any]) -> None:
    """A chat body in `functions` / `function_call` form instead of `tools` / `tool_calls`."""
    if "tools" in body:
        body["functions"] = [tool["function"] for tool in body.pop("tools")]
    for message in body["messages"]:
        if message["role"] == "tool":
            # The call's id is the function's name (see _legacy_call).
            message["role"] = "function"
            message["name"] = message.pop("tool_call_id") or message.get("name", "")
        elif message.get("tool_calls"):
            message["function_call"] = message.pop("tool_calls")[0]["function"]


def _legacy_call(raw: Any) -> ToolCallDelta | None:
    if not isinstance(raw, dict):
        return None
    name = raw.get("name") or ""
    arguments = raw.get("arguments") or ""
    return ToolCallDelta(
        index=0,
        id=name,
        type="function" if name else "",
        function=ToolCallFunction(name, arguments if isinstance(arguments, str) else ""),
    )


class _LegacyFunctionCallParser(openai_wire.ChatStreamParser):
    """A chat stream whose calls come as `delta.function_call` fragments: the first with the
    name, the next with pieces of the arguments; they become tool-call fragments of index 0."""

    def _message(self, choice: Mapping[str, Any]) -> AssistantPromptMessageDelta:
        message = super()._message(choice)
        call = _legacy_call((choice.get("delta") or {}).get("function_call"))
        if call is not None:
            message.tool_calls.append(call)
        return message


_ANSWER_KEY = {LLMMode.CHAT: "message", LLMMode.COMPLETION: "text"}


def _check_shape(setup: _Setup, answer: Any) -> None:
    choice = answer["choices"][0]
    if _ANSWER_KEY[setup.mode] not in choice:
        raise InvokeServerUnavailableError(f"its choice has no {_ANSWER_KEY[setup.mode]!r}")


@contextmanager
def _wrong_shape_explained(setup: _Setup) -> Iterator[None]:
    """An answer of the wrong shape during validation means the credentials describe the
    server wrongly (mode, URL), not that the server is down."""
    try:
        yield
    except InvokeServerUnavailableError as exc:
        kind = "chat completion" if setup.mode is LLMMode.CHAT else "text completion"
        raise CredentialsValidateFailedError(
            f"the server answered, but not with a {kind} ({exc.description}): check that mode "
            "(chat or completion) is one the model supports and that endpoint_url points at an "
            "OpenAI-compatible API"
        ) from exc
