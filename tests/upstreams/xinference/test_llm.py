"""Chat and generate models through the real server and Python client: streamed and not,
content, reasoning, tool calls, finish reasons, usage and exact chunk counts, and the request
each call makes."""

from __future__ import annotations

import json

from modelruntime import client as mr

from ..fakes.openai_wire import chat_completion, reply, text_completion, tool_call, usage
from ._support import PROVIDER, assert_free_usage, text
from .fake_xinference import (
    CHAT,
    DESCRIPTIONS,
    GENERATE,
    GLM_CHAT,
    HYBRID,
    FakeXinference,
    chat_stream,
    completion_stream,
    finish,
    fresh_uid,
)

WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
}


def test_a_streamed_chat_answer_arrives_one_chunk_per_delta(
    client: mr.ModelRuntimeClient, xinference: FakeXinference
) -> None:
    script = chat_stream().role().content("The ", "sky ", "is ", "blue.")
    finish(script, "stop", 21, 5).done()
    xinference.script("/v1/chat/completions", script.handler())

    chunks = list(
        client.stream_llm(PROVIDER, "my-qwen", xinference.credentials(CHAT), "Sky colour?")
    )

    assert len(chunks) == script.deltas == 6
    assert [c.delta.index for c in chunks] == list(range(6))
    assert text(chunks) == "The sky is blue."
    assert [c.delta.finish_reason for c in chunks] == [""] * 5 + ["stop"]
    assert_free_usage(chunks[-1].delta.usage, 21, 5)
    assert all(c.model == CHAT for c in chunks)
    sent = xinference.upstream.last("/v1/chat/completions")
    assert sent.json() == {
        "model": CHAT,
        "messages": [{"role": "user", "content": "Sky colour?"}],
        "stream": True,
    }
    assert "authorization" not in sent.headers


def test_a_chat_answer_without_streaming(
    client: mr.ModelRuntimeClient, xinference: FakeXinference
) -> None:
    xinference.script(
        "/v1/chat/completions",
        reply(chat_completion("Blue.", model=CHAT, usage=usage(12, 2))),
    )

    result = client.invoke_llm(PROVIDER, "my-qwen", xinference.credentials(CHAT), "Sky?")

    assert result.message.content == "Blue."
    assert result.finish_reason == "stop"
    assert_free_usage(result.usage, 12, 2)
    assert xinference.upstream.last("/v1/chat/completions").json()["model"] == CHAT


def test_parameters_stop_and_roles_reach_the_server_as_given(
    client: mr.ModelRuntimeClient, xinference: FakeXinference
) -> None:
    client.invoke_llm(
        PROVIDER,
        "my-qwen",
        xinference.credentials(CHAT),
        [
            {"role": "developer", "content": "Be brief."},
            {"role": "user", "content": "Hi"},
        ],
        model_parameters={
            "temperature": 0.0,
            "max_tokens": 100,
            "top_k": 5,
            "repetition_penalty": 1.1,
        },
        stop=["\n\n"],
        user="user-42",
    )

    sent = xinference.upstream.last("/v1/chat/completions").json()
    assert sent == {
        "model": CHAT,
        # Xinference's chat templates know no developer role.
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi"},
        ],
        "temperature": 0.0,
        "max_tokens": 100,
        "top_k": 5,
        "repetition_penalty": 1.1,
        "stop": ["\n\n"],
    }


def test_an_image_goes_to_a_vision_model_as_an_image_url_part(
    client: mr.ModelRuntimeClient, xinference: FakeXinference
) -> None:
    client.invoke_llm(
        PROVIDER,
        "my-qwen",
        xinference.credentials(CHAT),
        [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is this?"},
                    {
                        "type": "image",
                        "url": "https://example.invalid/cat.png",
                        "mime_type": "image/png",
                        "detail": "high",
                    },
                ],
            }
        ],
    )

    (message,) = xinference.upstream.last("/v1/chat/completions").json()["messages"]
    assert message["content"] == [
        {"type": "text", "text": "What is this?"},
        {
            "type": "image_url",
            "image_url": {"url": "https://example.invalid/cat.png", "detail": "high"},
        },
    ]


