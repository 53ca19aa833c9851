"""StreamLLM as a caller sees it: one upstream delta per message, sent the moment it exists,
numbered in order, with tool calls, reasoning, cut-offs and usage where the contract puts them.
"""

from __future__ import annotations

import json
import time

import pytest

from modelruntime import client as mr
from modelruntime.v1 import llm_pb2
from modelruntime.v1 import model_runtime_service_pb2_grpc as pb_grpc

from ._support import CALL_TIMEOUT, CREDS, stream_request, tool_calls_param

WORDS = 120
DELAY_MS = 10
LONG_REPLY = " ".join(f"word{i}" for i in range(WORDS))

TOOL_CALLS = [
    {"name": "get_weather", "arguments": {"city": "Paris", "days": 3, "units": "metric"}},
    {"name": "search", "arguments": {"query": "gRPC streaming", "limit": 5}},
]


def stream(client: mr.ModelRuntimeClient, **parameters: mr.ParameterInput) -> list:
    return list(client.stream_llm("fake", "fake-chat", CREDS, "hi", model_parameters=parameters))


def contents(chunks: list[llm_pb2.LLMResultChunk]) -> list[str]:
    return [c.delta.message.content for c in chunks if c.delta.message.content]


# ---- each chunk sent as produced -------------------------------------------------------------


def test_long_stream_sends_each_chunk_as_it_is_produced(
    stub: pb_grpc.ModelRuntimeServiceStub,
) -> None:
    request = stream_request(
        "fake", "fake-chat", CREDS, "go", {"reply": LONG_REPLY, "chunk_delay_ms": DELAY_MS}
    )

    started = time.monotonic()
    arrivals: list[float] = []
    messages = []
    for message in stub.StreamLLM(request, timeout=CALL_TIMEOUT):
        arrivals.append(time.monotonic())
        messages.append(message)
    ended = time.monotonic()

    # WORDS content chunks, then the closing chunk with usage. A message carries the chunks
    # that piled up while gRPC wrote the one before: chunks produced DELAY_MS apart never
    # wait for each other, so only the closing chunk may share its message with the last word.
    chunks = [chunk for message in messages for chunk in message.chunks]
    assert len(chunks) == WORDS + 1
    assert len(messages) >= WORDS
    assert [c.delta.index for c in chunks] == list(range(WORDS + 1))
    assert "".join(c.delta.message.content for c in chunks) == LONG_REPLY

    # The provider sleeps DELAY_MS before each of its WORDS chunks, so a server that passes
    # chunks on as produced spreads the messages over (WORDS - 1) * DELAY_MS; a buffering one
    # delivers them in a burst at the end.
    expected_spread = (WORDS - 1) * DELAY_MS / 1000
    assert arrivals[-1] - arrivals[0] >= 0.8 * expected_spread
    assert arrivals[0] - started < 0.25 * (ended - started)
    # Half the messages must be in hand by about half-time, not all at the end.
    midpoint = started + (ended - started) / 2
    arrived_by_midpoint = sum(1 for t in arrivals if t <= midpoint)
    assert 0.25 * len(arrivals) <= arrived_by_midpoint <= 0.75 * len(arrivals)


def test_each_word_keeps_its_trailing_whitespace(client: mr.ModelRuntimeClient) -> None:
    chunks = stream(client, reply="one  two\tthree\nfour")

    assert contents(chunks) == ["one  ", "two\t", "three\n", "four"]


# ---- tool calls ------------------------------------------------------------------------------


def test_tool_call_fragments_carry_id_and_name_first_then_argument_pieces(
    client: mr.ModelRuntimeClient,
) -> None:
    chunks = stream(client, reply="", tool_calls=tool_calls_param(TOOL_CALLS))

    fragments = [f for c in chunks for f in c.delta.message.tool_calls]
    for index, call in enumerate(TOOL_CALLS):
        own = [f for f in fragments if f.index == index]
        first, rest = own[0], own[1:]
        assert (first.id, first.type, first.function.name) == (
            f"call_fake_{index}",
            "function",
            call["name"],
        )
        assert len(rest) >= 2, "arguments should stream in several pieces"
        assert all((f.id, f.type, f.function.name) == ("", "", "") for f in rest)
        arguments = "".join(f.function.arguments for f in own)
        assert json.loads(arguments) == call["arguments"]
    # Each chunk is one upstream delta: one fragment at a time.
    assert all(len(c.delta.message.tool_calls) <= 1 for c in chunks)
    assert chunks[-1].delta.finish_reason == "tool_calls"


def test_tool_calls_assembled_by_the_accumulator_match_the_unary_answer(
    client: mr.ModelRuntimeClient,
) -> None:
    parameters = {"reply": "Let me check.", "tool_calls": tool_calls_param(TOOL_CALLS)}

    streamed = mr.collect(client.stream_llm("fake", "fake-chat", CREDS, "hi", parameters))
    unary = client.invoke_llm("fake", "fake-chat", CREDS, "hi", parameters)

    for result in (streamed, unary):
        calls = result.message.tool_calls
        assert [(c.id, c.type, c.function.name) for c in calls] == [
            ("call_fake_0", "function", "get_weather"),
            ("call_fake_1", "function", "search"),
        ]
        assert [json.loads(c.function.arguments) for c in calls] == [
            t["arguments"] for t in TOOL_CALLS
        ]
        assert result.message.content == "Let me check."
        assert result.finish_reason == "tool_calls"


