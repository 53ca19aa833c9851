"""The shared upstream HTTP layer (providers.sdk.http) against a real loopback server: pooling,
error statuses, transport failures, SSE framing quirks and closing a stream early."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator

import pytest
from aiohttp import web

from providers.sdk import http
from providers.sdk.deadline import current_deadline
from providers.sdk.errors import (
    InvokeAuthorizationError,
    InvokeBadRequestError,
    InvokeConnectionError,
    InvokeQuotaExceededError,
    InvokeRateLimitError,
    InvokeServerUnavailableError,
    InvokeTimeoutError,
)

from .upstream import CUT, FakeUpstream, Pause, Recorded, json_response, sse_data, write_stream


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeUpstream]:
    with FakeUpstream() as upstream:
        yield upstream


@pytest.fixture(autouse=True)
def _clean(fake: FakeUpstream) -> None:
    fake.reset()


async def quote_error(response: object) -> None:
    body, text = await http.read_error_body(response)  # type: ignore[arg-type]
    message = body.get("message", text) if isinstance(body, dict) else text
    raise http.error_for_status(response.status_code, message, response.headers)  # type: ignore[attr-defined]


def test_retry_after_reads_milliseconds_first_then_seconds_then_dates() -> None:
    assert http.retry_after({"retry-after-ms": "1500", "retry-after": "9"}) == 1.5
    assert http.retry_after({"retry-after": "2.5"}) == 2.5
    in_ten = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 10))
    assert 8 < (http.retry_after({"retry-after": in_ten}) or 0) <= 10
    assert http.retry_after({"retry-after": "soon"}) is None
    assert http.retry_after({"retry-after": "0"}) is None
    assert http.retry_after({}) is None


@pytest.mark.parametrize(
    ("status", "error", "retry"),
    [
        (400, InvokeBadRequestError, None),
        (404, InvokeBadRequestError, None),
        (413, InvokeBadRequestError, None),
        (422, InvokeBadRequestError, None),
        (401, InvokeAuthorizationError, None),
        (403, InvokeAuthorizationError, None),
        (402, InvokeQuotaExceededError, None),
        (429, InvokeRateLimitError, 3.0),
        (500, InvokeServerUnavailableError, 3.0),
        (502, InvokeServerUnavailableError, 3.0),
        (503, InvokeServerUnavailableError, 3.0),
        (529, InvokeServerUnavailableError, 3.0),
    ],
)
async def test_an_error_status_becomes_its_invoke_error(
    fake: FakeUpstream, status: int, error: type[Exception], retry: float | None
) -> None:
    async def answer(request: web.Request, recorded: Recorded) -> web.StreamResponse:
        return json_response(status, {"message": "scripted failure"}, {"retry-after": "3"})

    fake.route("POST", "/v1/thing", answer)
    with pytest.raises(error) as caught:
        await http.request_json(
            http.client_for(fake.url), "POST", "/v1/thing", json={}, check=quote_error
        )
    assert f"HTTP {status}: scripted failure" in str(caught.value)
    assert getattr(caught.value, "retry_after", None) == retry


async def test_a_refused_connection_is_a_connection_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(InvokeConnectionError, match="could not connect"):
        await http.request(
            http.client_for(f"http://127.0.0.1:{port}"), "GET", "/", check=quote_error
        )


async def test_tls_to_a_plain_http_server_is_a_tls_connection_error(fake: FakeUpstream) -> None:
    with pytest.raises(InvokeConnectionError, match="TLS"):
        await http.request(
            http.client_for(f"https://127.0.0.1:{fake.port}"), "GET", "/", check=quote_error
        )


async def test_malformed_json_is_an_upstream_fault(fake: FakeUpstream) -> None:
    async def answer(request: web.Request, recorded: Recorded) -> web.StreamResponse:
        return web.Response(text='{"choices": [', content_type="application/json")

    fake.route("GET", "/broken", answer)
    with pytest.raises(InvokeServerUnavailableError, match="malformed JSON"):
        await http.request_json(http.client_for(fake.url), "GET", "/broken", check=quote_error)


async def test_the_callers_deadline_bounds_the_upstream_read(fake: FakeUpstream) -> None:
    async def answer(request: web.Request, recorded: Recorded) -> web.StreamResponse:
        await asyncio.sleep(2)
        return json_response(200, {})

    fake.route("GET", "/slow", answer)
    token = current_deadline.set(time.monotonic() + 0.2)
    try:
        started = time.monotonic()
        with pytest.raises(InvokeTimeoutError):
            await http.request_json(http.client_for(fake.url), "GET", "/slow", check=quote_error)
        assert time.monotonic() - started < 1.5
    finally:
        current_deadline.reset(token)


async def test_sse_accepts_crlf_lines_and_skips_comment_pings(fake: FakeUpstream) -> None:
    async def answer(request: web.Request, recorded: Recorded) -> web.StreamResponse:
        return await write_stream(
            request,
            [
                ": ping - 2026-11-22 00:00:00\r\n\r\n",
                sse_data({"n": 1}, "\r\n"),
                'data:{"n": 2}\r\r',
                sse_data("[DONE]"),
            ],
        )

    fake.route("POST", "/stream", answer)
    client = http.client_for(fake.url)
    async with http.open_stream(client, "POST", "/stream", check=quote_error) as response:
        data = [event.data async for event in http.sse_events(response)]
    assert data == ['{"n": 1}', '{"n": 2}', "[DONE]"]


async def test_a_cut_stream_is_a_connection_error(fake: FakeUpstream) -> None:
    async def answer(request: web.Request, recorded: Recorded) -> web.StreamResponse:
        return await write_stream(request, [sse_data({"n": 1}), Pause(0.01), CUT])

    fake.route("POST", "/cut", answer)
    client = http.client_for(fake.url)
    seen = []
    with pytest.raises(InvokeConnectionError, match="broke"):
        async with http.open_stream(client, "POST", "/cut", check=quote_error) as response:
            async for event in http.sse_events(response):
                seen.append(event.data)
    assert seen == ['{"n": 1}']


async def test_leaving_a_stream_early_closes_the_upstream_connection(fake: FakeUpstream) -> None:
    async def answer(request: web.Request, recorded: Recorded) -> web.StreamResponse:
        pieces: list[str | Pause] = []
        for n in range(1000):
            pieces += [sse_data({"n": n}), Pause(0.01)]
        return await write_stream(request, pieces)

    fake.route("POST", "/long", answer)
    client = http.client_for(fake.url)
    async with http.open_stream(client, "POST", "/long", check=quote_error) as response:
        async for _event in http.sse_events(response):
            break
    left_at = time.monotonic()
    closed_at = await asyncio.to_thread(fake.last("/long").wait_disconnected)
    assert closed_at is not None, "the fake never saw the connection close"
    assert closed_at - left_at < 0.1


async def test_one_pooled_client_per_base_url() -> None:
    first = http.client_for("http://127.0.0.1:1/v1/")
    assert http.client_for("http://127.0.0.1:1/v1") is first
    assert http.client_for("http://127.0.0.1:2/v1") is not first
    await http.close_clients()
    assert first.is_closed


async def test_a_stream_read_to_its_end_marker_returns_its_connection_to_the_pool(
    fake: FakeUpstream,
) -> None:
    async def answer(request: web.Request, recorded: Recorded) -> web.StreamResponse:
        return await write_stream(request, [sse_data({"n": 1}), sse_data("[DONE]")])

    fake.route("POST", "/done", answer)
    client = http.client_for(fake.url)
    for _ in range(3):
        async with http.open_stream(client, "POST", "/done", check=quote_error) as response:
            async for event in http.sse_events(response):
                if event.data == "[DONE]":
                    break
    peers = {recorded.peer for recorded in fake.requests}
    assert len(fake.requests) == 3
    assert len(peers) == 1, f"each stream opened its own connection: {peers}"


async def test_a_cookie_an_upstream_sets_is_never_sent_back(fake: FakeUpstream) -> None:
    # One pooled client serves every caller: an upstream's cookie must not ride along with
    # the next caller's request.
    async def set_cookie(request: web.Request, recorded: Recorded) -> web.Response:
        return json_response(200, {"ok": True}, headers={"Set-Cookie": "session=abc; Path=/"})

    fake.route("POST", "/cookie", set_cookie)
    client = http.client_for(fake.url)
    for _ in range(2):
        await http.request_json(client, "POST", "/cookie", check=quote_error, json={})
    assert len(fake.requests) == 2
    assert all("cookie" not in {k.lower() for k in r.headers} for r in fake.requests)