def test_reasoning_streams_before_the_answer_and_think_switches_it(
    client: mr.ModelRuntimeClient, xinference: FakeXinference
) -> None:
    script = (
        chat_stream(HYBRID)
        .role(reasoning_field="reasoning_content")
        .reasoning("Two ", "plus two.")
        .content("4")
    )
    finish(script, "stop", 9, 7).done()
    xinference.script("/v1/chat/completions", script.handler())

    chunks = list(
        client.stream_llm(
            PROVIDER,
            "qwen3",
            xinference.credentials(HYBRID),
            "2+2?",
            model_parameters={"think": True},
        )
    )

    assert len(chunks) == script.deltas == 5
    assert "".join(c.delta.message.reasoning_content for c in chunks) == "Two plus two."
    assert text(chunks) == "4"
    assert_free_usage(chunks[-1].delta.usage, 9, 7)
    sent = xinference.upstream.last("/v1/chat/completions").json()
    assert sent["chat_template_kwargs"] == {"enable_thinking": True}
    assert "think" not in sent


def test_tool_calls_of_a_whole_answer(
    client: mr.ModelRuntimeClient, xinference: FakeXinference
) -> None:
    xinference.script(
        "/v1/chat/completions",
        reply(
            chat_completion(
                None,
                model=CHAT,
                tool_calls=[
                    tool_call("call_5f0c", "get_weather", {"city": "Paris"}),
                    tool_call("call_77aa", "get_weather", {"city": "Oslo"}),
                ],
                finish_reason="tool_calls",
                usage=usage(40, 30),
            )
        ),
    )

    result = client.invoke_llm(
        PROVIDER, "my-qwen", xinference.credentials(CHAT), "Weather?", tools=[WEATHER_TOOL]
    )

    assert [
        (c.id, c.function.name, json.loads(c.function.arguments)) for c in result.message.tool_calls
    ] == [
        ("call_5f0c", "get_weather", {"city": "Paris"}),
        ("call_77aa", "get_weather", {"city": "Oslo"}),
    ]
    assert result.finish_reason == "tool_calls"
    assert_free_usage(result.usage, 40, 30)
    sent = xinference.upstream.last("/v1/chat/completions").json()
    assert sent["tools"] == [{"type": "function", "function": WEATHER_TOOL}]


def test_a_qwen_stream_with_tools_turns_tagged_text_into_tool_calls(
    client: mr.ModelRuntimeClient, xinference: FakeXinference
) -> None:
    # What a real server streams for a Qwen model with tools: the template's raw tool-call text
    # as content, split anywhere, and finish reason "stop" (reference §6).
    script = (
        chat_stream()
        .role()
        .content(
            "Let me check.",
            "\n<tool",
            '_call>\n{"name": "get_weather", ',
            '"arguments": {"city": "Paris"}}\n</tool_call>',
            '\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Oslo"}}\n</tool_call>',
        )
    )
    finish(script, "stop", 50, 41).done()
    xinference.script("/v1/chat/completions", script.handler())

    chunks = list(
        client.stream_llm(
            PROVIDER, "my-qwen", xinference.credentials(CHAT), "Weather?", tools=[WEATHER_TOOL]
        )
    )

    # role, "Let me check.", "\n" (its "<tool" held), the first call (the chunk holding only
    # tag text is not sent), "\n" and the second call, the finish chunk.
    assert len(chunks) == script.deltas - 1 == 6
    assert text(chunks) == "Let me check.\n\n"
    calls = [call for c in chunks for call in c.delta.message.tool_calls]
    assert [(c.index, c.function.name, json.loads(c.function.arguments)) for c in calls] == [
        (0, "get_weather", {"city": "Paris"}),
        (1, "get_weather", {"city": "Oslo"}),
    ]
    assert all(c.id.startswith("call_") and c.type == "function" for c in calls)
    assert len({c.id for c in calls}) == 2
    assert chunks[-1].delta.finish_reason == "tool_calls"
    assert_free_usage(chunks[-1].delta.usage, 50, 41)
    assert xinference.upstream.last("/v1/chat/completions").json()["stream"] is True


