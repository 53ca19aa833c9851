"""Every way an OpenAI-compatible server fails, row by row, as the client sees it: the gRPC
code, the ErrorInfo reason and the RetryInfo delay; and a cancelled stream closing its upstream
request at once."""

from __future__ import annotations

import asyncio
import socket
import time
from typing import Any

import grpc
import pytest
from aiohttp import web

from modelruntime import client as mr

from ..fakes.openai_wire import ChatStream, error_reply
from ..upstream import FakeUpstream, Recorded, json_response, text_response
from .support import API_KEY, MODEL, PROVIDER, assert_error, creds

CHAT = "/v1/chat/completions"

BAD_REQUEST = (mr.InvokeBadRequestError, grpc.StatusCode.INVALID_ARGUMENT, "INVOKE_BAD_REQUEST")
AUTHORIZATION = (
    mr.InvokeAuthorizationError,
    grpc.StatusCode.PERMISSION_DENIED,
    "INVOKE_AUTHORIZATION",
)
RATE_LIMIT = (mr.InvokeRateLimitError, grpc.StatusCode.RESOURCE_EXHAUSTED, "INVOKE_RATE_LIMIT")
UNAVAILABLE = (
    mr.InvokeServerUnavailableError,
    grpc.StatusCode.UNAVAILABLE,
    "INVOKE_SERVER_UNAVAILABLE",
)
CONNECTION = (mr.InvokeConnectionError, grpc.StatusCode.UNAVAILABLE, "INVOKE_CONNECTION_ERROR")
TIMEOUT = (mr.InvokeTimeoutError, grpc.StatusCode.DEADLINE_EXCEEDED, "INVOKE_TIMEOUT")


def call(client: mr.ModelRuntimeClient, credentials: dict[str, str], streamed: bool) -> Any:
    if streamed:
        return list(client.stream_llm(PROVIDER, MODEL, credentials, "hi"))
    return client.invoke_llm(PROVIDER, MODEL, credentials, "hi")


@pytest.fixture(params=[True, False], ids=["stream", "unary"])
def streamed(request: pytest.FixtureRequest) -> bool:
    return bool(request.param)


# ---- error statuses, in both body shapes -----------------------------------------------------


@pytest.mark.parametrize("shape", ["openai", "flat"])
@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (400, BAD_REQUEST),
        (404, BAD_REQUEST),
        (422, BAD_REQUEST),
        (401, AUTHORIZATION),
        (403, AUTHORIZATION),
        (500, UNAVAILABLE),
        (502, UNAVAILABLE),
        (503, UNAVAILABLE),
    ],
)
def test_an_error_status_becomes_its_reason_with_the_servers_message(
    client: mr.ModelRuntimeClient,
    upstream: FakeUpstream,
    streamed: bool,
    shape: str,
    status: int,
    expected: tuple[Any, ...],
) -> None:
    upstream.route("POST", CHAT, error_reply(status, f"scripted {status} failure", shape=shape))

    with pytest.raises(mr.ModelRuntimeError) as caught:
        call(client, creds(upstream), streamed)

    assert_error(caught.value, *expected)
    assert f"HTTP {status}" in caught.value.message
    assert f"scripted {status} failure" in caught.value.message


def test_a_413_with_an_html_body_is_a_bad_request(
    client: mr.ModelRuntimeClient, upstream: FakeUpstream, streamed: bool
) -> None:
    async def answer(request: web.Request, recorded: Recorded) -> web.StreamResponse:
        return text_response(413, "<html><body>Request Entity Too Large</body></html>", "text/html")

    upstream.route("POST", CHAT, answer)

    with pytest.raises(mr.ModelRuntimeError) as caught:
        call(client, creds(upstream), streamed)

    assert_error(caught.value, *BAD_REQUEST)
    assert "Request Entity Too Large" in caught.value.message


@pytest.mark.parametrize(
    ("headers", "delay"),
    [
        ({"retry-after-ms": "1500"}, 1.5),
        ({"retry-after": "7"}, 7.0),
        ({"retry-after-ms": "250", "retry-after": "9"}, 0.25),
        ({}, None),
    ],
    ids=["retry-after-ms", "retry-after", "ms-first", "none"],
)
def test_a_429_is_a_rate_limit_with_the_servers_delay(
    client: mr.ModelRuntimeClient,
    upstream: FakeUpstream,
    streamed: bool,
    headers: dict[str, str],
    delay: float | None,
) -> None:
    upstream.route(
        "POST",
        CHAT,
        error_reply(429, "Rate limit reached", code="rate_limit_exceeded", headers=headers),
    )

    with pytest.raises(mr.ModelRuntimeError) as caught:
        call(client, creds(upstream), streamed)

    assert_error(caught.value, *RATE_LIMIT, retry_after=delay)


