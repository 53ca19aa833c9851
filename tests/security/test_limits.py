"""Request limits (INVALID_ARGUMENT, LIMIT_EXCEEDED, nothing sent to the provider) and the caps
on concurrent calls (RESOURCE_EXHAUSTED, OVERLOADED, at once)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import grpc
import pytest
from conftest import ServerThread

from modelruntime import client as mr

from . import recorded
from .conftest import CALL_TIMEOUT, serving

CREDS = {"api_key": "rec-test-key"}
FAKE_CREDS = {"api_key": "fake-test-key"}
MAX_MESSAGE_BYTES = 64 * 1024
LIMITS = {
    "max_prompt_messages": 3,
    "max_audio_bytes": 1024,
    "max_embedding_texts": 2,
}


@pytest.fixture(scope="module")
def server() -> Iterator[ServerThread]:
    with serving(limits=LIMITS, max_receive_message_bytes=MAX_MESSAGE_BYTES) as thread:
        yield thread


@pytest.fixture(scope="module")
def client(server: ServerThread) -> Iterator[mr.ModelRuntimeClient]:
    with mr.ModelRuntimeClient(server.address, default_timeout=CALL_TIMEOUT) as sync_client:
        yield sync_client


def assert_limit(exc: BaseException, field: str, limit: str, value: int) -> None:
    assert type(exc) is mr.LimitExceededError
    assert isinstance(exc, mr.InvalidArgumentError)
    assert (exc.code, exc.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "LIMIT_EXCEEDED")
    assert [v.field for v in exc.field_violations] == [field]
    assert f"over this server's {limit} of {value}" in exc.field_violations[0].description
    assert (exc.limit, exc.limit_value) == (limit, value)
    assert exc.metadata["limit"] == limit
    assert not exc.retryable
    # Refused before any provider code ran.
    assert recorded.calls() == []


def messages(count: int) -> list[mr.PromptMessageInput]:
    return [{"role": "user", "content": f"m{i}"} for i in range(count)]


def test_prompt_messages_up_to_the_limit_pass(client: mr.ModelRuntimeClient) -> None:
    answer = client.invoke_llm("recorder", "recorder-chat", CREDS, messages(3))
    assert answer.message.content == "3 messages"


@pytest.mark.parametrize("call", ["invoke", "stream", "count"])
def test_too_many_prompt_messages(client: mr.ModelRuntimeClient, call: str) -> None:
    with pytest.raises(mr.ModelRuntimeError) as caught:
        if call == "invoke":
            client.invoke_llm("recorder", "recorder-chat", CREDS, messages(4))
        elif call == "stream":
            list(client.stream_llm("recorder", "recorder-chat", CREDS, messages(4)))
        else:
            client.get_llm_num_tokens("recorder", "recorder-chat", CREDS, messages(4))
    assert_limit(caught.value, "prompt_messages", "max_prompt_messages", 3)
    assert (caught.value.provider, caught.value.model) == ("recorder", "recorder-chat")


def test_too_much_audio(client: mr.ModelRuntimeClient) -> None:
    assert client.invoke_speech2text("recorder", "recorder-s2t", CREDS, b"\0" * 1024, "a.wav")
    recorded.clear()
    with pytest.raises(mr.ModelRuntimeError) as caught:
        client.invoke_speech2text("recorder", "recorder-s2t", CREDS, b"\0" * 1025, "a.wav")
    assert_limit(caught.value, "file", "max_audio_bytes", 1024)


@pytest.mark.parametrize("call", ["invoke", "count"])
def test_too_many_texts_to_embed(client: mr.ModelRuntimeClient, call: str) -> None:
    texts = ["a", "b", "c"]
    with pytest.raises(mr.ModelRuntimeError) as caught:
        if call == "invoke":
            client.invoke_text_embedding("recorder", "recorder-embedding", CREDS, texts)
        else:
            client.get_text_embedding_num_tokens("recorder", "recorder-embedding", CREDS, texts)
    assert_limit(caught.value, "texts", "max_embedding_texts", 2)


def test_a_message_over_the_size_limit_is_refused_naming_the_limit(
    client: mr.ModelRuntimeClient,
) -> None:
    audio = b"\0" * (MAX_MESSAGE_BYTES + 1)
    with pytest.raises(mr.ModelRuntimeError) as caught:
        client.invoke_speech2text("recorder", "recorder-s2t", CREDS, audio, "a.wav")
    assert_limit(caught.value, "message", "max_receive_message_bytes", MAX_MESSAGE_BYTES)


def test_a_message_far_over_the_limit_is_cut_by_grpc_itself(client: mr.ModelRuntimeClient) -> None:
    # Past twice the limit, gRPC refuses the message before it is read.
    audio = b"\0" * (2 * MAX_MESSAGE_BYTES + 1)
    with pytest.raises(mr.ModelRuntimeError) as caught:
        client.invoke_speech2text("recorder", "recorder-s2t", CREDS, audio, "a.wav")
    assert caught.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert caught.value.reason == ""
    assert recorded.calls() == []


def test_default_limits_let_ordinary_requests_through(plain_client: mr.ModelRuntimeClient) -> None:
    answer = plain_client.invoke_llm("recorder", "recorder-chat", CREDS, messages(50))
    assert answer.message.content == "50 messages"
    audio = b"\0" * (2 * 1024 * 1024)
    assert plain_client.invoke_speech2text("recorder", "recorder-s2t", CREDS, audio, "a.wav")


# ---- load shedding ---------------------------------------------------------------------------

SLOW: dict[str, mr.ParameterInput] = {"reply": " ".join(["w"] * 200), "chunk_delay_ms": 50}


def open_stream(client: mr.ModelRuntimeClient) -> mr.Stream[object]:
    """A fake stream that runs for ten seconds unless cancelled, with its first chunk read."""
    stream = client.stream_llm("fake", "fake-chat", FAKE_CREDS, "hi", model_parameters=SLOW)
    next(stream)
    return stream  # type: ignore[return-value]


def assert_overloaded(exc: BaseException, retry_after: float) -> None:
    assert type(exc) is mr.OverloadedError
    assert (exc.code, exc.reason) == (grpc.StatusCode.RESOURCE_EXHAUSTED, "OVERLOADED")
    assert exc.retry_after == retry_after
    assert exc.retryable


def test_calls_over_the_total_cap_fail_fast() -> None:
    limits = {"max_concurrent_calls": 2, "overloaded_retry_after_seconds": 2.5}
    with (
        serving(limits=limits) as server,
        mr.ModelRuntimeClient(server.address, default_timeout=CALL_TIMEOUT) as client,
    ):
        streams = [open_stream(client), open_stream(client)]
        started = time.monotonic()
        with pytest.raises(mr.ModelRuntimeError) as caught:
            client.invoke_llm("recorder", "recorder-chat", CREDS, "hi")
        assert time.monotonic() - started < 2.0  # no queueing (a generous bound)
        assert_overloaded(caught.value, 2.5)
        assert recorded.calls() == []
        # A stream is counted until it ends; then the slot is free again.
        for stream in streams:
            stream.cancel()
        deadline = time.monotonic() + 5
        while True:
            try:
                client.invoke_llm("recorder", "recorder-chat", CREDS, "hi")
                break
            except mr.OverloadedError:
                assert time.monotonic() < deadline, "the cancelled streams' slots were not freed"
                time.sleep(0.02)


def test_calls_over_a_providers_cap_fail_fast_and_others_go_on() -> None:
    limits = {"max_concurrent_calls_per_provider": 5, "provider_concurrency": {"fake": 1}}
    with (
        serving(limits=limits) as server,
        mr.ModelRuntimeClient(server.address, default_timeout=CALL_TIMEOUT) as client,
    ):
        stream = open_stream(client)
        with pytest.raises(mr.ModelRuntimeError) as caught:
            client.invoke_llm("fake", "fake-chat", FAKE_CREDS, "hi")
        assert_overloaded(caught.value, 1.0)
        assert caught.value.provider == "fake"
        # Another provider has its own count.
        assert client.invoke_llm("recorder", "recorder-chat", CREDS, "hi")
        stream.close()


def test_failed_calls_give_their_slot_back() -> None:
    with (
        serving(limits={"max_concurrent_calls": 1}) as server,
        mr.ModelRuntimeClient(server.address, default_timeout=CALL_TIMEOUT) as client,
    ):
        for kind in ["rate_limit", "authorization", "quota"]:
            with pytest.raises(mr.InvokeError):
                client.invoke_llm(
                    "fake", "fake-chat", FAKE_CREDS, "hi", model_parameters={"fail_with": kind}
                )
            with pytest.raises(mr.InvokeError):
                list(
                    client.stream_llm(
                        "fake",
                        "fake-chat",
                        FAKE_CREDS,
                        "hi",
                        model_parameters={"fail_with": kind, "fail_after_chunks": 1},
                    )
                )
        with pytest.raises(mr.LimitExceededError):
            client.invoke_text_embedding("recorder", "recorder-embedding", CREDS, ["x"] * 3000)
        assert client.invoke_llm("recorder", "recorder-chat", CREDS, "hi")
