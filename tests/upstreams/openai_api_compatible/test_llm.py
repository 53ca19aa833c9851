"""Chat and completion models through the real server and client, against a fake
OpenAI-compatible server: streamed and whole answers, tool calls, reasoning, vision, usage,
custom stream framing, and what goes on the wire."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

from modelruntime import client as mr

from ..fakes.openai_wire import (
    ChatStream,
    CompletionStream,
    chat_completion,
    reply,
    text_completion,
    tool_call,
    usage,
)
from ..upstream import FakeUpstream, Pause, write_stream
from .support import API_KEY, MODEL, PROVIDER, SERVED, creds, text_of

CHAT = "/v1/chat/completions"
COMPLETIONS = "/v1/completions"
WEATHER = {
    "name": "get_weather",
    "description": "Weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
}
TIME = {
    "name": "get_time",
    "description": "Local time of a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
}
TOOL_CREDS = {"function_calling_type": "tool_call", "stream_function_calling": "supported"}
# A 1x1 PNG.
PIXEL = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5E"
    "rkJggg=="
)


# ---- chat, streamed ------------------------------------------------------------------------------


def test_a_streamed_chat_gives_one_chunk_per_delta_with_usage_and_no_price(
    client: mr.ModelRuntimeClient, upstream: FakeUpstream
) -> None:
    stream = ChatStream.text("Hel", "lo", " there", prompt_tokens=12, completion_tokens=3)
    upstream.route("POST", CHAT, stream.handler())

    chunks = list(client.stream_llm(PROVIDER, MODEL, creds(upstream), "hi"))

    # role, three pieces, finish, usage: one chunk each, nothing merged, split or added.
    assert len(chunks) == stream.deltas == 6
    assert [c.delta.index for c in chunks] == list(range(6))
    assert [c.delta.message.content for c in chunks] == ["", "Hel", "lo", " there", "", ""]
    last = chunks[-1]
    assert last.delta.finish_reason == "stop"
    assert (last.delta.usage.prompt_tokens, last.delta.usage.completion_tokens) == (12, 3)
    assert last.delta.usage.total_tokens == 15
    # A customizable model has no pricing: the price is zero, in USD.
    assert Decimal(last.delta.usage.total_price) == 0
    assert last.delta.usage.currency == "USD"

    sent = upstream.last(CHAT)
    assert sent.headers["authorization"] == f"Bearer {API_KEY}"
    body = sent.json()
    assert body["model"] == SERVED
    assert body["messages"] == [{"role": "user", "content": "hi"}]
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    # Parameters the caller did not set are not sent: the server's defaults apply.
    assert not {"temperature", "top_p", "max_tokens"} & body.keys()


def test_a_stream_without_usage_ends_with_an_estimate(
    client: mr.ModelRuntimeClient, upstream: FakeUpstream
) -> None:
    stream = ChatStream().role().content("one", " two").finish("stop").done()
    upstream.route("POST", CHAT, stream.handler())

    chunks = list(
        client.stream_llm(
            PROVIDER, MODEL, creds(upstream, stream_include_usage="disabled"), "count to two"
        )
    )

    # The runtime closes a stream that carried no usage with one chunk holding an estimate.
    assert len(chunks) == stream.deltas + 1
    assert text_of(chunks) == "one two"
    last = chunks[-1]
    assert last.delta.finish_reason == "stop"
    assert last.delta.usage.prompt_tokens > 0 and last.delta.usage.completion_tokens > 0
    assert "stream_options" not in upstream.last(CHAT).json()


def test_parameters_and_stop_reach_the_wire(
    client: mr.ModelRuntimeClient, upstream: FakeUpstream
) -> None:
    upstream.route("POST", CHAT, ChatStream.text("ok").handler())

    list(
        client.stream_llm(
            PROVIDER,
            MODEL,
            creds(upstream, max_tokens_to_sample="8192"),
            [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}],
            {"temperature": 0, "top_p": 0.5, "max_tokens": 8000, "presence_penalty": -1.5},
            stop=["\n\n"],
            user="user-7",
        )
    )

    body = upstream.last(CHAT).json()
    assert body["temperature"] == 0  # an explicit 0 is kept
    assert (body["top_p"], body["max_tokens"], body["presence_penalty"]) == (0.5, 8000, -1.5)
    assert body["stop"] == ["\n\n"]
    assert body["user"] == "user-7"
    assert body["messages"][0] == {"role": "system", "content": "be brief"}


def test_max_tokens_above_the_credential_bound_is_refused_before_any_request(
    client: mr.ModelRuntimeClient, upstream: FakeUpstream
) -> None:
    with pytest.raises(mr.InvalidParameterError) as caught:
        list(
            client.stream_llm(
                PROVIDER,
                MODEL,
                creds(upstream, max_tokens_to_sample="100"),
                "hi",
                {"max_tokens": 101},
            )
        )
    assert [v.field for v in caught.value.field_violations] == ["model_parameters.max_tokens"]
    assert upstream.requests == []


def test_the_user_and_the_token_parameter_follow_the_credentials(
    client: mr.ModelRuntimeClient, upstream: FakeUpstream
) -> None:
    upstream.route("POST", CHAT, reply(chat_completion("ok", usage=usage(3, 1))))
    options = {"user_identity_support": "no_support", "token_param_name": "max_completion_tokens"}

    client.invoke_llm(
        PROVIDER, MODEL, creds(upstream, **options), "hi", {"max_tokens": 50}, user="u1"
    )

    body = upstream.last(CHAT).json()
    assert "user" not in body
    assert body["max_completion_tokens"] == 50 and "max_tokens" not in body


def test_reasoning_models_get_max_completion_tokens_by_themselves(
    client: mr.ModelRuntimeClient, upstream: FakeUpstream
) -> None:
    upstream.route("POST", CHAT, reply(chat_completion("ok", usage=usage(3, 1))))

    client.invoke_llm(
        PROVIDER, MODEL, creds(upstream, endpoint_model_name="o3-mini"), "hi", {"max_tokens": 9}
    )

    body = upstream.last(CHAT).json()
    assert body["model"] == "o3-mini"
    assert body["max_completion_tokens"] == 9 and "max_tokens" not in body


# ---- chat, whole answers -------------------------------------------------------------------------


def test_an_unstreamed_chat_answer(client: mr.ModelRuntimeClient, upstream: FakeUpstream) -> None:
    upstream.route("POST", CHAT, reply(chat_completion("Hello!", model=SERVED, usage=usage(9, 2))))

    result = client.invoke_llm(PROVIDER, MODEL, creds(upstream), "hi")

    assert result.message.content == "Hello!"
    assert result.finish_reason == "stop"
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (9, 2)
    assert Decimal(result.usage.total_price) == 0
    body = upstream.last(CHAT).json()
    assert "stream" not in body and "stream_options" not in body


@pytest.mark.parametrize("field", ["reasoning_content", "reasoning"])
def test_reasoning_arrives_under_either_field_name(
    client: mr.ModelRuntimeClient, upstream: FakeUpstream, field: str
) -> None:
    stream = (
        ChatStream()
        .role(reasoning_field=field)
        .reasoning("Let me ", "think.", field=field)
        .content("Four.")
        .finish("stop")
        .usage(5, 7, reasoning_tokens=4)
        .done()
    )
    upstream.route("POST", CHAT, stream.handler())

    chunks = list(client.stream_llm(PROVIDER, MODEL, creds(upstream), "2+2?"))

    assert len(chunks) == stream.deltas
    assert [c.delta.message.reasoning_content for c in chunks[1:3]] == ["Let me ", "think."]
    assert text_of(chunks) == "Four."
    assert chunks[-1].delta.usage.reasoning_tokens == 4

    upstream.route(
        "POST",
        CHAT,
        reply(chat_completion("Four.", reasoning="Thinking.", reasoning_field=field)),
    )
    result = client.invoke_llm(PROVIDER, MODEL, creds(upstream), "2+2?")
    assert (result.reasoning_content, result.message.content) == ("Thinking.", "Four.")


def test_reasoning_content_wins_when_a_server_sends_both(
    client: mr.ModelRuntimeClient, upstream: FakeUpstream
) -> None:
    stream = (
        ChatStream()
        .chunk({"reasoning_content": "old name", "reasoning": "new name"})
        .finish("stop")
        .done()
    )
    upstream.route("POST", CHAT, stream.handler())

    chunks = list(client.stream_llm(PROVIDER, MODEL, creds(upstream), "x"))

    assert chunks[0].delta.message.reasoning_content == "old name"


# ---- tool calls ----------------------------------------------------------------------------------


def test_fragmented_parallel_tool_calls_stream_as_fragments(
    client: mr.ModelRuntimeClient, upstream: FakeUpstream
) -> None:
    stream = (
        ChatStream()
        .chunk({"role": "assistant", "content": None})
        .tool_call(0, id="call_A", name="get_weather", arguments="")
        .tool_call(1, id="call_B", name="get_time", arguments="")
        .tool_call(0, arguments='{"city":')
        .tool_call(1, arguments='{"city": "Oslo"}')
        .tool_call(0, arguments=' "Paris"}')
        .finish("tool_calls")
        .usage(40, 20)
        .done()
    )
    upstream.route("POST", CHAT, stream.handler())

    chunks = list(
        client.stream_llm(
            PROVIDER,
            MODEL,
            creds(upstream, **TOOL_CREDS),
            "weather and time?",
            tools=[WEATHER, TIME],
        )
    )

    # Every fragment is its own chunk, even though it carries no text.
    assert len(chunks) == stream.deltas == 8
    fragments = [
        (t.index, t.id, t.function.name, t.function.arguments)
        for c in chunks
        for t in c.delta.message.tool_calls
    ]
    assert fragments == [
        (0, "call_A", "get_weather", ""),
        (1, "call_B", "get_time", ""),
        (0, "", "", '{"city":'),
        (1, "", "", '{"city": "Oslo"}'),
        (0, "", "", ' "Paris"}'),
    ]
    assert chunks[-1].delta.finish_reason == "tool_calls"
    whole = mr.collect(chunks)
    calls = [
        (c.id, c.function.name, json.loads(c.function.arguments)) for c in whole.message.tool_calls
    ]
    assert calls == [
        ("call_A", "get_weather", {"city": "Paris"}),
        ("call_B", "get_time", {"city": "Oslo"}),
    ]

    body = upstream.last(CHAT).json()
    assert [t["function"]["name"] for t in body["tools"]] == ["get_weather", "get_time"]
    assert body["tools"][0]["type"] == "function"


def test_tool_results_go_back_in_the_openai_shape(
    client: mr.ModelRuntimeClient, upstream: FakeUpstream
) -> None:
    upstream.route("POST", CHAT, reply(chat_completion("18C and clear.")))
    conversation: list[dict[str, Any]] = [
        {"role": "user", "content": "weather in Paris?"},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {
                    "id": "call_A",
                    "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_A", "content": "18C, clear"},
    ]

    result = client.invoke_llm(
        PROVIDER, MODEL, creds(upstream, **TOOL_CREDS), conversation, tools=[WEATHER]
    )

    assert result.message.content == "18C and clear."
    messages = upstream.last(CHAT).json()["messages"]
    assert messages[1]["tool_calls"] == [
        {
            "id": "call_A",
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
        }
    ]
    assert messages[2] == {"role": "tool", "tool_call_id": "call_A", "content": "18C, clear"}


def test_an_unstreamed_answer_with_tool_calls(
    client: mr.ModelRuntimeClient, upstream: FakeUpstream
) -> None:
    answer = chat_completion(
        None,
        tool_calls=[tool_call("call_1", "get_weather", {"city": "Rome"})],
        finish_reason="tool_calls",
        usage=usage(30, 10),
    )
    upstream.route("POST", CHAT, reply(answer))

    result = client.invoke_llm(
        PROVIDER, MODEL, creds(upstream, **TOOL_CREDS), "weather in Rome?", tools=[WEATHER]
    )

    assert [(c.id, c.function.name) for c in result.message.tool_calls] == [
        ("call_1", "get_weather")
    ]
    assert json.loads(result.message.tool_calls[0].function.arguments) == {"city": "Rome"}
    assert result.finish_reason == "tool_calls"


def test_without_function_calling_no_tools_are_sent(
    client: mr.ModelRuntimeClient, upstream: FakeUpstream
) -> None:
    upstream.route("POST", CHAT, ChatStream.text("I cannot call tools.").handler())

    list(client.stream_llm(PROVIDER, MODEL, creds(upstream), "weather?", tools=[WEATHER]))

    body = upstream.last(CHAT).json()
    assert "tools" not in body and "functions" not in body and "tool_choice" not in body


def test_without_streamed_tool_calls_a_call_with_tools_is_made_unstreamed(
    client: mr.ModelRuntimeClient, upstream: FakeUpstream
) -> None:
    answer = chat_completion(
        None,
        tool_calls=[tool_call("call_9", "get_weather", {"city": "Lima"})],
        finish_reason="tool_calls",
        usage=usage(30, 8),
    )
    upstream.route("POST", CHAT, reply(answer))

    chunks = list(
        client.stream_llm(
            PROVIDER,
            MODEL,
            creds(upstream, function_calling_type="tool_call"),
            "weather in Lima?",
            tools=[WEATHER],
        )
    )

    body = upstream.last(CHAT).json()
    assert "stream" not in body
    assert len(chunks) == 1
    (call,) = chunks[0].delta.message.tool_calls
    assert (call.id, call.function.name, call.function.arguments) == (
        "call_9",
        "get_weather",
        '{"city": "Lima"}',
    )
    assert chunks[0].delta.finish_reason == "tool_calls"
    assert chunks[0].delta.usage.prompt_tokens == 30


def test_legacy_function_calling_speaks_functions_and_function_call(
    client: mr.ModelRuntimeClient, upstream: FakeUpstream
) -> None:
    stream = (
        ChatStream()
        .chunk(
            {
                "role": "assistant",
                "content": None,
                "function_call": {"name": "get_weather", "arguments": ""},
            }
        )
        .chunk({"function_call": {"arguments": '{"city":'}})
        .chunk({"function_call": {"arguments": ' "Kyiv"}'}})
        .finish("function_call")
        .done()
    )
    upstream.route("POST", CHAT, stream.handler())
    legacy = {"function_calling_type": "function_call", "stream_function_calling": "supported"}
    conversation: list[dict[str, Any]] = [
        {"role": "user", "content": "weather in Kyiv, then Oslo?"},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {
                    "id": "get_weather",
                    "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "get_weather", "content": "5C"},
    ]

    chunks = list(
        client.stream_llm(PROVIDER, MODEL, creds(upstream, **legacy), conversation, tools=[WEATHER])
    )

    body = upstream.last(CHAT).json()
    assert "tools" not in body
    assert body["functions"] == [WEATHER]
    assert body["messages"][1]["function_call"] == {
        "name": "get_weather",
        "arguments": '{"city":"Oslo"}',
    }
    assert "tool_calls" not in body["messages"][1]
    assert body["messages"][2] == {"role": "function", "name": "get_weather", "content": "5C"}
    whole = mr.collect(chunks)
    assert [(c.id, c.function.name, c.function.arguments) for c in whole.message.tool_calls] == [
        ("get_weather", "get_weather", '{"city": "Kyiv"}')
    ]


# ---- content parts -------------------------------------------------------------------------------


def image_prompt() -> list[dict[str, Any]]:
    return [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is this?"},
                {"type": "image", "base64_data": PIXEL, "mime_type": "image/png", "detail": "high"},
            ],
        }
    ]


def test_images_reach_the_wire_when_vision_is_supported(
    client: mr.ModelRuntimeClient, upstream: FakeUpstream
) -> None:
    upstream.route("POST", CHAT, reply(chat_completion("A pixel.")))

    result = client.invoke_llm(
        PROVIDER, MODEL, creds(upstream, vision_support="support"), image_prompt()
    )

    assert result.message.content == "A pixel."
    content = upstream.last(CHAT).json()["messages"][0]["content"]
    assert content == [
        {"type": "text", "text": "What is this?"},
        {
            "type": "image_url",
            "image_url": {"url": f"data:image/png;base64,{PIXEL}", "detail": "high"},
        },
    ]


def test_images_are_refused_before_any_request_without_vision(
    client: mr.ModelRuntimeClient, upstream: FakeUpstream
) -> None:
    with pytest.raises(mr.InvalidRequestError) as caught:
        client.invoke_llm(PROVIDER, MODEL, creds(upstream), image_prompt())

    assert [v.field for v in caught.value.field_violations] == [
        "prompt_messages[0].content_parts[1]"
    ]
    assert upstream.requests == []


# ---- completion mode -----------------------------------------------------------------------------


def test_completion_mode_streams_from_completions(
    client: mr.ModelRuntimeClient, upstream: FakeUpstream
) -> None:
    stream = (
        CompletionStream(model=SERVED)
        .text("Once", " upon", " a time")
        .finish("length")
        .usage(4, 3)
        .done()
    )
    upstream.route("POST", COMPLETIONS, stream.handler())

    chunks = list(
        client.stream_llm(
            PROVIDER,
            MODEL,
            creds(upstream, mode="completion"),
            [{"role": "system", "content": "Tell a story."}, {"role": "user", "content": "Go"}],
            {"max_tokens": 3},
        )
    )

    assert len(chunks) == stream.deltas
    assert text_of(chunks) == "Once upon a time"
    assert chunks[-1].delta.finish_reason == "length"
    assert (chunks[-1].delta.usage.prompt_tokens, chunks[-1].delta.usage.completion_tokens) == (
        4,
        3,
    )
    body = upstream.last(COMPLETIONS).json()
    assert body["prompt"] == "Tell a story.\n\nGo"
    assert body["model"] == SERVED and body["max_tokens"] == 3
    assert "messages" not in body


def test_completion_mode_unstreamed(client: mr.ModelRuntimeClient, upstream: FakeUpstream) -> None:
    upstream.route("POST", COMPLETIONS, reply(text_completion("Paris.", usage=usage(6, 2))))

    result = client.invoke_llm(
        PROVIDER, MODEL, creds(upstream, mode="completion"), "The capital of France is"
    )

    assert result.message.content == "Paris."
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (6, 2)


def test_completion_mode_sends_no_tools(
    client: mr.ModelRuntimeClient, upstream: FakeUpstream
) -> None:
    upstream.route("POST", COMPLETIONS, reply(text_completion("x")))

    client.invoke_llm(
        PROVIDER, MODEL, creds(upstream, mode="completion", **TOOL_CREDS), "x", tools=[WEATHER]
    )

    assert "tools" not in upstream.last(COMPLETIONS).json()


# ---- stream framing ------------------------------------------------------------------------------


def test_crlf_lines_and_keepalive_comments_are_read(
    client: mr.ModelRuntimeClient, upstream: FakeUpstream
) -> None:
    stream = (
        ChatStream(line_ending="\r\n")
        .ping()
        .role()
        .content("a")
        .ping()
        .content("b")
        .finish("stop")
        .usage(1, 2)
        .done()
    )
    upstream.route("POST", CHAT, stream.handler())

    chunks = list(client.stream_llm(PROVIDER, MODEL, creds(upstream), "x"))

    assert len(chunks) == stream.deltas
    assert text_of(chunks) == "ab"


def test_a_server_framing_events_with_single_newlines_needs_its_delimiter(
    client: mr.ModelRuntimeClient, upstream: FakeUpstream
) -> None:
    events = [
        {"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]},
        {"choices": [{"index": 0, "delta": {"content": "one"}}]},
        {"choices": [{"index": 0, "delta": {"content": " two"}}]},
        {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}], "usage": usage(3, 2)},
    ]

    async def answer(request: Any, recorded: Any) -> Any:
        # One `data:` line per event, no blank line between: SSE would join them into one.
        pieces: list[Any] = [f"data: {json.dumps(e)}\n" for e in events]
        pieces.insert(2, Pause(0.01))
        return await write_stream(request, pieces)

    upstream.route("POST", CHAT, answer)

    chunks = list(
        client.stream_llm(PROVIDER, MODEL, creds(upstream, stream_mode_delimiter="\\n"), "x")
    )

    assert len(chunks) == len(events)
    assert text_of(chunks) == "one two"
    assert chunks[-1].delta.finish_reason == "stop"
    assert chunks[-1].delta.usage.completion_tokens == 2


def test_bare_json_lines_work_with_a_newline_delimiter(
    client: mr.ModelRuntimeClient, upstream: FakeUpstream
) -> None:
    events = [
        {"choices": [{"index": 0, "delta": {"content": "a"}}]},
        {"choices": [{"index": 0, "delta": {"content": "b"}}]},
        {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
    ]

    async def answer(request: Any, recorded: Any) -> Any:
        # NDJSON, split mid-event across writes, and no newline after the last event.
        text = "\n".join(json.dumps(e) for e in events)
        return await write_stream(request, [text[:17], Pause(0.01), text[17:]])

    upstream.route("POST", CHAT, answer)

    chunks = list(
        client.stream_llm(PROVIDER, MODEL, creds(upstream, stream_mode_delimiter="\\n"), "x")
    )

    # The three events, then the runtime's closing chunk with a usage estimate.
    assert [(c.delta.message.content, c.delta.finish_reason) for c in chunks] == [
        ("a", ""),
        ("b", ""),
        ("", "stop"),
        ("", "stop"),
    ]
    assert chunks[-1].delta.usage.completion_tokens > 0


def test_a_custom_framed_stream_cut_before_its_finish_is_an_error(
    client: mr.ModelRuntimeClient, upstream: FakeUpstream
) -> None:
    async def answer(request: Any, recorded: Any) -> Any:
        event = {"choices": [{"index": 0, "delta": {"content": "partial"}}]}
        return await write_stream(request, [f"data: {json.dumps(event)}\n"])

    upstream.route("POST", CHAT, answer)

    seen: list[str] = []
    with pytest.raises(mr.InvokeConnectionError):
        for chunk in client.stream_llm(
            PROVIDER, MODEL, creds(upstream, stream_mode_delimiter="\\n"), "x"
        ):
            seen.append(chunk.delta.message.content)
    assert seen == ["partial"]


def test_an_empty_delimiter_is_a_credential_error(
    client: mr.ModelRuntimeClient, upstream: FakeUpstream
) -> None:
    with pytest.raises(mr.InvalidCredentialsError) as caught:
        list(client.stream_llm(PROVIDER, MODEL, creds(upstream, stream_mode_delimiter="\\"), "x"))
    assert [v.field for v in caught.value.field_violations] == ["credentials.stream_mode_delimiter"]


def test_a_server_that_ignores_stream_answers_whole(
    client: mr.ModelRuntimeClient, upstream: FakeUpstream
) -> None:
    upstream.route("POST", CHAT, reply(chat_completion("All at once.", usage=usage(4, 3))))

    chunks = list(client.stream_llm(PROVIDER, MODEL, creds(upstream), "x"))

    assert len(chunks) == 1
    assert chunks[0].delta.message.content == "All at once."
    assert chunks[0].delta.usage.completion_tokens == 3


# ---- the endpoint URL ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("suffix", "path"),
    [
        ("/v1", CHAT),
        ("/v1/", CHAT),
        ("/v1/chat/completions", CHAT),
        ("", "/chat/completions"),
        ("/", "/chat/completions"),
    ],
)
def test_the_endpoint_url_is_the_base_the_paths_follow(
    client: mr.ModelRuntimeClient, upstream: FakeUpstream, suffix: str, path: str
) -> None:
    upstream.route("POST", path, reply(chat_completion("here")))
    credentials = {**creds(upstream), "endpoint_url": upstream.url + suffix}

    assert client.invoke_llm(PROVIDER, MODEL, credentials, "x").message.content == "here"
    assert upstream.last().path == path


def test_without_a_key_no_authorization_is_sent(
    client: mr.ModelRuntimeClient, upstream: FakeUpstream
) -> None:
    upstream.route("POST", CHAT, reply(chat_completion("open server")))
    credentials = creds(upstream)
    del credentials["api_key"]
    del credentials["endpoint_model_name"]

    client.invoke_llm(PROVIDER, MODEL, credentials, "x")

    sent = upstream.last(CHAT)
    assert "authorization" not in sent.headers
    assert sent.json()["model"] == MODEL


def test_a_url_that_is_not_http_is_a_credential_error(client: mr.ModelRuntimeClient) -> None:
    with pytest.raises(mr.InvalidCredentialsError) as caught:
        client.invoke_llm(PROVIDER, MODEL, {"endpoint_url": "localhost:8000/v1"}, "x")
    assert [v.field for v in caught.value.field_violations] == ["credentials.endpoint_url"]


# ---- structured output and thinking --------------------------------------------------------------


def test_json_schema_becomes_openai_response_format(
    client: mr.ModelRuntimeClient, upstream: FakeUpstream
) -> None:
    upstream.route("POST", CHAT, reply(chat_completion('{"city": "Paris"}')))
    schema = {"type": "object", "properties": {"city": {"type": "string"}}}

    client.invoke_llm(
        PROVIDER,
        MODEL,
        creds(upstream, structured_output_support="supported"),
        "capital of France as JSON",
        {"response_format": "json_schema", "json_schema": json.dumps(schema)},
    )

    body = upstream.last(CHAT).json()
    assert body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "response", "schema": schema},
    }
    assert "json_schema" not in body


@pytest.mark.parametrize(
    ("support", "asked", "sent"),
    [
        ("supported", False, False),
        ("supported", True, True),
        ("only_thinking_supported", None, True),
    ],
)
def test_extended_mode_switches_thinking_the_ways_servers_read_it(
    client: mr.ModelRuntimeClient,
    upstream: FakeUpstream,
    support: str,
    asked: bool | None,
    sent: bool,
) -> None:
    upstream.route("POST", CHAT, reply(chat_completion("ok")))
    options = {"agent_thought_support": support, "compatibility_mode": "extended"}
    parameters = {} if asked is None else {"enable_thinking": asked}

    client.invoke_llm(PROVIDER, MODEL, creds(upstream, **options), "x", parameters)

    body = upstream.last(CHAT).json()
    assert body["chat_template_kwargs"] == {"enable_thinking": sent, "thinking": sent}
    assert body["thinking"] == {"type": "enabled" if sent else "disabled"}
    assert body["enable_thinking"] is sent


def test_strict_mode_sends_no_thinking_fields(
    client: mr.ModelRuntimeClient, upstream: FakeUpstream
) -> None:
    upstream.route("POST", CHAT, reply(chat_completion("ok")))

    client.invoke_llm(
        PROVIDER,
        MODEL,
        creds(upstream, agent_thought_support="supported"),
        "x",
        {"enable_thinking": True, "reasoning_effort": "low"},
    )

    body = upstream.last(CHAT).json()
    assert not {"chat_template_kwargs", "thinking", "enable_thinking"} & body.keys()
    assert body["reasoning_effort"] == "low"