def test_a_503_carries_its_retry_after(
    client: mr.ModelRuntimeClient, upstream: FakeUpstream
) -> None:
    upstream.route("POST", CHAT, error_reply(503, "model is loading", headers={"retry-after": "4"}))

    with pytest.raises(mr.ModelRuntimeError) as caught:
        call(client, creds(upstream), True)

    assert_error(caught.value, *UNAVAILABLE, retry_after=4.0)


def test_a_spent_quota_is_not_worth_retrying(
    client: mr.ModelRuntimeClient, upstream: FakeUpstream, streamed: bool
) -> None:
    upstream.route(
        "POST",
        CHAT,
        error_reply(
            429,
            "You exceeded your current quota",
            type="insufficient_quota",
            code="insufficient_quota",
            headers={"retry-after": "20"},
        ),
    )

    with pytest.raises(mr.InvokeRateLimitError) as caught:
        call(client, creds(upstream), streamed)

    assert caught.value.reason in ("INVOKE_QUOTA_EXCEEDED", "INVOKE_RATE_LIMIT")
    assert caught.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert caught.value.retry_after is None


def test_a_server_echoing_the_key_never_shows_it(
    client: mr.ModelRuntimeClient, upstream: FakeUpstream, streamed: bool
) -> None:
    upstream.route(
        "POST",
        CHAT,
        error_reply(401, f"Incorrect API key provided: {API_KEY}", code="invalid_api_key"),
    )

    with pytest.raises(mr.ModelRuntimeError) as caught:
        call(client, creds(upstream), streamed)

    assert_error(caught.value, *AUTHORIZATION)
    assert "***" in caught.value.message


# ---- transport failures ------------------------------------------------------------------------


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_refused_connection(
    client: mr.ModelRuntimeClient, upstream: FakeUpstream, streamed: bool
) -> None:
    credentials = {**creds(upstream), "endpoint_url": f"http://127.0.0.1:{closed_port()}/v1"}

    with pytest.raises(mr.ModelRuntimeError) as caught:
        call(client, credentials, streamed)

    assert_error(caught.value, *CONNECTION)
    assert "could not connect" in caught.value.message


def test_a_connection_reset_before_the_answer(
    client: mr.ModelRuntimeClient, upstream: FakeUpstream, streamed: bool
) -> None:
    async def reset(request: web.Request, recorded: Recorded) -> web.StreamResponse:
        assert request.transport is not None
        request.transport.abort()
        return web.Response()

    upstream.route("POST", CHAT, reset)

    with pytest.raises(mr.ModelRuntimeError) as caught:
        call(client, creds(upstream), streamed)

    assert_error(caught.value, *CONNECTION)


def test_a_tls_failure(
    client: mr.ModelRuntimeClient, upstream: FakeUpstream, streamed: bool
) -> None:
    # The fake speaks plain HTTP: a TLS handshake with it fails.
    credentials = {**creds(upstream), "endpoint_url": f"https://127.0.0.1:{upstream.port}/v1"}

    with pytest.raises(mr.ModelRuntimeError) as caught:
        call(client, credentials, streamed)

    assert_error(caught.value, *CONNECTION)
    assert "TLS" in caught.value.message


def test_a_server_slower_than_the_callers_deadline(
    client: mr.ModelRuntimeClient, upstream: FakeUpstream, streamed: bool
) -> None:
    async def slow(request: web.Request, recorded: Recorded) -> web.StreamResponse:
        await asyncio.sleep(3)
        return json_response(200, {})

    upstream.route("POST", CHAT, slow)

    started = time.monotonic()
    with pytest.raises(mr.ModelRuntimeError) as caught:
        if streamed:
            list(client.stream_llm(PROVIDER, MODEL, creds(upstream), "hi", timeout=0.8))
        else:
            client.invoke_llm(PROVIDER, MODEL, creds(upstream), "hi", timeout=0.8)

    assert_error(caught.value, *TIMEOUT)
    assert time.monotonic() - started < 2.5
    # The upstream request was given up, not left running.
    assert upstream.last(CHAT).wait_disconnected(timeout=2.0) is not None


def test_malformed_json(
    client: mr.ModelRuntimeClient, upstream: FakeUpstream, streamed: bool
) -> None:
    async def broken(request: web.Request, recorded: Recorded) -> web.StreamResponse:
        return web.Response(text='{"choices": [', content_type="application/json")

    upstream.route("POST", CHAT, broken)

    with pytest.raises(mr.ModelRuntimeError) as caught:
        call(client, creds(upstream), streamed)

    assert_error(caught.value, *UNAVAILABLE)
    assert "malformed JSON" in caught.value.message


def test_a_malformed_stream_event(client: mr.ModelRuntimeClient, upstream: FakeUpstream) -> None:
    stream = ChatStream().role().content("fine").data('{"choices": [').done()
    upstream.route("POST", CHAT, stream.handler())

    seen: list[str] = []
    with pytest.raises(mr.ModelRuntimeError) as caught:
        for chunk in client.stream_llm(PROVIDER, MODEL, creds(upstream), "hi"):
            seen.append(chunk.delta.message.content)

    assert_error(caught.value, *UNAVAILABLE)
    assert seen == ["", "fine"]


