"""Plain Python values -> request protos, and streamed chunks -> one answer."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator

import pytest
from google.protobuf import json_format

import modelruntime.client as mr
from modelruntime.v1 import llm_pb2, schema_pb2, value_pb2

PV = value_pb2.ParameterValue


class TestModelParameters:
    def test_each_python_type_takes_its_field(self) -> None:
        converted = mr.to_model_parameters(
            {"temperature": 0.2, "max_tokens": 100, "format": "json", "stream": True}
        )

        assert converted == {
            "temperature": PV(float_value=0.2),
            "max_tokens": PV(int_value=100),
            "format": PV(string_value="json"),
            "stream": PV(bool_value=True),
        }

    def test_booleans_are_not_taken_for_integers(self) -> None:
        # bool is a subclass of int; False must not arrive as int_value 0.
        converted = mr.to_model_parameters({"stream": False, "n": 0})

        assert converted["stream"].WhichOneof("kind") == "bool_value"
        assert converted["n"].WhichOneof("kind") == "int_value"

    def test_parameter_values_pass_through(self) -> None:
        value = PV(float_value=1.0)

        assert mr.to_model_parameters({"top_p": value}) == {"top_p": value}

    @pytest.mark.parametrize("bad", [None, [1, 2], {"a": 1}, b"raw"])
    def test_other_types_are_refused_with_the_key(self, bad: object) -> None:
        with pytest.raises(TypeError, match="'seed'"):
            mr.to_model_parameters({"seed": bad})  # type: ignore[dict-item]

    def test_integer_out_of_int64_is_refused_with_the_key(self) -> None:
        with pytest.raises(ValueError, match="'seed'"):
            mr.to_model_parameters({"seed": 2**64})

    def test_none_means_no_parameters(self) -> None:
        assert mr.to_model_parameters(None) == {}


class TestPromptMessages:
    def test_a_string_is_one_user_message(self) -> None:
        assert mr.to_prompt_messages("Hi") == [
            llm_pb2.PromptMessage(role=llm_pb2.PROMPT_MESSAGE_ROLE_USER, content="Hi")
        ]

    def test_dicts_builders_and_protos_mix(self) -> None:
        proto = llm_pb2.PromptMessage(role=llm_pb2.PROMPT_MESSAGE_ROLE_DEVELOPER, content="d")

        messages = mr.to_prompt_messages(
            [{"role": "system", "content": "Be brief."}, mr.user_message("Hi"), proto]
        )

        assert [m.role for m in messages] == [
            llm_pb2.PROMPT_MESSAGE_ROLE_SYSTEM,
            llm_pb2.PROMPT_MESSAGE_ROLE_USER,
            llm_pb2.PROMPT_MESSAGE_ROLE_DEVELOPER,
        ]
        assert messages[2] is proto

    def test_content_parts(self) -> None:
        png = b"\x89PNG\r\n"
        [message] = mr.to_prompt_messages(
            [
                {
                    "role": "user",
                    "content": [
                        "What is in these?",
                        {"type": "text", "text": "Be precise."},
                        {
                            "type": "image",
                            "url": "https://example.com/cat.png",
                            "mime_type": "image/png",
                            "detail": "high",
                        },
                        {"type": "image", "data": png, "mime_type": "image/png", "format": "png"},
                        {"type": "audio", "base64_data": "SUQz", "mime_type": "audio/mpeg"},
                        {
                            "type": "document",
                            "url": "https://example.com/a.pdf",
                            "mime_type": "application/pdf",
                            "filename": "a.pdf",
                        },
                    ],
                }
            ]
        )

        parts = message.content_parts
        assert message.content == ""
        assert [p.WhichOneof("content") for p in parts] == [
            "text",
            "text",
            "image",
            "image",
            "audio",
            "document",
        ]
        assert parts[2].image.url == "https://example.com/cat.png"
        assert parts[2].image.detail == llm_pb2.IMAGE_DETAIL_HIGH
        assert base64.b64decode(parts[3].image.base64_data) == png
        assert parts[3].image.format == "png"
        assert parts[4].audio.base64_data == "SUQz"
        assert parts[5].document.filename == "a.pdf"

    def test_assistant_tool_calls_and_the_tool_answer(self) -> None:
        messages = mr.to_prompt_messages(
            [
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "call_1",
                            "type": "function",
                            "function": {"name": "weather", "arguments": {"city": "Zürich"}},
                        },
                        {"id": "call_2", "function": {"name": "time", "arguments": "{}"}},
                    ],
                },
                {"role": "tool", "content": "12°C", "tool_call_id": "call_1", "name": "weather"},
            ]
        )

        calls = messages[0].tool_calls
        assert json.loads(calls[0].function.arguments) == {"city": "Zürich"}
        assert calls[1].type == "function"  # the default
        assert calls[1].function.arguments == "{}"
        assert (messages[1].tool_call_id, messages[1].name) == ("call_1", "weather")

    def test_builders(self) -> None:
        assistant = mr.assistant_message(
            "",
            tool_calls=[{"id": "c", "function": {"name": "f", "arguments": {}}}],
            opaque_body={"thinking": [{"signature": "sig"}]},
        )
        tool = mr.tool_message("42", tool_call_id="c")

        assert assistant.role == llm_pb2.PROMPT_MESSAGE_ROLE_ASSISTANT
        assert json_format.MessageToDict(assistant.opaque_body) == {
            "thinking": [{"signature": "sig"}]
        }
        assert (tool.role, tool.tool_call_id, tool.content) == (
            llm_pb2.PROMPT_MESSAGE_ROLE_TOOL,
            "c",
            "42",
        )
        assert mr.system_message("s").role == llm_pb2.PROMPT_MESSAGE_ROLE_SYSTEM
        assert mr.developer_message("d").role == llm_pb2.PROMPT_MESSAGE_ROLE_DEVELOPER

    @pytest.mark.parametrize(
        ("messages", "error", "match"),
        [
            ([{"role": "user", "contents": "hi"}], ValueError, r"prompt_messages\[0\].*'contents'"),
            ([{"content": "hi"}], ValueError, "missing 'role'"),
            ([{"role": "robot", "content": "hi"}], ValueError, "unknown role 'robot'"),
            ({"role": "user", "content": "hi"}, TypeError, "list of messages"),
            ([{"role": "user", "content": {"type": "text"}}], TypeError, "not one part"),
            ([42], TypeError, "not int"),
            (
                [{"role": "user", "content": [{"type": "image", "mime_type": "image/png"}]}],
                ValueError,
                "exactly one of",
            ),
            (
                [{"role": "user", "content": [{"type": "image", "url": "u", "data": b"x"}]}],
                ValueError,
                "exactly one of",
            ),
            (
                [{"role": "user", "content": [{"type": "audio", "url": "u", "detail": "high"}]}],
                ValueError,
                "images only",
            ),
            (
                [{"role": "user", "content": [{"type": "gif", "url": "u"}]}],
                ValueError,
                r"content\[0\]: 'type'",
            ),
        ],
    )
    def test_mistakes_are_named(self, messages: object, error: type[Exception], match: str) -> None:
        with pytest.raises(error, match=match):
            mr.to_prompt_messages(messages)  # type: ignore[arg-type]


WEATHER_SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}},
    "required": ["city"],
}


class TestTools:
    def test_parameters_become_a_struct(self) -> None:
        [tool] = mr.to_tools(
            [{"name": "weather", "description": "Current weather", "parameters": WEATHER_SCHEMA}]
        )

        assert (tool.name, tool.description) == ("weather", "Current weather")
        assert json_format.MessageToDict(tool.parameters) == WEATHER_SCHEMA

    def test_the_openai_shape_is_accepted(self) -> None:
        [tool] = mr.to_tools(
            [{"type": "function", "function": {"name": "weather", "parameters": WEATHER_SCHEMA}}]
        )

        assert tool.name == "weather"
        assert json_format.MessageToDict(tool.parameters) == WEATHER_SCHEMA

    def test_unknown_keys_are_named(self) -> None:
        with pytest.raises(ValueError, match=r"tools\[0\].*'params'"):
            mr.to_tools([{"name": "weather", "params": {}}])

    def test_non_json_parameters_are_refused(self) -> None:
        with pytest.raises(TypeError, match="JSON"):
            mr.to_tools([{"name": "weather", "parameters": {"x": object()}}])


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("llm", schema_pb2.MODEL_TYPE_LLM),
        ("text-embedding", schema_pb2.MODEL_TYPE_TEXT_EMBEDDING),
        ("text_embedding", schema_pb2.MODEL_TYPE_TEXT_EMBEDDING),
        ("rerank", schema_pb2.MODEL_TYPE_RERANK),
        ("speech2text", schema_pb2.MODEL_TYPE_SPEECH2TEXT),
        ("tts", schema_pb2.MODEL_TYPE_TTS),
        ("moderation", schema_pb2.MODEL_TYPE_MODERATION),
        (schema_pb2.MODEL_TYPE_RERANK, schema_pb2.MODEL_TYPE_RERANK),
    ],
)
def test_model_types(given: mr.ModelTypeInput, expected: int) -> None:
    assert mr.to_model_type(given) == expected


def test_unknown_model_type_lists_the_known_ones() -> None:
    with pytest.raises(ValueError, match=r"'llm'.*'moderation'"):
        mr.to_model_type("chat")


def _chunk(
    *,
    content: str = "",
    reasoning: str = "",
    refusal: str = "",
    tool_calls: list[llm_pb2.ToolCallDelta] | None = None,
    **delta: object,
) -> llm_pb2.LLMResultChunk:
    return llm_pb2.LLMResultChunk(
        model="fake-chat-2025",
        delta=llm_pb2.LLMResultChunkDelta(
            message=llm_pb2.AssistantPromptMessageDelta(
                content=content,
                reasoning_content=reasoning,
                refusal=refusal,
                tool_calls=tool_calls or [],
            ),
            **delta,  # type: ignore[arg-type]
        ),
    )


def _fragment(index: int, arguments: str = "", **first: str) -> llm_pb2.ToolCallDelta:
    return llm_pb2.ToolCallDelta(
        index=index,
        id=first.get("id", ""),
        type=first.get("type", ""),
        function=llm_pb2.ToolCallFunction(name=first.get("name", ""), arguments=arguments),
    )


CHUNKS = [
    _chunk(reasoning="The user wants "),
    _chunk(reasoning="weather."),
    _chunk(content="Let me "),
    _chunk(content="check."),
    # Two calls streamed interleaved; the first fragment of each carries id, type and name,
    # and a fragment with only an id (empty arguments) must not be dropped.
    _chunk(tool_calls=[_fragment(0, id="call_a", type="function", name="weather")]),
    _chunk(tool_calls=[_fragment(1, '{"tz":', id="call_b", type="function", name="time")]),
    _chunk(tool_calls=[_fragment(0, '{"city": ')]),
    _chunk(tool_calls=[_fragment(1, ' "UTC"}'), _fragment(0, '"Bern"}')]),
    _chunk(
        finish_reason="tool_calls",
        usage=llm_pb2.LLMUsage(prompt_tokens=10, completion_tokens=5, total_tokens=15),
    ),
]


def test_accumulator_rebuilds_the_whole_answer() -> None:
    result = mr.collect(CHUNKS)

    assert result.model == "fake-chat-2025"
    assert result.reasoning_content == "The user wants weather."
    assert result.message.role == llm_pb2.PROMPT_MESSAGE_ROLE_ASSISTANT
    assert result.message.content == "Let me check."
    assert [(c.id, c.type, c.function.name) for c in result.message.tool_calls] == [
        ("call_a", "function", "weather"),
        ("call_b", "function", "time"),
    ]
    assert json.loads(result.message.tool_calls[0].function.arguments) == {"city": "Bern"}
    assert json.loads(result.message.tool_calls[1].function.arguments) == {"tz": "UTC"}
    assert result.finish_reason == "tool_calls"
    assert result.usage.total_tokens == 15


def test_accumulator_keeps_refusal_and_opaque_body() -> None:
    last = _chunk(refusal="policy.", finish_reason="content_filter")
    last.delta.message.opaque_body.update({"signature": "abc"})

    result = mr.collect([_chunk(refusal="I can't help with that: "), last])

    assert result.refusal == "I can't help with that: policy."
    assert json_format.MessageToDict(result.message.opaque_body) == {"signature": "abc"}
    assert not result.HasField("usage")


def test_accumulator_can_be_read_while_streaming() -> None:
    accumulator = mr.StreamAccumulator()
    accumulator.add(CHUNKS[2])
    assert accumulator.result().message.content == "Let me "
    accumulator.add(CHUNKS[3])
    assert accumulator.result().message.content == "Let me check."


async def test_acollect() -> None:
    async def stream() -> AsyncIterator[llm_pb2.LLMResultChunk]:
        for chunk in CHUNKS:
            yield chunk

    assert await mr.acollect(stream()) == mr.collect(CHUNKS)
