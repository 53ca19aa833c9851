"""Every way the OpenAI upstream can fail, row by row, as a caller sees it through the gRPC
server: the client's error class, the gRPC code, the ErrorInfo reason and the RetryInfo delay.
Each row is tried on a streamed and on a whole-answer call. Then cancellation: a caller that
stops reading closes the upstream request within 100 ms."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable
from typing import Any

import grpc
import pytest
from aiohttp import web

from modelruntime import client as mr

from ..fakes.openai_wire import ChatStream, error_reply, reply
from ..upstream import FakeUpstream, Handler, Recorded, text_response
from ._support import CHAT, KEY, PROVIDER, assert_error, assert_quota_exceeded, creds

MODEL = "gpt-4o-mini"
CALL_KINDS = ["stream", "whole"]

Call = Callable[[dict[str, str]], Any]


@pytest.fixture(params=CALL_KINDS)
def call(request: pytest.FixtureRequest, client: mr.ModelRuntimeClient) -> Call:
    """A chat call of one kind: the whole stream read, or one unary call."""

    def streamed(credentials: dict[str, str], **options: Any) -> Any:
        return list(client.stream_llm(PROVIDER, MODEL, credentials, "hi", **options))

    def whole(credentials: dict[str, str], **options: Any) -> Any:
        return client.invoke_llm(PROVIDER, MODEL, credentials, "hi", **options)

    return streamed if request.param == "stream" else whole


def failing(call: Call, credentials: dict[str, str], **options: Any) -> mr.ModelRuntimeError:
    with pytest.raises(mr.ModelRuntimeError) as caught:
        call(credentials, **options)
    return caught.value


# ---- HTTP error statuses -------------------------------------------------------------------

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

STATUS_ROWS: list[tuple[str, Handler, tuple[Any, ...], float | None, str]] = [
    (
        "400",
        error_reply(
            400,
            "Invalid value for 'temperature'.",
            param="temperature",
            code="invalid_value",
        ),
        BAD_REQUEST,
        None,
        "Invalid value for 'temperature'",
    ),
    (
        "404",
        error_reply(
            404,
            "The model `gpt-4o-mini` does not exist or you do not have access to it.",
            code="model_not_found",
        ),
        BAD_REQUEST,
        None,
        "does not exist",
    ),
    (
        "413",
        error_reply(413, "Request Entity Too Large", shape="text"),
        BAD_REQUEST,
        None,
        "Too Large",
    ),
    (
        "422",
        error_reply(422, "Field required", shape="detail_list", param="messages"),
        BAD_REQUEST,
        None,
        "body.messages: Field required",
    ),
    (
        "401",
        error_reply(
            401, "Incorrect API key provided: sk-test-*******-key.", code="invalid_api_key"
        ),
        AUTHORIZATION,
        None,
        "Incorrect API key provided",
    ),
    (
        "403",
        error_reply(
            403,
            "Country, region, or territory not supported",
            code="unsupported_country_region_territory",
        ),
        AUTHORIZATION,
        None,
        "not supported",
    ),
    (
        "429 retry-after-ms",
        error_reply(
            429,
            "Rate limit reached for gpt-4o-mini on requests per min (RPM): Limit 3.",
            type="requests",
            code="rate_limit_exceeded",
            headers={"retry-after-ms": "1500", "retry-after": "2"},
        ),
        RATE_LIMIT,
        1.5,
        "Rate limit reached",
    ),
    (
        "429 retry-after",
        error_reply(
            429,
            "Rate limit reached for gpt-4o-mini on tokens per min (TPM).",
            type="tokens",
            code="rate_limit_exceeded",
            headers={"retry-after": "3"},
        ),
        RATE_LIMIT,
        3.0,
        "tokens per min",
    ),
    (
        "500",
        error_reply(
            500, "The server had an error while processing your request.", type="server_error"
        ),
        UNAVAILABLE,
        None,
        "The server had an error",
    ),
    (
        "502",
        error_reply(502, "<html><h1>502 Bad Gateway</h1></html>", shape="text"),
        UNAVAILABLE,
        None,
        "502 Bad Gateway",
    ),
    (
        "503",
        error_reply(
            503,
            "The engine is currently overloaded, please try again later.",
            type="server_error",
            headers={"retry-after": "2"},
        ),
        UNAVAILABLE,
        2.0,
        "overloaded",
    ),
]


@pytest.mark.parametrize(
    ("handler", "expected", "retry_after", "quoted"),
    [row[1:] for row in STATUS_ROWS],
    ids=[row[0] for row in STATUS_ROWS],
)
def test_an_error_status_reaches_the_caller_as_its_typed_error(
    upstream: FakeUpstream,
    call: Call,
    handler: Handler,
    expected: tuple[Any, ...],
    retry_after: float | None,
    quoted: str,
) -> None:
    upstream.route("POST", CHAT, handler)

    exc = failing(call, creds(upstream))

    assert_error(exc, *expected, retry_after=retry_after, model=MODEL)
    assert quoted in exc.message


def test_a_spent_quota_is_not_a_rate_limit_to_wait_out(upstream: FakeUpstream, call: Call) -> None:
    upstream.route(
        "POST",
        CHAT,
        error_reply(
            429,
            "You exceeded your current quota, please check your plan and billing details.",
            type="insufficient_quota",
            code="insufficient_quota",
            headers={"retry-after": "20"},
        ),
    )

    exc = failing(call, creds(upstream))

    assert_quota_exceeded(exc)
    assert "exceeded your current quota" in exc.message


def test_a_key_echoed_back_by_the_upstream_never_reaches_the_caller(
    upstream: FakeUpstream, call: Call
) -> None:
    upstream.route("POST", CHAT, error_reply(401, f"Incorrect API key provided: {KEY}."))

    exc = failing(call, creds(upstream))

    assert_error(exc, *AUTHORIZATION, model=MODEL)
    assert KEY not in exc.message
    assert "Incorrect API key provided: ***" in exc.message


# ---- transport failures --------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def test_a_refused_connection_is_a_connection_error(upstream: FakeUpstream, call: Call) -> None:
    credentials = creds(upstream)
    credentials["openai_api_base"] = f"http://127.0.0.1:{free_port()}"

    exc = failing(call, credentials)

    assert_error(exc, *CONNECTION, model=MODEL)
    assert "could not connect" in exc.message


def test_a_connection_reset_before_the_answer_is_a_connection_error(
    upstream: FakeUpstream, call: Call
) -> None:
    async def reset(request: web.Request, recorded: Recorded) -> web.StreamResponse:
        assert request.transport is not None
        request.transport.abort()
        return web.Response()

    upstream.route("POST", CHAT, reset)

    assert_error(failing(call, creds(upstream)), *CONNECTION, model=MODEL)


def test_a_failed_tls_handshake_is_a_connection_error(upstream: FakeUpstream, call: Call) -> None:
    credentials = creds(upstream)
    credentials["openai_api_base"] = f"https://127.0.0.1:{upstream.port}"

    exc = failing(call, credentials)

    assert_error(exc, *CONNECTION, model=MODEL)
    assert "TLS" in exc.message


def test_an_upstream_slower_than_the_deadline_is_a_timeout(
    upstream: FakeUpstream, call: Call
) -> None:
    async def slow(request: web.Request, recorded: Recorded) -> web.StreamResponse:
        await asyncio.sleep(3)
        return text_response(200, "too late")

    upstream.route("POST", CHAT, slow)

    exc = failing(call, creds(upstream), timeout=0.8)

    assert_error(
        exc,
        mr.InvokeTimeoutError,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        "INVOKE_TIMEOUT",
        model=MODEL,
    )
    # The upstream request was given up, not left running.
    assert upstream.last(CHAT).wait_disconnected(2.0) is not None


def test_a_stream_that_stalls_past_the_deadline_is_a_timeout_after_its_chunks(
    client: mr.ModelRuntimeClient, upstream: FakeUpstream
) -> None:
    upstream.route(
        "POST", CHAT, ChatStream().role().content("Hel").pause(3).content("lo").handler()
    )
    received = []

    with pytest.raises(mr.ModelRuntimeError) as caught:
        for chunk in client.stream_llm(PROVIDER, MODEL, creds(upstream), "hi", timeout=0.8):
            received.append(chunk.delta.message.content)

    assert_error(
        caught.value,
        mr.InvokeTimeoutError,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        "INVOKE_TIMEOUT",
        model=MODEL,
    )
    assert received == ["", "Hel"]


def test_malformed_json_is_the_upstream_failing(
    client: mr.ModelRuntimeClient, upstream: FakeUpstream
) -> None:
    upstream.route("POST", CHAT, reply_text('{"id": "chatcmpl-1", "choices": ['))

    with pytest.raises(mr.ModelRuntimeError) as caught:
        client.invoke_llm(PROVIDER, MODEL, creds(upstream), "hi")

    assert_error(caught.value, *UNAVAILABLE, model=MODEL)
    assert "malformed JSON" in caught.value.message


def test_a_malformed_stream_event_is_the_upstream_failing_after_the_good_chunks(
    client: mr.ModelRuntimeClient, upstream: FakeUpstream
) -> None:
    upstream.route("POST", CHAT, ChatStream().role().content("ok").data('{"choices": [').handler())
    received = []

    with pytest.raises(mr.ModelRuntimeError) as caught:
        for chunk in client.stream_llm(PROVIDER, MODEL, creds(upstream), "hi"):
            received.append(chunk.delta.message.content)

    assert_error(caught.value, *UNAVAILABLE, model=MODEL)
    assert received == ["", "ok"]


@pytest.mark.parametrize("end", ["cut", "eof"])
def test_a_stream_that_ends_before_done_is_an_error_never_a_short_answer(
    client: mr.ModelRuntimeClient, upstream: FakeUpstream, end: str
) -> None:
    script = ChatStream().role().content("The answer is")
    if end == "cut":
        script.cut()
    upstream.route("POST", CHAT, script.handler())
    received = []

    with pytest.raises(mr.ModelRuntimeError) as caught:
        for chunk in client.stream_llm(PROVIDER, MODEL, creds(upstream), "hi"):
            received.append(chunk.delta.message.content)

    assert_error(caught.value, *CONNECTION, model=MODEL)
    assert received == ["", "The answer is"]
    if end == "eof":
        assert "[DONE]" in caught.value.message


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (
            {"message": "The server had an error processing your request.", "type": "server_error"},
            UNAVAILABLE,
        ),
        (
            {"message": "Rate limit reached", "type": "tokens", "code": "rate_limit_exceeded"},
            RATE_LIMIT,
        ),
        ("upstream worker crashed", UNAVAILABLE),
    ],
    ids=["server_error", "rate_limit", "string"],
)
def test_an_error_event_mid_stream_ends_the_stream_with_its_typed_error(
    client: mr.ModelRuntimeClient, upstream: FakeUpstream, error: Any, expected: tuple[Any, ...]
) -> None:
    upstream.route("POST", CHAT, ChatStream().role().content("partial").error(error).handler())
    received = []

    with pytest.raises(mr.ModelRuntimeError) as caught:
        for chunk in client.stream_llm(PROVIDER, MODEL, creds(upstream), "hi"):
            received.append(chunk.delta.message.content)

    assert_error(caught.value, *expected, model=MODEL)
    assert received == ["", "partial"]


def test_an_error_body_with_status_200_is_the_upstream_failing(
    client: mr.ModelRuntimeClient, upstream: FakeUpstream
) -> None:
    upstream.route(
        "POST", CHAT, reply({"error": {"message": "Internal error", "type": "server_error"}})
    )

    with pytest.raises(mr.ModelRuntimeError) as caught:
        client.invoke_llm(PROVIDER, MODEL, creds(upstream), "hi")

    assert_error(caught.value, *UNAVAILABLE, model=MODEL)


def reply_text(body: str) -> Handler:
    async def answer(request: web.Request, recorded: Recorded) -> web.StreamResponse:
        return text_response(200, body, content_type="application/json")

    return answer


# ---- cancellation --------------------------------------------------------------------------

LONG_STREAM = ChatStream().role()
for _ in range(500):
    LONG_STREAM.content("tick ").pause(0.01)
CANCEL_BOUND = 0.1


def test_cancelling_a_stream_closes_the_upstream_request_within_100_ms(
    client: mr.ModelRuntimeClient, upstream: FakeUpstream
) -> None:
    upstream.route("POST", CHAT, LONG_STREAM.handler())
    stream = client.stream_llm(PROVIDER, MODEL, creds(upstream), "count forever")
    for _ in range(3):
        next(stream)

    cancelled_at = time.monotonic()
    stream.cancel()
    closed_at = upstream.last(CHAT).wait_disconnected(2.0)

    assert closed_at is not None, "the fake upstream never saw its request closed"
    assert closed_at - cancelled_at <= CANCEL_BOUND


async def test_leaving_an_async_stream_early_closes_the_upstream_request_within_100_ms(
    async_client: mr.AsyncModelRuntimeClient, upstream: FakeUpstream
) -> None:
    upstream.route("POST", CHAT, LONG_STREAM.handler())
    stream = async_client.stream_llm(PROVIDER, MODEL, creds(upstream), "count forever")
    received = 0
    async for _ in stream:
        received += 1
        if received == 3:
            break
    left_at = time.monotonic()
    await stream.aclose()

    closed_at = await asyncio.to_thread(upstream.last(CHAT).wait_disconnected, 2.0)

    assert closed_at is not None, "the fake upstream never saw its request closed"
    assert closed_at - left_at <= CANCEL_BOUND
