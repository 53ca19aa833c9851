"""StreamLLM and InvokeTTS, sync and async: flattening, mid-stream errors, cancellation."""

from __future__ import annotations

import asyncio

import grpc
import pytest

import modelruntime.client as mr
from modelruntime.v1 import llm_pb2
from modelruntime.v1 import model_runtime_service_pb2 as pb

from ._stub import ClientTestStubServicer, chunk, rich_status

CREDENTIALS = {"api_key": "fake-key"}
# Bounded wait for the server to notice a cancellation; it normally takes milliseconds.
NOTICE_SECONDS = 5.0

THREE_MESSAGES = [
    pb.StreamLLMResponse(chunks=[chunk("Hel")]),
    # Two deltas that waited together in one message.
    pb.StreamLLMResponse(chunks=[chunk("lo, "), chunk("world")]),
    pb.StreamLLMResponse(
        chunks=[
            chunk(
                "!",
                finish_reason="stop",
                usage=llm_pb2.LLMUsage(prompt_tokens=3, completion_tokens=4, total_tokens=7),
            )
        ]
    ),
]
RATE_LIMITED = rich_status(
    grpc.StatusCode.RESOURCE_EXHAUSTED,
    "slow down",
    reason="INVOKE_RATE_LIMIT",
    provider="fake",
    model="fake-chat",
    retry_after=2.0,
)


def _contents(chunks: list[llm_pb2.LLMResultChunk]) -> list[str]:
    return [c.delta.message.content for c in chunks]


def test_chunks_are_flattened_in_order(
    client: mr.ModelRuntimeClient, stub: ClientTestStubServicer
) -> None:
    stub.responses["StreamLLM"] = THREE_MESSAGES

    chunks = list(client.stream_llm("fake", "fake-chat", CREDENTIALS, "Hi", user="u1"))

    assert _contents(chunks) == ["Hel", "lo, ", "world", "!"]
    assert stub.requests["StreamLLM"] == pb.StreamLLMRequest(
        provider="fake",
        model="fake-chat",
        credentials=CREDENTIALS,
        prompt_messages=[mr.user_message("Hi")],
        user="u1",
    )


def test_collect_assembles_a_real_stream(
    client: mr.ModelRuntimeClient, stub: ClientTestStubServicer
) -> None:
    stub.responses["StreamLLM"] = THREE_MESSAGES

    result = mr.collect(client.stream_llm("fake", "fake-chat", CREDENTIALS, "Hi"))

    assert result.message.content == "Hello, world!"
    assert result.finish_reason == "stop"
    assert result.usage.total_tokens == 7


def test_error_mid_stream_comes_after_the_chunks_already_sent(
    client: mr.ModelRuntimeClient, stub: ClientTestStubServicer
) -> None:
    stub.responses["StreamLLM"] = THREE_MESSAGES[:2]
    stub.fail_with = RATE_LIMITED
    received: list[llm_pb2.LLMResultChunk] = []

    with pytest.raises(mr.InvokeRateLimitError) as caught:
        for item in client.stream_llm("fake", "fake-chat", CREDENTIALS, "Hi"):
            received.append(item)

    assert _contents(received) == ["Hel", "lo, ", "world"]
    assert caught.value.retry_after == 2.0
    assert (caught.value.provider, caught.value.model) == ("fake", "fake-chat")
    assert isinstance(caught.value.__cause__, grpc.RpcError)


def test_error_before_any_chunk_is_raised_by_the_first_read(
    client: mr.ModelRuntimeClient, stub: ClientTestStubServicer
) -> None:
    stub.fail_with = rich_status(
        grpc.StatusCode.NOT_FOUND, "no such model", reason="MODEL_NOT_FOUND", model="nope"
    )
    stream = client.stream_llm("fake", "nope", CREDENTIALS, "Hi")

    with pytest.raises(mr.ModelNotFoundError):
        next(stream)


def test_breaking_out_of_the_loop_cancels_the_call(
    client: mr.ModelRuntimeClient, stub: ClientTestStubServicer
) -> None:
    stub.responses["StreamLLM"] = THREE_MESSAGES[:1]
    stub.hold = True

    for _ in client.stream_llm("fake", "fake-chat", CREDENTIALS, "Hi", timeout=None):
        break

    assert stub.held_call_ended.wait(NOTICE_SECONDS)


