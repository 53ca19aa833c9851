"""Claude through the real server and Python client, against the fake Messages API: streamed and
whole answers, the request on the wire, tools, thinking kept across a tool loop, usage and price,
token counting and cancellation."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import grpc
import pytest
from google.protobuf import json_format

from modelruntime import client as mr
from providers.sdk.model_types.large_language_model import estimate_prompt_tokens
from providers.sdk.tokenizer import estimate_tokens

from .fake_anthropic import (
    API_VERSION,
    TEST_KEY,
    Failure,
    FakeAnthropic,
    RedactedThinking,
    Reply,
    Text,
    Thinking,
    ToolUse,
    Usage,
    visible_deltas,
)

PROVIDER = "anthropic"
SONNET = "claude-sonnet-4-5-20250929"  # $3 in, $15 out per million tokens
HAIKU = "claude-haiku-4-5-20251001"  # $1 in, $5 out
SONNET_37 = "claude-3-7-sonnet-20250219"

WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Weather for a city",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}
TIME_TOOL = {
    "name": "get_time",
    "description": "Local time in a zone",
    "parameters": {"type": "object", "properties": {"zone": {"type": "string"}}},
}


def price(tokens: int, per_million: str) -> Decimal:
    return (Decimal(tokens) * Decimal(per_million) * Decimal("0.000001")).quantize(
        Decimal("0.0000001"), ROUND_HALF_UP
    )


def opaque(message: Any) -> dict[str, Any]:
    return json_format.MessageToDict(message.opaque_body)


def user_text(text: str) -> dict[str, Any]:
    return {"role": "user", "content": [{"type": "text", "text": text}]}


# ---- streamed answers ----------------------------------------------------------------------


def test_a_streamed_answer_is_one_chunk_per_delta_then_usage_and_price(
    client: mr.ModelRuntimeClient, anthropic: FakeAnthropic, credentials: dict[str, str]
) -> None:
    reply = Reply(
        [Text(["Hel", "lo", ", wor", "ld"])],
        usage=Usage(
            input_tokens=20,
            output_tokens=7,
            cache_creation_input_tokens=100,
            cache_read_input_tokens=300,
        ),
    )
    anthropic.reply(reply)

    chunks = list(client.stream_llm(PROVIDER, SONNET, credentials, "Say hello"))

    # One chunk per text_delta (pings skipped), then the closing chunk with usage.
    assert len(chunks) == visible_deltas(reply) + 1 == 5
    assert [c.delta.message.content for c in chunks] == ["Hel", "lo", ", wor", "ld", ""]
    assert [c.delta.index for c in chunks] == [0, 1, 2, 3, 4]
    assert not any(c.delta.HasField("usage") or c.delta.finish_reason for c in chunks[:-1])
    last = chunks[-1].delta
    assert last.finish_reason == "stop"
    assert not last.message.HasField("opaque_body")
    usage = last.usage
    # Cache writes and reads are input too; output is message_delta's cumulative count, not
    # message_start's 1 plus it.
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (420, 7, 427)
    assert usage.cached_prompt_tokens == 300
    assert Decimal(usage.prompt_price) == price(420, "3.00")
    assert Decimal(usage.completion_price) == price(7, "15.00")
    assert Decimal(usage.total_price) == price(420, "3.00") + price(7, "15.00")
    assert usage.currency == "USD"
    assert chunks[0].model == SONNET

    recorded = anthropic.upstream.last("/v1/messages")
    assert recorded.headers["x-api-key"] == TEST_KEY
    assert recorded.headers["anthropic-version"] == API_VERSION
    assert "anthropic-beta" not in recorded.headers
    assert recorded.json() == {
        "model": SONNET,
        "messages": [user_text("Say hello")],
        # Required by the API: the model's default from its YAML.
        "max_tokens": 64000,
        "stream": True,
    }


def test_streamed_calls_reuse_one_pooled_connection(
    client: mr.ModelRuntimeClient, anthropic: FakeAnthropic, credentials: dict[str, str]
) -> None:
    for _ in range(3):
        chunks = list(client.stream_llm(PROVIDER, HAIKU, credentials, "hi"))
        assert chunks[-1].delta.finish_reason == "stop"

    # The body is read to its end after message_stop, so httpx keeps the connection.
    assert len(set(anthropic.client_ports[-3:])) == 1


def test_a_body_left_open_after_message_stop_delays_the_end_only_briefly(
    client: mr.ModelRuntimeClient, anthropic: FakeAnthropic, credentials: dict[str, str]
) -> None:
    anthropic.reply(Reply([Text(["done"])], linger=5.0))

    started = time.monotonic()
    chunks = list(client.stream_llm(PROVIDER, HAIKU, credentials, "hi"))

    assert [c.delta.message.content for c in chunks] == ["done", ""]
    # The reading after message_stop gives up after a second (DRAIN_SECONDS).
    assert time.monotonic() - started < 3.0


def test_unknown_events_and_pings_are_skipped(
    client: mr.ModelRuntimeClient, anthropic: FakeAnthropic, credentials: dict[str, str]
) -> None:
    anthropic.reply(Reply([Text(["a", "b"])], unknown_events=True))

    chunks = list(client.stream_llm(PROVIDER, HAIKU, credentials, "hi"))

    assert [c.delta.message.content for c in chunks] == ["a", "b", ""]


def test_system_prompts_are_lifted_roles_merged_and_media_sent_as_blocks(
    client: mr.ModelRuntimeClient, anthropic: FakeAnthropic, credentials: dict[str, str]
) -> None:
    anthropic.reply(Reply([Text(["ok"])]))
    prompt = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "first"},
        {
            "role": "user",
            "content": [
                "look",
                {"type": "image", "base64_data": "iVBORw0KGgo=", "mime_type": "image/png"},
                {"type": "image", "url": "https://example.com/cat.jpg", "mime_type": "image/jpeg"},
            ],
        },
        {"role": "developer", "content": "Answer in French."},
        {"role": "assistant", "content": "d'accord"},
        {"role": "assistant", "content": "encore"},
        {
            "role": "user",
            "content": [
                {
                    "type": "document",
                    "base64_data": "JVBERi0xLjQ=",
                    "mime_type": "application/pdf",
                    "filename": "report.pdf",
                },
                {
                    "type": "image",
                    "url": "data:image/webp;base64,UklGRg==",
                    "mime_type": "image/webp",
                },
            ],
        },
    ]

    chunks = list(client.stream_llm(PROVIDER, SONNET, credentials, prompt))

    assert chunks[-1].delta.finish_reason == "stop"
    body = anthropic.last_body()
    assert body["system"] == [
        {"type": "text", "text": "Be brief."},
        {"type": "text", "text": "Answer in French."},
    ]
    assert body["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "first"},
                {"type": "text", "text": "look"},
                {
                    "type": "image",
                    "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="},
                },
                {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
            ],
        },
        {
            "role": "assistant",
            "content": [{"type": "text", "text": "d'accord"}, {"type": "text", "text": "encore"}],
        },
        {
            "role": "user",
            "content": [
                {
                    "type": "document",
                    "source": {
                        "type": "base64",
                        "media_type": "application/pdf",
                        "data": "JVBERi0xLjQ=",
                    },
                    "title": "report.pdf",
                },
                {
                    "type": "image",
                    "source": {"type": "base64", "media_type": "image/webp", "data": "UklGRg=="},
                },
            ],
        },
    ]


def test_an_image_type_the_api_does_not_take_is_refused_before_any_call(
    client: mr.ModelRuntimeClient, anthropic: FakeAnthropic, credentials: dict[str, str]
) -> None:
    prompt = [
        {
            "role": "user",
            "content": [
                "what?",
                {"type": "image", "base64_data": "AAAA", "mime_type": "image/bmp"},
            ],
        }
    ]
    with pytest.raises(mr.InvalidRequestError) as caught:
        list(client.stream_llm(PROVIDER, SONNET, credentials, prompt))

    assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.reason == "INVALID_REQUEST"
    assert [v.field for v in caught.value.field_violations] == [
        "prompt_messages[0].content_parts[1]"
    ]
    assert "image/bmp" in caught.value.field_violations[0].description
    assert anthropic.messages_requests() == []


def test_fragmented_parallel_tool_uses_stream_as_tool_call_deltas(
    client: mr.ModelRuntimeClient, anthropic: FakeAnthropic, credentials: dict[str, str]
) -> None:
    reply = Reply(
        [
            Text(["Let me check."]),
            ToolUse("toolu_01A", "get_weather", ["", '{"ci', 'ty": "Pa', 'ris"}']),
            ToolUse("toolu_01B", "get_time", ['{"zone":', ' "CET"}']),
        ],
        stop_reason="tool_use",
    )
    anthropic.reply(reply)

    chunks = list(
        client.stream_llm(
            PROVIDER,
            SONNET,
            credentials,
            "Weather and time in Paris?",
            model_parameters={"tool_choice": "any"},
            tools=[WEATHER_TOOL, TIME_TOOL],
        )
    )

    assert len(chunks) == visible_deltas(reply) + 1 == 8
    fragments = [
        (call.index, call.id, call.function.name, call.function.arguments)
        for chunk in chunks
        for call in chunk.delta.message.tool_calls
    ]
    # Keyed by block index; the id and name come with each call's first fragment only.
    assert fragments == [
        (1, "toolu_01A", "get_weather", ""),
        (1, "", "", '{"ci'),
        (1, "", "", 'ty": "Pa'),
        (1, "", "", 'ris"}'),
        (2, "toolu_01B", "get_time", '{"zone":'),
        (2, "", "", ' "CET"}'),
    ]
    result = mr.collect(chunks)
    assert result.message.content == "Let me check."
    assert [
        (c.id, c.function.name, json.loads(c.function.arguments)) for c in result.message.tool_calls
    ] == [
        ("toolu_01A", "get_weather", {"city": "Paris"}),
        ("toolu_01B", "get_time", {"zone": "CET"}),
    ]
    assert result.finish_reason == "tool_calls"

    body = anthropic.last_body()
    assert body["tools"] == [
        {
            "name": "get_weather",
            "description": "Weather for a city",
            "input_schema": WEATHER_TOOL["parameters"],
        },
        {
            "name": "get_time",
            "description": "Local time in a zone",
            "input_schema": TIME_TOOL["parameters"],
        },
    ]
    assert body["tool_choice"] == {"type": "any"}


def test_a_tool_use_without_input_fragments_gets_an_empty_object(
    client: mr.ModelRuntimeClient, anthropic: FakeAnthropic, credentials: dict[str, str]
) -> None:
    reply = Reply([ToolUse("toolu_01C", "get_time", [""])], stop_reason="tool_use")
    anthropic.reply(reply)

    chunks = list(client.stream_llm(PROVIDER, SONNET, credentials, "time?", tools=[TIME_TOOL]))

    assert len(chunks) == visible_deltas(reply) + 1 == 3
    result = mr.collect(chunks)
    assert [(c.id, c.function.arguments) for c in result.message.tool_calls] == [
        ("toolu_01C", "{}")
    ]


@pytest.mark.parametrize(
    ("choice", "parallel", "expected"),
    [
        ("get_time", None, {"type": "tool", "name": "get_time"}),
        ("none", None, {"type": "none"}),
        ("auto", False, {"type": "auto", "disable_parallel_tool_use": True}),
        (None, False, {"type": "auto", "disable_parallel_tool_use": True}),
        (None, None, None),
    ],
)
def test_tool_choice_and_parallel_calls_reach_the_wire(
    client: mr.ModelRuntimeClient,
    anthropic: FakeAnthropic,
    credentials: dict[str, str],
    choice: str | None,
    parallel: bool | None,
    expected: dict[str, Any] | None,
) -> None:
    params: dict[str, mr.ParameterInput] = {}
    if choice is not None:
        params["tool_choice"] = choice
    if parallel is not None:
        params["parallel_tool_calls"] = parallel

    list(client.stream_llm(PROVIDER, HAIKU, credentials, "hi", params, tools=[TIME_TOOL]))

    assert anthropic.last_body().get("tool_choice") == expected


def test_forcing_a_tool_that_was_not_given_is_an_invalid_parameter(
    client: mr.ModelRuntimeClient, anthropic: FakeAnthropic, credentials: dict[str, str]
) -> None:
    with pytest.raises(mr.InvalidParameterError) as caught:
        list(
            client.stream_llm(
                PROVIDER, HAIKU, credentials, "hi", {"tool_choice": "launch"}, tools=[TIME_TOOL]
            )
        )

    assert caught.value.reason == "INVALID_PARAMETER"
    assert [v.field for v in caught.value.field_violations] == ["model_parameters.tool_choice"]
    assert anthropic.messages_requests() == []


def test_tool_results_go_back_as_one_user_turn_with_parsed_arguments(
    client: mr.ModelRuntimeClient, anthropic: FakeAnthropic, credentials: dict[str, str]
) -> None:
    anthropic.reply(Reply([Text(["18C and 14:00."])]))
    prompt = [
        {"role": "user", "content": "Weather and time in Paris?"},
        mr.assistant_message(
            "Checking.",
            tool_calls=[
                {
                    "id": "toolu_01A",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                },
                {"id": "toolu_01B", "function": {"name": "get_time", "arguments": ""}},
            ],
        ),
        mr.tool_message("18C, clear", tool_call_id="toolu_01A"),
        mr.tool_message("14:00", tool_call_id="toolu_01B"),
        {"role": "user", "content": "Thanks; summarise."},
    ]

    result = client.invoke_llm(
        PROVIDER, SONNET, credentials, prompt, tools=[WEATHER_TOOL, TIME_TOOL]
    )

    assert result.message.content == "18C and 14:00."
    assert anthropic.last_body()["messages"] == [
        user_text("Weather and time in Paris?"),
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Checking."},
                {
                    "type": "tool_use",
                    "id": "toolu_01A",
                    "name": "get_weather",
                    "input": {"city": "Paris"},
                },
                {"type": "tool_use", "id": "toolu_01B", "name": "get_time", "input": {}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_01A", "content": "18C, clear"},
                {"type": "tool_result", "tool_use_id": "toolu_01B", "content": "14:00"},
                {"type": "text", "text": "Thanks; summarise."},
            ],
        },
    ]


def test_thinking_streams_as_reasoning_and_its_signed_blocks_survive_a_tool_loop(
    client: mr.ModelRuntimeClient, anthropic: FakeAnthropic, credentials: dict[str, str]
) -> None:
    first = Reply(
        [
            Thinking(["The user wants ", "the weather; ", "call the tool."], "EqQBCkgIARABGAIiQL"),
            RedactedThinking("EmwKAhgBEgy3va3pzix/LafPsn4aDFIT"),
            Text(["Checking."]),
            ToolUse("toolu_01A", "get_weather", ['{"city": ', '"Paris"}']),
        ],
        stop_reason="tool_use",
        usage=Usage(input_tokens=50, output_tokens=80),
    )
    anthropic.reply(first, Reply([Text(["It is 18C in Paris."])]))
    params: dict[str, mr.ParameterInput] = {
        "thinking": True,
        "thinking_budget": 2048,
        "max_tokens": 4096,
        "temperature": 0.5,
        "top_k": 5,
    }
    question = {"role": "user", "content": "Weather in Paris?"}

    chunks = list(
        client.stream_llm(PROVIDER, SONNET, credentials, [question], params, tools=[WEATHER_TOOL])
    )

    assert len(chunks) == visible_deltas(first) + 1 == 7
    assert [c.delta.message.reasoning_content for c in chunks[:3]] == [
        "The user wants ",
        "the weather; ",
        "call the tool.",
    ]
    # The opaque body comes once, with the closing chunk: every block as the API sent it.
    assert [c.delta.message.HasField("opaque_body") for c in chunks] == [False] * 6 + [True]
    kept = [
        {
            "type": "thinking",
            "thinking": "The user wants the weather; call the tool.",
            "signature": "EqQBCkgIARABGAIiQL",
        },
        {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix/LafPsn4aDFIT"},
    ]
    assert opaque(chunks[-1].delta.message) == {"anthropic_thinking_blocks": kept}
    first_body = anthropic.last_body()
    assert first_body["thinking"] == {"type": "enabled", "budget_tokens": 2048}
    # With thinking on, the API fixes sampling itself and refuses these.
    assert "temperature" not in first_body and "top_k" not in first_body

    answer = mr.collect(chunks)
    assert answer.reasoning_content == "The user wants the weather; call the tool."
    loop = [question, answer.message, mr.tool_message("18C, clear", tool_call_id="toolu_01A")]
    second = list(
        client.stream_llm(PROVIDER, SONNET, credentials, loop, params, tools=[WEATHER_TOOL])
    )

    assert [c.delta.message.content for c in second] == ["It is 18C in Paris.", ""]
    assert anthropic.last_body()["messages"] == [
        user_text("Weather in Paris?"),
        {
            "role": "assistant",
            # The thinking blocks unchanged, ahead of the text and the tool call.
            "content": [
                *kept,
                {"type": "text", "text": "Checking."},
                {
                    "type": "tool_use",
                    "id": "toolu_01A",
                    "name": "get_weather",
                    "input": {"city": "Paris"},
                },
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_01A", "content": "18C, clear"}
            ],
        },
    ]


def test_thinking_blocks_stored_by_difys_plugin_are_sent_back_too(
    client: mr.ModelRuntimeClient, anthropic: FakeAnthropic, credentials: dict[str, str]
) -> None:
    thought = {"type": "thinking", "thinking": "Use the tool.", "signature": "sig-dify"}
    redacted = {"type": "redacted_thinking", "data": "EmwKAhgB"}
    # Dify's plugin keeps redacted blocks under a key of their own.
    stored = {
        "anthropic_thinking_blocks": [thought],
        "anthropic_redacted_thinking_blocks": [redacted],
    }
    prompt = [
        {"role": "user", "content": "Time?"},
        mr.assistant_message(
            tool_calls=[{"id": "toolu_7", "function": {"name": "get_time", "arguments": "{}"}}],
            opaque_body=stored,
        ),
        mr.tool_message("14:00", tool_call_id="toolu_7"),
    ]

    client.invoke_llm(PROVIDER, SONNET, credentials, prompt, tools=[TIME_TOOL])

    assert anthropic.last_body()["messages"][1] == {
        "role": "assistant",
        "content": [
            thought,
            redacted,
            {"type": "tool_use", "id": "toolu_7", "name": "get_time", "input": {}},
        ],
    }


def test_a_final_assistant_message_is_a_prefill_without_trailing_whitespace(
    client: mr.ModelRuntimeClient, anthropic: FakeAnthropic, credentials: dict[str, str]
) -> None:
    prompt = [
        {"role": "user", "content": "Give me JSON."},
        {"role": "assistant", "content": "{\n  "},
    ]

    client.invoke_llm(PROVIDER, HAIKU, credentials, prompt)

    assert anthropic.last_body()["messages"][-1] == {
        "role": "assistant",
        "content": [{"type": "text", "text": "{"}],
    }


def test_a_plain_text_document_is_sent_as_text(
    client: mr.ModelRuntimeClient, anthropic: FakeAnthropic, credentials: dict[str, str]
) -> None:
    document = {
        "type": "document",
        "data": b"Minutes of the meeting.",
        "mime_type": "text/plain",
        "filename": "minutes.txt",
    }

    client.invoke_llm(
        PROVIDER, HAIKU, credentials, [{"role": "user", "content": [document, "Summarise."]}]
    )

    assert anthropic.last_body()["messages"][0]["content"] == [
        {
            "type": "document",
            "source": {
                "type": "text",
                "media_type": "text/plain",
                "data": "Minutes of the meeting.",
            },
            "title": "minutes.txt",
        },
        {"type": "text", "text": "Summarise."},
    ]


def test_a_thinking_budget_not_below_max_tokens_is_an_invalid_parameter(
    client: mr.ModelRuntimeClient, anthropic: FakeAnthropic, credentials: dict[str, str]
) -> None:
    with pytest.raises(mr.InvalidParameterError) as caught:
        list(
            client.stream_llm(
                PROVIDER,
                SONNET,
                credentials,
                "hi",
                {"thinking": True, "thinking_budget": 4096, "max_tokens": 4096},
            )
        )

    assert caught.value.reason == "INVALID_PARAMETER"
    assert [v.field for v in caught.value.field_violations] == ["model_parameters.thinking_budget"]
    assert anthropic.messages_requests() == []


def test_sampling_parameters_user_and_beta_flags_reach_the_wire(
    client: mr.ModelRuntimeClient, anthropic: FakeAnthropic, credentials: dict[str, str]
) -> None:
    list(
        client.stream_llm(
            PROVIDER,
            SONNET,
            credentials,
            "hi",
            {"temperature": 0.0, "top_k": 40, "max_tokens": 300, "context_1m": True},
            user="user-7f3a",
        )
    )

    recorded = anthropic.upstream.last("/v1/messages")
    body = recorded.json()
    # An explicit 0.0 is sent; top_p, left unset, is not.
    assert (body["temperature"], body["top_k"], body["max_tokens"]) == (0.0, 40, 300)
    assert "top_p" not in body
    assert body["metadata"] == {"user_id": "user-7f3a"}
    assert recorded.headers["anthropic-beta"] == "context-1m-2025-08-07"


def test_a_no_op_top_p_is_left_out_when_temperature_is_set(
    client: mr.ModelRuntimeClient, anthropic: FakeAnthropic, credentials: dict[str, str]
) -> None:
    # Newer models refuse both; top_p 1.0 (a Dify template default) changes nothing anyway.
    list(client.stream_llm(PROVIDER, SONNET, credentials, "hi", {"temperature": 0.3, "top_p": 1.0}))
    assert "top_p" not in anthropic.last_body()

    list(client.stream_llm(PROVIDER, SONNET, credentials, "hi", {"temperature": 0.3, "top_p": 0.9}))
    body = anthropic.last_body()
    assert (body["temperature"], body["top_p"]) == (0.3, 0.9)


def test_extended_output_sends_its_beta_flag(
    client: mr.ModelRuntimeClient, anthropic: FakeAnthropic, credentials: dict[str, str]
) -> None:
    list(
        client.stream_llm(
            PROVIDER, SONNET_37, credentials, "hi", {"extended_output": True, "max_tokens": 100000}
        )
    )

    recorded = anthropic.upstream.last("/v1/messages")
    assert recorded.headers["anthropic-beta"] == "output-128k-2025-02-19"
    assert recorded.json()["max_tokens"] == 100000


@pytest.mark.parametrize(
    ("stop_reason", "finish_reason"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
        ("pause_turn", "pause_turn"),
    ],
)
def test_stop_reasons_become_finish_reasons(
    client: mr.ModelRuntimeClient,
    anthropic: FakeAnthropic,
    credentials: dict[str, str],
    stop_reason: str,
    finish_reason: str,
) -> None:
    anthropic.reply(Reply([Text(["x"])], stop_reason=stop_reason))

    streamed = list(client.stream_llm(PROVIDER, HAIKU, credentials, "hi"))
    whole = client.invoke_llm(PROVIDER, HAIKU, credentials, "hi")

    assert streamed[-1].delta.finish_reason == finish_reason
    assert whole.finish_reason == finish_reason


def test_stop_sequences_are_sent_and_a_matched_one_ends_with_stop(
    client: mr.ModelRuntimeClient, anthropic: FakeAnthropic, credentials: dict[str, str]
) -> None:
    anthropic.reply(
        Reply([Text(["one, two, "])], stop_reason="stop_sequence", stop_sequence="three")
    )

    chunks = list(client.stream_llm(PROVIDER, HAIKU, credentials, "count", stop=["three", ""]))

    assert anthropic.last_body()["stop_sequences"] == ["three"]
    assert [c.delta.message.content for c in chunks] == ["one, two, ", ""]
    assert chunks[-1].delta.finish_reason == "stop"


# ---- whole answers -------------------------------------------------------------------------


def test_a_whole_answer_carries_text_tool_calls_thinking_usage_and_price(
    client: mr.ModelRuntimeClient, anthropic: FakeAnthropic, credentials: dict[str, str]
) -> None:
    anthropic.reply(
        Reply(
            [
                Thinking(["Need ", "the tool."], "sig-whole-1"),
                Text(["Let me ", "look."]),
                ToolUse("toolu_09", "get_weather", ['{"city":', ' "Oslo"}']),
            ],
            stop_reason="tool_use",
            usage=Usage(input_tokens=12, output_tokens=33, cache_read_input_tokens=1000),
        )
    )

    result = client.invoke_llm(
        PROVIDER,
        HAIKU,
        credentials,
        "Weather in Oslo?",
        {"thinking": True, "max_tokens": 2048},
        tools=[WEATHER_TOOL],
    )

    assert anthropic.last_body()["stream"] is False
    assert result.message.content == "Let me look."
    assert [
        (c.id, c.type, c.function.name, json.loads(c.function.arguments))
        for c in result.message.tool_calls
    ] == [("toolu_09", "function", "get_weather", {"city": "Oslo"})]
    assert result.reasoning_content == "Need the tool."
    assert opaque(result.message) == {
        "anthropic_thinking_blocks": [
            {"type": "thinking", "thinking": "Need the tool.", "signature": "sig-whole-1"}
        ]
    }
    assert result.finish_reason == "tool_calls"
    usage = result.usage
    assert (usage.prompt_tokens, usage.completion_tokens, usage.cached_prompt_tokens) == (
        1012,
        33,
        1000,
    )
    assert Decimal(usage.prompt_price) == price(1012, "1.00")
    assert Decimal(usage.completion_price) == price(33, "5.00")
    assert Decimal(usage.total_price) == price(1012, "1.00") + price(33, "5.00")
    assert usage.latency > 0


# ---- customizable models -------------------------------------------------------------------


def test_a_model_name_not_in_the_yaml_is_a_customizable_model(
    client: mr.ModelRuntimeClient, anthropic: FakeAnthropic, credentials: dict[str, str]
) -> None:
    schema = client.get_model_schema(PROVIDER, "llm", "claude-opus-4-5", credentials)
    rules = {rule.name: rule for rule in schema.parameter_rules}
    assert rules["max_tokens"].required
    assert rules["max_tokens"].default.int_value == 4096
    assert {"thinking", "thinking_budget", "temperature", "top_p", "top_k"} <= set(rules)

    chunks = list(client.stream_llm(PROVIDER, "claude-opus-4-5", credentials, "hi"))

    assert [c.delta.message.content for c in chunks] == ["Hello", " there", ""]
    body = anthropic.last_body()
    assert (body["model"], body["max_tokens"]) == ("claude-opus-4-5", 4096)
    # Unknown models have no price.
    assert Decimal(chunks[-1].delta.usage.total_price) == 0


# ---- token counting ------------------------------------------------------------------------


def test_tokens_are_counted_by_the_count_tokens_endpoint(
    client: mr.ModelRuntimeClient, anthropic: FakeAnthropic, credentials: dict[str, str]
) -> None:
    anthropic.count_tokens = 1234
    prompt = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hello"}]

    count = client.get_llm_num_tokens(PROVIDER, SONNET, credentials, prompt, tools=[TIME_TOOL])

    assert count == 1234
    recorded = anthropic.upstream.last("/v1/messages/count_tokens")
    assert recorded.headers["x-api-key"] == TEST_KEY
    assert recorded.json() == {
        "model": SONNET,
        "system": [{"type": "text", "text": "Be brief."}],
        "messages": [user_text("hello")],
        "tools": [
            {
                "name": "get_time",
                "description": "Local time in a zone",
                "input_schema": TIME_TOOL["parameters"],
            }
        ],
    }


def offline_estimate(texts: list[str]) -> int:
    from providers.sdk.entities.message import UserPromptMessage

    return estimate_prompt_tokens(
        estimate_tokens, [UserPromptMessage(content=text) for text in texts], None
    )


def test_token_counting_falls_back_to_the_offline_estimate_when_the_endpoint_fails(
    client: mr.ModelRuntimeClient, anthropic: FakeAnthropic, credentials: dict[str, str]
) -> None:
    anthropic.count_tokens = Failure(404, "not_found_error", "Not found")
    texts = ["How many tokens is this sentence, roughly?"]

    count = client.get_llm_num_tokens(PROVIDER, SONNET, credentials, texts[0])

    assert count == offline_estimate(texts)
    assert anthropic.upstream.last("/v1/messages/count_tokens")


def test_token_counting_falls_back_to_the_offline_estimate_when_the_api_is_unreachable(
    client: mr.ModelRuntimeClient,
) -> None:
    unreachable = {
        "anthropic_api_key": TEST_KEY,
        "anthropic_api_url": f"http://127.0.0.1:{free_port()}",
    }

    count = client.get_llm_num_tokens(PROVIDER, SONNET, unreachable, "a short prompt")

    assert count == offline_estimate(["a short prompt"])


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


# ---- cancellation --------------------------------------------------------------------------


async def test_cancelling_a_stream_closes_the_upstream_connection_within_100_ms(
    async_client: mr.AsyncModelRuntimeClient, anthropic: FakeAnthropic, credentials: dict[str, str]
) -> None:
    anthropic.reply(Reply([Text([f"w{n} " for n in range(500)])], pause=0.01))
    stream = async_client.stream_llm(PROVIDER, SONNET, credentials, "talk for long")

    received = []
    async for chunk in stream:
        received.append(chunk.delta.message.content)
        if len(received) == 3:
            break
    stream.cancel()
    cancelled_at = time.monotonic()

    recorded = anthropic.upstream.last("/v1/messages")
    closed_at = await asyncio.to_thread(recorded.wait_disconnected, 2.0)
    assert received == ["w0 ", "w1 ", "w2 "]
    assert closed_at is not None, "the fake upstream never saw the connection close"
    assert closed_at - cancelled_at < 0.1, (
        f"closed {1000 * (closed_at - cancelled_at):.1f} ms after"
    )