# ---- failures after the first chunk --------------------------------------------------------------


def test_a_stream_cut_before_done_is_an_error_not_a_short_answer(
    client: mr.ModelRuntimeClient, upstream: FakeUpstream
) -> None:
    stream = ChatStream().role().content("The answer", " is").pause(0.01).cut()
    upstream.route("POST", CHAT, stream.handler())

    seen: list[str] = []
    with pytest.raises(mr.ModelRuntimeError) as caught:
        for chunk in client.stream_llm(PROVIDER, MODEL, creds(upstream), "hi"):
            seen.append(chunk.delta.message.content)

    assert_error(caught.value, *CONNECTION)
    assert seen == ["", "The answer", " is"]


def test_a_stream_ending_cleanly_without_done_is_cut_too(
    client: mr.ModelRuntimeClient, upstream: FakeUpstream
) -> None:
    stream = ChatStream().role().content("half").finish("stop")
    upstream.route("POST", CHAT, stream.handler())

    with pytest.raises(mr.ModelRuntimeError) as caught:
        list(client.stream_llm(PROVIDER, MODEL, creds(upstream), "hi"))

    assert_error(caught.value, *CONNECTION)
    assert "[DONE]" in caught.value.message


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (
            {"message": "Rate limit reached", "type": "requests", "code": "rate_limit_exceeded"},
            RATE_LIMIT,
        ),
        (
            {"message": "CUDA out of memory", "type": "InternalServerError", "code": 500},
            UNAVAILABLE,
        ),
        ({"message": "prompt too long", "type": "BadRequestError", "code": 400}, BAD_REQUEST),
        ({"message": "engine died", "type": "server_error", "code": None}, UNAVAILABLE),
    ],
    ids=["rate-limit", "flat-500", "flat-400", "unknown"],
)
def test_an_in_band_error_mid_stream(
    client: mr.ModelRuntimeClient,
    upstream: FakeUpstream,
    error: dict[str, Any],
    expected: tuple[Any, ...],
) -> None:
    stream = ChatStream().role().content("Partial").error(error)
    upstream.route("POST", CHAT, stream.handler())

    seen: list[str] = []
    with pytest.raises(mr.ModelRuntimeError) as caught:
        for chunk in client.stream_llm(PROVIDER, MODEL, creds(upstream), "hi"):
            seen.append(chunk.delta.message.content)

    assert_error(caught.value, *expected)
    assert error["message"] in caught.value.message
    assert seen == ["", "Partial"]


# ---- cancellation -----------------------------------------------------------------------------


def long_stream() -> ChatStream:
    stream = ChatStream().role()
    for n in range(500):
        stream.content(f"w{n} ").pause(0.01)
    return stream.finish("stop").done()


def test_cancelling_a_stream_closes_the_upstream_request_within_100_ms(
    client: mr.ModelRuntimeClient, upstream: FakeUpstream
) -> None:
    upstream.route("POST", CHAT, long_stream().handler())

    stream = client.stream_llm(PROVIDER, MODEL, creds(upstream), "talk")
    received = [next(stream).delta.message.content for _ in range(3)]
    cancelled_at = time.monotonic()
    stream.cancel()

    closed_at = upstream.last(CHAT).wait_disconnected(timeout=2.0)
    assert received == ["", "w0 ", "w1 "]
    assert closed_at is not None, "the upstream request was never closed"
    assert closed_at - cancelled_at < 0.1, f"closed {1000 * (closed_at - cancelled_at):.0f} ms late"


async def test_an_async_client_breaking_out_closes_the_upstream_request_within_100_ms(
    async_client: mr.AsyncModelRuntimeClient, upstream: FakeUpstream
) -> None:
    upstream.route("POST", CHAT, long_stream().handler())

    stream = async_client.stream_llm(PROVIDER, MODEL, creds(upstream), "talk")
    seen = 0
    async for _chunk in stream:
        seen += 1
        if seen == 3:
            break
    stream.cancel()
    cancelled_at = time.monotonic()

    recorded = upstream.last(CHAT)
    closed_at = await asyncio.to_thread(recorded.wait_disconnected, 2.0)
    assert closed_at is not None, "the upstream request was never closed"
    assert closed_at - cancelled_at < 0.1, f"closed {1000 * (closed_at - cancelled_at):.0f} ms late"


def test_keepalive_pauses_do_not_end_a_stream(
    client: mr.ModelRuntimeClient, upstream: FakeUpstream
) -> None:
    stream = ChatStream().role().ping().pause(0.2).ping().content("late").finish().usage(1, 1)
    upstream.route("POST", CHAT, stream.done().handler())

    chunks = list(client.stream_llm(PROVIDER, MODEL, creds(upstream), "hi"))

    assert [c.delta.message.content for c in chunks] == ["", "late", "", ""]