def test_closing_a_kept_stream_cancels_the_call(
    client: mr.ModelRuntimeClient, stub: ClientTestStubServicer
) -> None:
    stub.responses["StreamLLM"] = THREE_MESSAGES[:1]
    stub.hold = True
    stream = client.stream_llm("fake", "fake-chat", CREDENTIALS, "Hi", timeout=None)

    first = next(stream)
    stream.close()

    assert first.delta.message.content == "Hel"
    assert stub.held_call_ended.wait(NOTICE_SECONDS)
    with pytest.raises(StopIteration):
        next(stream)


def test_leaving_the_with_block_cancels_the_call(
    client: mr.ModelRuntimeClient, stub: ClientTestStubServicer
) -> None:
    stub.responses["StreamLLM"] = THREE_MESSAGES[:1]
    stub.hold = True

    with client.stream_llm("fake", "fake-chat", CREDENTIALS, "Hi", timeout=None) as stream:
        next(stream)

    assert stub.held_call_ended.wait(NOTICE_SECONDS)


def test_cancel_makes_the_reader_see_call_cancelled(
    client: mr.ModelRuntimeClient, stub: ClientTestStubServicer
) -> None:
    stub.responses["StreamLLM"] = THREE_MESSAGES[:1]
    stub.hold = True
    stream = client.stream_llm("fake", "fake-chat", CREDENTIALS, "Hi", timeout=None)
    next(stream)

    stream.cancel()

    with pytest.raises(mr.CallCancelledError):
        next(stream)
    assert stub.held_call_ended.wait(NOTICE_SECONDS)


def test_deadline_mid_stream_is_a_timeout(
    client: mr.ModelRuntimeClient, stub: ClientTestStubServicer
) -> None:
    stub.responses["StreamLLM"] = THREE_MESSAGES[:1]
    stub.hold = True
    received = []

    with pytest.raises(mr.InvokeTimeoutError):
        for item in client.stream_llm("fake", "fake-chat", CREDENTIALS, "Hi", timeout=0.3):
            received.append(item)

    assert len(received) == 1


TTS_MESSAGES = [
    pb.InvokeTTSResponse(mime_type="audio/mpeg"),
    pb.InvokeTTSResponse(audio=b"ID3"),
    pb.InvokeTTSResponse(audio=b"\x00\x01"),
]


def test_tts_knows_the_mime_type_before_reading_audio(
    client: mr.ModelRuntimeClient, stub: ClientTestStubServicer
) -> None:
    stub.responses["InvokeTTS"] = TTS_MESSAGES

    with client.invoke_tts("fake", "fake-tts", CREDENTIALS, "Hello", voice="alloy") as stream:
        assert stream.mime_type == "audio/mpeg"
        audio = list(stream)

    assert audio == [b"ID3", b"\x00\x01"]
    assert stub.requests["InvokeTTS"] == pb.InvokeTTSRequest(
        provider="fake",
        model="fake-tts",
        credentials=CREDENTIALS,
        content_text="Hello",
        voice="alloy",
    )


def test_tts_audio_in_the_first_message_is_not_lost(
    client: mr.ModelRuntimeClient, stub: ClientTestStubServicer
) -> None:
    stub.responses["InvokeTTS"] = [pb.InvokeTTSResponse(audio=b"RIFF", mime_type="audio/wav")]

    stream = client.invoke_tts("fake", "fake-tts", CREDENTIALS, "Hello")

    assert (stream.mime_type, b"".join(stream)) == ("audio/wav", b"RIFF")


def test_tts_error_before_audio_is_raised_by_invoke_tts(
    client: mr.ModelRuntimeClient, stub: ClientTestStubServicer
) -> None:
    stub.fail_with = rich_status(
        grpc.StatusCode.PERMISSION_DENIED, "key revoked", reason="INVOKE_AUTHORIZATION"
    )

    with pytest.raises(mr.InvokeAuthorizationError):
        client.invoke_tts("fake", "fake-tts", CREDENTIALS, "Hello")


def test_tts_error_mid_stream(client: mr.ModelRuntimeClient, stub: ClientTestStubServicer) -> None:
    stub.responses["InvokeTTS"] = TTS_MESSAGES[:2]
    stub.fail_with = rich_status(
        grpc.StatusCode.UNAVAILABLE, "upstream dropped", reason="INVOKE_CONNECTION_ERROR"
    )
    stream = client.invoke_tts("fake", "fake-tts", CREDENTIALS, "Hello")

    assert next(stream) == b"ID3"
    with pytest.raises(mr.InvokeConnectionError):
        next(stream)


async def test_async_chunks_are_flattened_in_order(
    aclient: mr.AsyncModelRuntimeClient, stub: ClientTestStubServicer
) -> None:
    stub.responses["StreamLLM"] = THREE_MESSAGES

    chunks = [c async for c in aclient.stream_llm("fake", "fake-chat", CREDENTIALS, "Hi")]

    assert _contents(chunks) == ["Hel", "lo, ", "world", "!"]