# ---- reasoning, refusal, cut-offs ------------------------------------------------------------


def test_reasoning_streams_before_the_content(client: mr.ModelRuntimeClient) -> None:
    chunks = stream(client, reasoning="first think it over", reply="the answer")

    kinds = [
        "reasoning" if c.delta.message.reasoning_content else "content"
        for c in chunks
        if c.delta.message.reasoning_content or c.delta.message.content
    ]
    assert kinds == ["reasoning"] * 4 + ["content"] * 2
    result = mr.collect(chunks)
    assert result.reasoning_content == "first think it over"
    assert result.message.content == "the answer"


def test_refusal_streams_as_refusal_chunks_with_content_filter(
    client: mr.ModelRuntimeClient,
) -> None:
    chunks = stream(client, refusal="I cannot help with that", reply="never sent")

    refusals = [c.delta.message.refusal for c in chunks if c.delta.message.refusal]
    assert refusals == ["I ", "cannot ", "help ", "with ", "that"]
    assert contents(chunks) == []
    assert chunks[-1].delta.finish_reason == "content_filter"


def test_max_tokens_cuts_the_reply_with_finish_reason_length(
    client: mr.ModelRuntimeClient,
) -> None:
    chunks = stream(client, reply="a b c d e f g h i j", max_tokens=4)

    assert contents(chunks) == ["a ", "b ", "c ", "d "]
    assert chunks[-1].delta.finish_reason == "length"
    assert chunks[-1].delta.usage.completion_tokens == 4


def test_stop_sequence_ends_the_reply_without_the_matched_text(
    client: mr.ModelRuntimeClient,
) -> None:
    chunks = list(
        client.stream_llm(
            "fake",
            "fake-chat",
            CREDS,
            "hi",
            model_parameters={"reply": "one two STOP three four"},
            stop=["STOP"],
        )
    )

    assert "".join(contents(chunks)) == "one two "
    assert chunks[-1].delta.finish_reason == "stop"


# ---- the last chunk ----------------------------------------------------------------------------


def test_only_the_last_chunk_carries_usage_and_finish_reason(
    client: mr.ModelRuntimeClient,
) -> None:
    chunks = stream(client, reply="alpha beta gamma delta", chunk_delay_ms=5)

    *body, last = chunks
    assert len(body) == 4
    assert not any(c.delta.HasField("usage") or c.delta.finish_reason for c in body)
    assert last.delta.finish_reason == "stop"
    assert last.delta.HasField("usage")
    usage = last.delta.usage
    assert usage.completion_tokens == 4
    assert usage.prompt_tokens > 0
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert usage.prompt_price and usage.completion_price and usage.total_price
    assert usage.currency == "USD"
    # Four 5 ms delays happen after the first output: the timings must reflect the stream.
    assert 0 < usage.time_to_first_token < usage.latency
    assert usage.time_to_generate >= 0.015
    assert usage.latency >= usage.time_to_first_token + usage.time_to_generate - 1e-6
    assert last.system_fingerprint == "fp_fake"
    assert all(c.model == "fake-chat" for c in chunks)


# ---- the async client ----------------------------------------------------------------------


async def test_async_client_streams_the_same_chunks(
    address: str, client: mr.ModelRuntimeClient
) -> None:
    parameters = {
        "reasoning": "hmm",
        "reply": "one two three",
        "tool_calls": tool_calls_param(TOOL_CALLS[:1]),
    }
    sync_chunks = list(client.stream_llm("fake", "fake-chat", CREDS, "hi", parameters))

    async with mr.AsyncModelRuntimeClient(address, default_timeout=CALL_TIMEOUT) as aclient:
        async_chunks = [
            c async for c in aclient.stream_llm("fake", "fake-chat", CREDS, "hi", parameters)
        ]

    def comparable(chunk: llm_pb2.LLMResultChunk) -> llm_pb2.LLMResultChunk:
        copy = llm_pb2.LLMResultChunk()
        copy.CopyFrom(chunk)
        copy.delta.ClearField("usage")  # timings differ from call to call
        return copy

    assert [comparable(c) for c in async_chunks] == [comparable(c) for c in sync_chunks]
    assert [c.delta.index for c in async_chunks] == list(range(len(sync_chunks)))
    assert async_chunks[-1].delta.usage.total_tokens == sync_chunks[-1].delta.usage.total_tokens


async def test_async_client_collects_a_whole_answer(address: str) -> None:
    async with mr.AsyncModelRuntimeClient(address, default_timeout=CALL_TIMEOUT) as aclient:
        result = await mr.acollect(
            aclient.stream_llm(
                "fake", "fake-chat", CREDS, "hi", {"reply": "async works", "chunk_delay_ms": 1}
            )
        )

    assert result.message.content == "async works"
    assert result.finish_reason == "stop"
    assert result.usage.completion_tokens == 2


@pytest.mark.parametrize("words", [1, 3])
def test_short_streams_are_numbered_and_closed(client: mr.ModelRuntimeClient, words: int) -> None:
    reply = " ".join(["w"] * words)

    chunks = stream(client, reply=reply)

    assert [c.delta.index for c in chunks] == list(range(words + 1))
    assert chunks[-1].delta.finish_reason == "stop"