def test_an_unfinished_or_unreadable_tag_is_passed_on_as_text(
    client: mr.ModelRuntimeClient, xinference: FakeXinference
) -> None:
    script = chat_stream().role().content("a <b> c ", "<tool_call>not json</tool_call>", " <tool")
    finish(script, "stop", 5, 5).done()
    xinference.script("/v1/chat/completions", script.handler())

    chunks = list(
        client.stream_llm(
            PROVIDER, "my-qwen", xinference.credentials(CHAT), "x", tools=[WEATHER_TOOL]
        )
    )

    assert text(chunks) == "a <b> c <tool_call>not json</tool_call> <tool"
    assert not any(c.delta.message.tool_calls for c in chunks)
    assert chunks[-1].delta.finish_reason == "stop"


def test_other_families_with_tools_answer_whole_in_one_chunk(
    client: mr.ModelRuntimeClient, xinference: FakeXinference
) -> None:
    xinference.script(
        "/v1/chat/completions",
        reply(
            chat_completion(
                "",
                model=GLM_CHAT,
                tool_calls=[tool_call("call_1", "get_weather", '{"city": "Rome"}')],
                finish_reason="tool_calls",
                usage=usage(30, 12),
            )
        ),
    )

    chunks = list(
        client.stream_llm(
            PROVIDER, "glm", xinference.credentials(GLM_CHAT), "Rome?", tools=[WEATHER_TOOL]
        )
    )

    (chunk,) = chunks
    (call,) = chunk.delta.message.tool_calls
    assert (call.id, call.function.name, call.function.arguments) == (
        "call_1",
        "get_weather",
        '{"city": "Rome"}',
    )
    assert chunk.delta.finish_reason == "tool_calls"
    assert_free_usage(chunk.delta.usage, 30, 12)
    assert "stream" not in xinference.upstream.last("/v1/chat/completions").json()


def test_a_streamed_completion_ends_at_the_end_of_its_body(
    client: mr.ModelRuntimeClient, xinference: FakeXinference
) -> None:
    # Xinference's completion streams carry a running usage on every chunk and no [DONE].
    script = (
        completion_stream()
        .chunk("Once", usage=usage(6, 1))
        .chunk(" upon", usage=usage(6, 2))
        .chunk(" a time", usage=usage(6, 4))
        .finish("length", usage=usage(6, 4))
    )
    xinference.script("/v1/completions", script.handler())

    chunks = list(
        client.stream_llm(
            PROVIDER,
            "base",
            xinference.credentials(GENERATE),
            [{"role": "system", "content": "A story."}, {"role": "user", "content": "Begin:"}],
            model_parameters={"max_tokens": 4, "presence_penalty": 0.5},
        )
    )

    assert len(chunks) == script.deltas == 4
    assert text(chunks) == "Once upon a time"
    assert [c.delta.usage.completion_tokens for c in chunks[:-1]] == [0, 0, 0]
    assert chunks[-1].delta.finish_reason == "length"
    assert_free_usage(chunks[-1].delta.usage, 6, 4)
    sent = xinference.upstream.last("/v1/completions").json()
    assert sent == {
        "model": GENERATE,
        "prompt": "A story.\n\nBegin:",
        "max_tokens": 4,
        "presence_penalty": 0.5,
        "stream": True,
    }


def test_a_completion_without_streaming(
    client: mr.ModelRuntimeClient, xinference: FakeXinference
) -> None:
    xinference.script(
        "/v1/completions",
        reply(text_completion(" there was", model=GENERATE, usage=usage(3, 2))),
    )

    result = client.invoke_llm(PROVIDER, "base", xinference.credentials(GENERATE), "Once")

    assert result.message.content == " there was"
    assert result.finish_reason == "stop"
    assert_free_usage(result.usage, 3, 2)


def test_the_api_key_goes_as_a_bearer_token(
    client: mr.ModelRuntimeClient, secured: FakeXinference
) -> None:
    uid = secured.add_model(fresh_uid("keyed"), DESCRIPTIONS[CHAT])

    result = client.invoke_llm(PROVIDER, "my-qwen", secured.credentials(uid), "Hi")

    assert result.message.content == "Hello"
    paths = [r.path for r in secured.upstream.requests]
    assert paths == [f"/v1/models/{uid}", "/v1/chat/completions"]
    for recorded in secured.upstream.requests:
        assert recorded.headers["authorization"] == f"Bearer {secured.api_key}"
