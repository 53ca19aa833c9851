"""OpenAI chat: streamed and whole answers, tool calls, reasoning, refusals, vision parts,
response formats, reasoning-model parameters, stop, usage and price, as a caller sees them
through the gRPC server and as the fake OpenAI upstream receives them."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import grpc
import pytest

from modelruntime import client as mr

from ..fakes.openai_wire import ChatStream, chat_completion, fragment, reply, tool_call, usage
from ..upstream import FakeUpstream
from ._support import CHAT, KEY, PROVIDER, creds, price

WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Weather for a city",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}


def sent(upstream: FakeUpstream) -> dict[str, Any]:
    body: dict[str, Any] = upstream.last(CHAT).json()
    return body


# ---- text ------------------------------------------------------------------------------------


@pytest.mark.parametrize("line_ending", ["\n", "\r\n"])
def test_a_streamed_answer_is_one_chunk_per_delta_with_usage_and_price_on_the_last(
    client: mr.ModelRuntimeClient, upstream: FakeUpstream, line_ending: str
) -> None:
    script = (
        ChatStream(line_ending=line_ending)
        .role()
        .ping()
        .content("Hel", "lo", " world")
        .finish("stop")
        .usage(12, 3, cached_tokens=4)
        .done()
    )
    upstream.route("POST", CHAT, script.handler())

    chunks = list(client.stream_llm(PROVIDER, "gpt-4o-mini", creds(upstream), "Say hello"))

    assert len(chunks) == script.deltas == 6
    assert [c.delta.index for c in chunks] == list(range(6))
    assert [c.delta.message.content for c in chunks] == ["", "Hel", "lo", " world", "", ""]
    assert [c.delta.finish_reason for c in chunks] == ["", "", "", "", "", "stop"]
    assert [c.delta.HasField("usage") for c in chunks] == [False] * 5 + [True]
    last = chunks[-1]
    assert last.model == "gpt-4o-mini-2024-07-18"
    assert last.system_fingerprint == "fp_fake"
    spent = last.delta.usage
    assert (spent.prompt_tokens, spent.completion_tokens, spent.total_tokens) == (12, 3, 15)
    assert spent.cached_prompt_tokens == 4
    assert Decimal(spent.prompt_unit_price) == Decimal("0.15")
    assert Decimal(spent.prompt_price) == price(12, "0.15")
    assert Decimal(spent.completion_price) == price(3, "0.60")
    assert Decimal(spent.total_price) == price(12, "0.15") + price(3, "0.60")
    assert spent.currency == "USD"

    recorded = upstream.last(CHAT)
    assert recorded.headers["authorization"] == f"Bearer {KEY}"
    assert "openai-organization" not in recorded.headers
    body = recorded.json()
    assert body["model"] == "gpt-4o-mini"
    assert body["messages"] == [{"role": "user", "content": "Say hello"}]
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    # The model's parameter defaults are filled in and sent under OpenAI's names.
    assert body["max_tokens"] == 4096
    assert body["temperature"] == 1.0


def test_a_whole_answer_carries_content_usage_price_and_finish_reason(
    client: mr.ModelRuntimeClient, upstream: FakeUpstream
) -> None:
    upstream.route(
        "POST", CHAT, reply(chat_completion("Hello!", usage=usage(20, 2, reasoning_tokens=0)))
    )

    result = client.invoke_llm(
        PROVIDER,
        "gpt-4.1",
        creds(upstream),
        [mr.system_message("Be brief."), mr.user_message("Hi")],
        model_parameters={"temperature": 0.2, "max_tokens": 50},
    )

    assert result.message.content == "Hello!"
    assert result.finish_reason == "stop"
    assert result.id == "chatcmpl-fake01"
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (20, 2)
    assert Decimal(result.usage.total_price) == price(20, "2.00") + price(2, "8.00")
    body = sent(upstream)
    assert "stream" not in body and "stream_options" not in body
    assert body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
    ]
    assert (body["temperature"], body["max_tokens"]) == (0.2, 50)


def test_the_organization_and_a_base_url_that_already_ends_in_v1_are_honoured(
    client: mr.ModelRuntimeClient, upstream: FakeUpstream
) -> None:
    upstream.route("POST", CHAT, reply(chat_completion("ok", usage=usage(1, 1))))
    credentials = creds(upstream, openai_organization="org-test123")
    credentials["openai_api_base"] = upstream.url + "/v1/"

    client.invoke_llm(PROVIDER, "gpt-4o-mini", credentials, "hi")

    recorded = upstream.last()
    assert recorded.path == CHAT
    assert recorded.headers["openai-organization"] == "org-test123"


# ---- tool calls -------------------------------------------------------------------------------


def test_parallel_tool_calls_stream_as_fragments_by_index(
    client: mr.ModelRuntimeClient, upstream: FakeUpstream
) -> None:
    script = (
        ChatStream()
        .role()
        .tool_calls(
            fragment(0, id="call_A", name="get_weather", arguments=""),
            fragment(1, id="call_B", name="get_weather", arguments=""),
        )
        .tool_call(0, arguments='{"ci')
        .tool_call(1, arguments='{"city": "Rome"}')
        .tool_call(0, arguments='ty": "Paris"}')
        .finish("tool_calls")
        .usage(40, 30)
        .done()
    )
    upstream.route("POST", CHAT, script.handler())

    chunks = list(
        client.stream_llm(
            PROVIDER, "gpt-4.1-mini", creds(upstream), "Weather?", tools=[WEATHER_TOOL]
        )
    )

    assert len(chunks) == script.deltas == 7
    fragments = [
        [(t.index, t.id, t.function.name, t.function.arguments) for t in c.delta.message.tool_calls]
        for c in chunks
    ]
    assert fragments == [
        [],
        [(0, "call_A", "get_weather", ""), (1, "call_B", "get_weather", "")],
        [(0, "", "", '{"ci')],
        [(1, "", "", '{"city": "Rome"}')],
        [(0, "", "", 'ty": "Paris"}')],
        [],
        [],
    ]
    assert chunks[-1].delta.finish_reason == "tool_calls"
    whole = mr.collect(chunks)
    assert [
        (c.id, c.function.name, json.loads(c.function.arguments)) for c in whole.message.tool_calls
    ] == [
        ("call_A", "get_weather", {"city": "Paris"}),
        ("call_B", "get_weather", {"city": "Rome"}),
    ]
    assert sent(upstream)["tools"] == [{"type": "function", "function": WEATHER_TOOL}]


def test_whole_answer_tool_calls_and_a_tool_round_trip_on_the_wire(
    client: mr.ModelRuntimeClient, upstream: FakeUpstream
) -> None:
    calls = [
        tool_call("call_A", "get_weather", {"city": "Paris"}),
        tool_call("call_B", "get_weather", {"city": "Rome"}),
    ]
    upstream.route(
        "POST",
        CHAT,
        reply(
            chat_completion(None, tool_calls=calls, finish_reason="tool_calls", usage=usage(9, 9))
        ),
    )
    history = [
        mr.user_message("Weather in Paris?"),
        mr.assistant_message(
            "",
            tool_calls=[
                {
                    "id": "call_0",
                    "function": {"name": "get_weather", "arguments": {"city": "Paris"}},
                }
            ],
        ),
        mr.tool_message("18C, clear", tool_call_id="call_0"),
    ]

    result = client.invoke_llm(PROVIDER, "gpt-4o", creds(upstream), history, tools=[WEATHER_TOOL])

    assert result.finish_reason == "tool_calls"
    assert [
        (c.id, c.type, c.function.name, c.function.arguments) for c in result.message.tool_calls
    ] == [
        ("call_A", "function", "get_weather", '{"city": "Paris"}'),
        ("call_B", "function", "get_weather", '{"city": "Rome"}'),
    ]
    assert sent(upstream)["messages"] == [
        {"role": "user", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_0",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_0", "content": "18C, clear"},
    ]


# ---- reasoning and refusals ----------------------------------------------------------------


@pytest.mark.parametrize("field", ["reasoning_content", "reasoning"])
def test_streamed_reasoning_is_kept_apart_from_the_answer(
    client: mr.ModelRuntimeClient, upstream: FakeUpstream, field: str
) -> None:
    script = (
        ChatStream()
        .role(reasoning_field=field)
        .reasoning("Think", "ing.", field=field)
        .content("Answer")
        .finish("stop")
        .usage(5, 9, reasoning_tokens=6)
        .done()
    )
    upstream.route("POST", CHAT, script.handler())

    chunks = list(client.stream_llm(PROVIDER, "o4-mini", creds(upstream), "Why?"))

    assert len(chunks) == script.deltas
    assert [c.delta.message.reasoning_content for c in chunks[:3]] == ["", "Think", "ing."]
    assert "".join(c.delta.message.content for c in chunks) == "Answer"
    assert chunks[-1].delta.usage.reasoning_tokens == 6


def test_a_refusal_streams_in_its_own_field(
    client: mr.ModelRuntimeClient, upstream: FakeUpstream
) -> None:
    script = (
        ChatStream().role().refusal("I can't ", "help with that.").finish("stop").usage(5, 4).done()
    )
    upstream.route("POST", CHAT, script.handler())

    chunks = list(client.stream_llm(PROVIDER, "gpt-4o", creds(upstream), "Do harm"))

    assert len(chunks) == script.deltas
    assert "".join(c.delta.message.refusal for c in chunks) == "I can't help with that."
    assert all(c.delta.message.content == "" for c in chunks)


def test_whole_answer_reasoning_and_refusal(
    client: mr.ModelRuntimeClient, upstream: FakeUpstream
) -> None:
    upstream.route(
        "POST",
        CHAT,
        reply(chat_completion(None, reasoning="hidden steps", refusal="No.", usage=usage(3, 3))),
    )

    result = client.invoke_llm(PROVIDER, "o3", creds(upstream), "x")

    assert (result.reasoning_content, result.refusal, result.message.content) == (
        "hidden steps",
        "No.",
        "",
    )


# ---- what reaches the wire ---------------------------------------------------------------------


def test_vision_parts_reach_the_wire_as_image_url_parts_with_detail(
    client: mr.ModelRuntimeClient, upstream: FakeUpstream
) -> None:
    upstream.route("POST", CHAT, reply(chat_completion("A cat.", usage=usage(100, 3))))
    content = [
        "What is in these?",
        {
            "type": "image",
            "url": "https://example.com/cat.png",
            "mime_type": "image/png",
            "detail": "high",
        },
        {"type": "image", "base64_data": "iVBORw0KGgo=", "mime_type": "image/png"},
        {
            "type": "document",
            "base64_data": "JVBERi0x",
            "mime_type": "application/pdf",
            "filename": "a.pdf",
        },
    ]

    client.invoke_llm(PROVIDER, "gpt-4o", creds(upstream), [mr.user_message(content)])

    assert sent(upstream)["messages"][0]["content"] == [
        {"type": "text", "text": "What is in these?"},
        {
            "type": "image_url",
            "image_url": {"url": "https://example.com/cat.png", "detail": "high"},
        },
        {
            "type": "image_url",
            "image_url": {"url": "data:image/png;base64,iVBORw0KGgo=", "detail": "low"},
        },
        {
            "type": "file",
            "file": {"file_data": "data:application/pdf;base64,JVBERi0x", "filename": "a.pdf"},
        },
    ]


def test_an_image_for_a_model_without_vision_is_refused_before_any_request(
    client: mr.ModelRuntimeClient, upstream: FakeUpstream
) -> None:
    content = [
        "What is this?",
        {"type": "image", "url": "https://example.com/cat.png", "mime_type": "image/png"},
    ]

    with pytest.raises(mr.InvalidRequestError) as caught:
        client.invoke_llm(PROVIDER, "o3-mini", creds(upstream), [mr.user_message(content)])

    assert caught.value.reason == "INVALID_REQUEST"
    assert upstream.requests == []


@pytest.mark.parametrize(
    ("parameters", "expected"),
    [
        ({"response_format": "json_object"}, {"type": "json_object"}),
        (
            {"response_format": "json_schema", "json_schema": '{"type": "object"}'},
            {
                "type": "json_schema",
                "json_schema": {"name": "response", "schema": {"type": "object"}},
            },
        ),
        (
            {
                "response_format": "json_schema",
                "json_schema": '{"name": "city", "strict": true, "schema": {"type": "object"}}',
            },
            {
                "type": "json_schema",
                "json_schema": {"name": "city", "strict": True, "schema": {"type": "object"}},
            },
        ),
    ],
)
def test_response_format_reaches_the_wire_as_openais_object(
    client: mr.ModelRuntimeClient,
    upstream: FakeUpstream,
    parameters: dict[str, str],
    expected: dict[str, Any],
) -> None:
    upstream.route("POST", CHAT, reply(chat_completion('{"a": 1}', usage=usage(5, 5))))

    client.invoke_llm(
        PROVIDER, "gpt-4.1-nano", creds(upstream), "json please", model_parameters=parameters
    )

    body = sent(upstream)
    assert body["response_format"] == expected
    assert "json_schema" not in body


def test_a_json_schema_that_is_not_json_is_an_invalid_parameter(
    client: mr.ModelRuntimeClient, upstream: FakeUpstream
) -> None:
    with pytest.raises(mr.InvalidParameterError) as caught:
        client.invoke_llm(
            PROVIDER,
            "gpt-4o",
            creds(upstream),
            "x",
            model_parameters={"response_format": "json_schema", "json_schema": "{not json"},
        )

    assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.reason == "INVALID_PARAMETER"
    assert [v.field for v in caught.value.field_violations] == ["model_parameters.json_schema"]
    assert upstream.requests == []


@pytest.mark.parametrize(
    ("model", "parameters"),
    [
        ("o4-mini", {"max_tokens": 500, "reasoning_effort": "low"}),
        ("o3", {"max_tokens": 500, "reasoning_effort": "high"}),
        ("gpt-5", {"max_tokens": 500, "reasoning_effort": "minimal", "verbosity": "low"}),
    ],
)
def test_reasoning_models_get_max_completion_tokens_and_no_sampling_parameters(
    client: mr.ModelRuntimeClient, upstream: FakeUpstream, model: str, parameters: dict[str, Any]
) -> None:
    upstream.route("POST", CHAT, ChatStream.text("ok").handler())

    list(client.stream_llm(PROVIDER, model, creds(upstream), "x", model_parameters=parameters))

    body = sent(upstream)
    assert body["max_completion_tokens"] == 500
    assert "max_tokens" not in body
    for refused in ("temperature", "top_p", "presence_penalty", "frequency_penalty"):
        assert refused not in body
    assert {k: body[k] for k in parameters if k != "max_tokens"} == {
        k: v for k, v in parameters.items() if k != "max_tokens"
    }


def test_sampling_parameters_are_refused_for_a_reasoning_model_before_any_request(
    client: mr.ModelRuntimeClient, upstream: FakeUpstream
) -> None:
    with pytest.raises(mr.InvalidParameterError) as caught:
        client.invoke_llm(
            PROVIDER, "o3", creds(upstream), "x", model_parameters={"temperature": 0.5}
        )

    assert [v.field for v in caught.value.field_violations] == ["model_parameters.temperature"]
    assert upstream.requests == []


def test_stop_sequences_and_the_user_reach_the_wire(
    client: mr.ModelRuntimeClient, upstream: FakeUpstream
) -> None:
    upstream.route("POST", CHAT, ChatStream.text("one two").handler())

    list(
        client.stream_llm(
            PROVIDER,
            "gpt-4o-mini",
            creds(upstream),
            "count",
            stop=["three", "\n\n"],
            user="user-42",
        )
    )

    body = sent(upstream)
    assert body["stop"] == ["three", "\n\n"]
    assert body["user"] == "user-42"


def test_a_stream_that_ignores_include_usage_still_ends_with_the_finish_reason_and_usage(
    client: mr.ModelRuntimeClient, upstream: FakeUpstream
) -> None:
    # A proxy in front of OpenAI that drops the usage chunk: the finish reason is not lost and
    # the runtime's token estimate closes the stream.
    script = ChatStream().role().content("Hi").finish("length").done()
    upstream.route("POST", CHAT, script.handler())

    chunks = list(client.stream_llm(PROVIDER, "gpt-4o-mini", creds(upstream), "hello world"))

    assert chunks[-1].delta.finish_reason == "length"
    assert chunks[-1].delta.usage.prompt_tokens == 9  # the real o200k count, see test_tokens
    assert chunks[-1].delta.usage.completion_tokens > 0