async def test_async_acollect(
    aclient: mr.AsyncModelRuntimeClient, stub: ClientTestStubServicer
) -> None:
    stub.responses["StreamLLM"] = THREE_MESSAGES

    result = await mr.acollect(aclient.stream_llm("fake", "fake-chat", CREDENTIALS, "Hi"))

    assert result.message.content == "Hello, world!"


async def test_async_error_mid_stream_comes_after_the_chunks_already_sent(
    aclient: mr.AsyncModelRuntimeClient, stub: ClientTestStubServicer
) -> None:
    stub.responses["StreamLLM"] = THREE_MESSAGES[:2]
    stub.fail_with = RATE_LIMITED
    received: list[llm_pb2.LLMResultChunk] = []

    with pytest.raises(mr.InvokeRateLimitError) as caught:
        async for item in aclient.stream_llm("fake", "fake-chat", CREDENTIALS, "Hi"):
            received.append(item)

    assert _contents(received) == ["Hel", "lo, ", "world"]
    assert caught.value.retry_after == 2.0
    assert isinstance(caught.value.__cause__, grpc.aio.AioRpcError)


async def _server_noticed(stub: ClientTestStubServicer) -> bool:
    # Waits in a thread so the event loop keeps running the client's cancellation.
    return await asyncio.to_thread(stub.held_call_ended.wait, NOTICE_SECONDS)


async def test_async_breaking_out_of_the_loop_cancels_the_call(
    aclient: mr.AsyncModelRuntimeClient, stub: ClientTestStubServicer
) -> None:
    stub.responses["StreamLLM"] = THREE_MESSAGES[:1]
    stub.hold = True

    async for _ in aclient.stream_llm("fake", "fake-chat", CREDENTIALS, "Hi", timeout=None):
        break

    assert await _server_noticed(stub)


async def test_async_cancelling_the_consuming_task_cancels_the_call(
    aclient: mr.AsyncModelRuntimeClient, stub: ClientTestStubServicer
) -> None:
    stub.responses["StreamLLM"] = THREE_MESSAGES[:1]
    stub.hold = True
    first_chunk = asyncio.Event()

    async def consume() -> None:
        async for _ in aclient.stream_llm("fake", "fake-chat", CREDENTIALS, "Hi", timeout=None):
            first_chunk.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(first_chunk.wait(), NOTICE_SECONDS)
    task.cancel()

    with pytest.raises(asyncio.CancelledError):
        await task
    assert await _server_noticed(stub)


async def test_async_with_block_and_aclose_cancel_the_call(
    aclient: mr.AsyncModelRuntimeClient, stub: ClientTestStubServicer
) -> None:
    stub.responses["StreamLLM"] = THREE_MESSAGES[:1]
    stub.hold = True

    async with aclient.stream_llm("fake", "fake-chat", CREDENTIALS, "Hi", timeout=None) as stream:
        await anext(stream)

    assert await _server_noticed(stub)
    with pytest.raises(StopAsyncIteration):
        await anext(stream)


async def test_async_cancel_makes_the_reader_see_call_cancelled(
    aclient: mr.AsyncModelRuntimeClient, stub: ClientTestStubServicer
) -> None:
    stub.responses["StreamLLM"] = THREE_MESSAGES[:1]
    stub.hold = True
    stream = aclient.stream_llm("fake", "fake-chat", CREDENTIALS, "Hi", timeout=None)
    await anext(stream)

    stream.cancel()

    with pytest.raises(mr.CallCancelledError):
        await anext(stream)
    assert await _server_noticed(stub)


async def test_async_tts(aclient: mr.AsyncModelRuntimeClient, stub: ClientTestStubServicer) -> None:
    stub.responses["InvokeTTS"] = TTS_MESSAGES

    stream = await aclient.invoke_tts("fake", "fake-tts", CREDENTIALS, "Hello")

    assert stream.mime_type == "audio/mpeg"
    assert [audio async for audio in stream] == [b"ID3", b"\x00\x01"]


async def test_async_tts_error_before_audio_is_raised_by_invoke_tts(
    aclient: mr.AsyncModelRuntimeClient, stub: ClientTestStubServicer
) -> None:
    stub.fail_with = rich_status(
        grpc.StatusCode.PERMISSION_DENIED, "key revoked", reason="INVOKE_AUTHORIZATION"
    )

    with pytest.raises(mr.InvokeAuthorizationError):
        await aclient.invoke_tts("fake", "fake-tts", CREDENTIALS, "Hello")
