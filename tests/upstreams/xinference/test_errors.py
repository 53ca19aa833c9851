"""Every way an Xinference call can fail, row by row, as the caller sees it: the gRPC code, the
ErrorInfo reason, the RetryInfo delay, and words that say what to fix (never an internal
address or a secret)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import grpc
import pytest
from aiohttp import web

from modelruntime import client as mr

from ..upstream import Recorded, json_response, text_response
from ._support import PROVIDER, assert_error, closed_port, text
from .fake_xinference import (
    CHAT,
    DESCRIPTIONS,
    EMBEDDING,
    GENERATE,
    INTERNAL_ADDRESS,
    FakeXinference,
    chat_stream,
    completion_stream,
    detail,
    finish,
    fresh_uid,
    internal_error,
)

UNAVAILABLE = grpc.StatusCode.UNAVAILABLE
BAD = (mr.InvokeBadRequestError, grpc.StatusCode.INVALID_ARGUMENT, "INVOKE_BAD_REQUEST")
AUTH = (mr.InvokeAuthorizationError, grpc.StatusCode.PERMISSION_DENIED, "INVOKE_AUTHORIZATION")
DOWN = (mr.InvokeServerUnavailableError, UNAVAILABLE, "INVOKE_SERVER_UNAVAILABLE")
CONNECTION = (mr.InvokeConnectionError, UNAVAILABLE, "INVOKE_CONNECTION_ERROR")
RATE = (mr.InvokeRateLimitError, grpc.StatusCode.RESOURCE_EXHAUSTED, "INVOKE_RATE_LIMIT")
TIMEOUT = (mr.InvokeTimeoutError, grpc.StatusCode.DEADLINE_EXCEEDED, "INVOKE_TIMEOUT")

Answer = Callable[[web.Request, Recorded], Any]


def answering(response: Callable[[], web.StreamResponse]) -> Answer:
    async def answer(request: web.Request, recorded: Recorded) -> web.StreamResponse:
        return response()

    return answer


def invoke_error(
    client: mr.ModelRuntimeClient, credentials: dict[str, str], **kwargs: Any
) -> mr.ModelRuntimeError:
    with pytest.raises(mr.ModelRuntimeError) as caught:
        client.invoke_llm(PROVIDER, "my-qwen", credentials, "Hi", **kwargs)
    return caught.value


def stream_error(
    client: mr.ModelRuntimeClient, credentials: dict[str, str], model: str = "my-qwen"
) -> tuple[list[Any], mr.ModelRuntimeError]:
    chunks: list[Any] = []
    with pytest.raises(mr.ModelRuntimeError) as caught:
        for chunk in client.stream_llm(PROVIDER, model, credentials, "Hi"):
            chunks.append(chunk)
    return chunks, caught.value


# ---- the transport ----------------------------------------------------------------------------


def test_a_refused_connection(client: mr.ModelRuntimeClient) -> None:
    credentials = {
        "server_url": f"http://127.0.0.1:{closed_port()}",
        "model_uid": CHAT,
        "max_retries": "0",
    }

    exc = invoke_error(client, credentials)

    assert_error(exc, *CONNECTION)
    assert "could not connect" in str(exc)


def test_a_connection_reset_before_the_answer(
    client: mr.ModelRuntimeClient, xinference: FakeXinference
) -> None:
    async def reset(request: web.Request, recorded: Recorded) -> web.StreamResponse:
        assert request.transport is not None
        request.transport.abort()
        return web.Response()

    xinference.script("/v1/chat/completions", reset)

    assert_error(invoke_error(client, xinference.credentials(CHAT)), *CONNECTION)


def test_a_failed_tls_handshake(client: mr.ModelRuntimeClient, xinference: FakeXinference) -> None:
    credentials = xinference.credentials(
        CHAT, server_url=xinference.url.replace("http://", "https://")
    )

    exc = invoke_error(client, credentials)

    assert_error(exc, *CONNECTION)
    assert "TLS" in str(exc)


def slow(seconds: float) -> Answer:
    async def answer(request: web.Request, recorded: Recorded) -> web.StreamResponse:
        await asyncio.sleep(seconds)
        return json_response(200, {})

    return answer


def test_the_callers_deadline_ends_a_slow_answer(
    client: mr.ModelRuntimeClient, xinference: FakeXinference
) -> None:
    credentials = xinference.credentials(CHAT)
    client.get_model_schema(PROVIDER, "llm", "my-qwen", credentials)  # the description, kept
    xinference.script("/v1/chat/completions", slow(3))

    with pytest.raises(mr.ModelRuntimeError) as caught:
        client.invoke_llm(PROVIDER, "my-qwen", credentials, "Hi", timeout=0.6)

    assert_error(caught.value, *TIMEOUT)


def test_the_invoke_timeout_credential_ends_a_silent_stream(
    client: mr.ModelRuntimeClient, xinference: FakeXinference
) -> None:
    script = chat_stream().role().content("one").pause(3).content("two")
    finish(script, "stop", 1, 2).done()
    xinference.script("/v1/chat/completions", script.handler())

    chunks, exc = stream_error(client, xinference.credentials(CHAT, invoke_timeout="0.4"))

    assert text(chunks) == "one"
    assert_error(exc, *TIMEOUT)


# ---- error statuses ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "answer", "expected", "retry_after", "words"),
    [
        pytest.param(
            400,
            lambda: detail(400, "Only ['qwen2.5-instruct', 'glm4-chat'] support tool calls"),
            BAD,
            None,
            "support tool calls",
            id="400-detail",
        ),
        pytest.param(
            404,
            lambda: detail(404, f"Model not found, uid: {CHAT}. Available: ['a', 'b']"),
            BAD,
            None,
            "not running on the Xinference server",
            id="404-terminated-model",
        ),
        pytest.param(
            413,
            lambda: text_response(413, "<html>Request Entity Too Large</html>", "text/html"),
            BAD,
            None,
            "HTTP 413",
            id="413-html",
        ),
        pytest.param(
            422,
            lambda: detail(
                422, [{"loc": ["body", "messages"], "msg": "Field required", "type": "missing"}]
            ),
            BAD,
            None,
            "body.messages: Field required",
            id="422-validation-list",
        ),
        pytest.param(
            500,
            lambda: internal_error("1 validation error for CreateChatCompletion temperature"),
            BAD,
            None,
            "1 validation error",
            id="500-text-validation",
        ),
        pytest.param(
            401,
            lambda: detail(401, "Could not validate credentials", {"WWW-Authenticate": "Bearer"}),
            AUTH,
            None,
            "requires an API key",
            id="401",
        ),
        pytest.param(
            403,
            lambda: detail(403, f"API key does not have access to model: {CHAT}"),
            AUTH,
            None,
            "does not have access",
            id="403-key-scope",
        ),
        pytest.param(
            403,
            lambda: text_response(403, "Access denied for IP: 172.16.0.9"),
            AUTH,
            None,
            "IP allow-list",
            id="403-text-ip",
        ),
        pytest.param(
            429,
            lambda: detail(429, "Too many failed attempts.", {"Retry-After": "7"}),
            RATE,
            7.0,
            "Too many failed attempts",
            id="429-retry-after",
        ),
        pytest.param(
            500,
            lambda: detail(500, "Rate limit reached for model"),
            RATE,
            None,
            "Rate limit reached",
            id="500-rate-limit-words",
        ),
        pytest.param(
            500,
            lambda: detail(500, f"CUDA out of memory on worker {INTERNAL_ADDRESS}"),
            DOWN,
            None,
            "CUDA out of memory on worker <address>",
            id="500-detail",
        ),
        pytest.param(
            502,
            lambda: text_response(502, "Bad Gateway"),
            DOWN,
            None,
            "HTTP 502",
            id="502",
        ),
        pytest.param(
            503,
            lambda: detail(503, "Model is loading", {"Retry-After": "30"}),
            DOWN,
            30.0,
            "may still be loading",
            id="503-loading",
        ),
    ],
)
def test_an_error_status(
    client: mr.ModelRuntimeClient,
    xinference: FakeXinference,
    status: int,
    answer: Callable[[], web.StreamResponse],
    expected: tuple[Any, ...],
    retry_after: float | None,
    words: str,
) -> None:
    xinference.script("/v1/chat/completions", answering(answer))

    exc = invoke_error(client, xinference.credentials(CHAT))

    assert_error(exc, *expected, retry_after=retry_after)
    assert words in str(exc)
    assert INTERNAL_ADDRESS not in str(exc)
    assert "Available" not in str(exc)  # other UIDs on the server are not listed


def test_a_wrong_key_is_refused_without_being_echoed(
    client: mr.ModelRuntimeClient, secured: FakeXinference
) -> None:
    wrong_key = "sk-wrong-xinference-key-0000"

    exc = invoke_error(client, secured.credentials(CHAT, api_key=wrong_key))

    assert_error(exc, *AUTH)
    assert "refused the API key" in str(exc)
    assert wrong_key not in str(exc)


def test_a_missing_key_says_to_set_one(
    client: mr.ModelRuntimeClient, secured: FakeXinference
) -> None:
    credentials = secured.credentials(CHAT)
    del credentials["api_key"]

    exc = invoke_error(client, credentials)

    assert_error(exc, *AUTH)
    assert "requires an API key" in str(exc) and "set api_key" in str(exc)


def test_an_unknown_uid_says_the_model_is_not_running_without_internal_addresses(
    client: mr.ModelRuntimeClient, xinference: FakeXinference
) -> None:
    uid = fresh_uid("never-launched")
    xinference.unknown_model(uid)

    exc = invoke_error(client, xinference.credentials(uid))

    assert_error(exc, *BAD)
    assert f"model uid {uid!r} is not running" in str(exc)
    assert INTERNAL_ADDRESS not in str(exc) and "pid" not in str(exc)


def test_a_model_still_loading_when_described(
    retrying_client: mr.ModelRuntimeClient, xinference: FakeXinference
) -> None:
    uid = fresh_uid("loading")
    xinference.describe_with(
        uid, answering(lambda: detail(503, "Model is loading", {"Retry-After": "30"}))
    )

    exc = invoke_error(retrying_client, xinference.credentials(uid, max_retries="3"))

    # A long Retry-After is the caller's to honour, not waited out here (on a server that
    # retries).
    assert_error(exc, *DOWN, retry_after=30.0)
    assert len([r for r in xinference.upstream.requests if r.path == f"/v1/models/{uid}"]) == 1


def test_a_server_that_is_not_xinference(
    client: mr.ModelRuntimeClient, xinference: FakeXinference
) -> None:
    exc = invoke_error(
        client,
        xinference.credentials(fresh_uid("anything"), server_url=f"{xinference.url}/not-here"),
    )

    assert_error(exc, *BAD)
    assert "check server_url" in str(exc)


# ---- bodies that are not what they should be --------------------------------------------------


def test_malformed_json(client: mr.ModelRuntimeClient, xinference: FakeXinference) -> None:
    xinference.script(
        "/v1/chat/completions",
        answering(lambda: web.Response(text='{"choices": [', content_type="application/json")),
    )

    exc = invoke_error(client, xinference.credentials(CHAT))

    assert_error(exc, *DOWN)
    assert "malformed JSON" in str(exc)


def test_a_stream_cut_mid_answer(client: mr.ModelRuntimeClient, xinference: FakeXinference) -> None:
    script = chat_stream().role().content("Hel").cut()
    xinference.script("/v1/chat/completions", script.handler())

    chunks, exc = stream_error(client, xinference.credentials(CHAT))

    assert len(chunks) == 2
    assert text(chunks) == "Hel"
    assert_error(exc, *CONNECTION)


def test_a_chat_stream_that_ends_without_done_is_incomplete(
    client: mr.ModelRuntimeClient, xinference: FakeXinference
) -> None:
    script = chat_stream().role().content("Hel")
    xinference.script("/v1/chat/completions", script.handler())

    chunks, exc = stream_error(client, xinference.credentials(CHAT))

    assert text(chunks) == "Hel"
    assert_error(exc, *CONNECTION)
    assert "[DONE]" in str(exc)


def test_a_completion_stream_that_ends_before_its_finish_is_incomplete(
    client: mr.ModelRuntimeClient, xinference: FakeXinference
) -> None:
    script = completion_stream().text("Once", " upon")
    xinference.script("/v1/completions", script.handler())

    chunks, exc = stream_error(client, xinference.credentials(GENERATE), model="base")

    assert text(chunks) == "Once upon"
    assert_error(exc, *CONNECTION)


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (f"Model actor {INTERNAL_ADDRESS} is out of memory", DOWN),
        ("Rate limit reached, retry later", RATE),
    ],
)
def test_a_string_error_mid_stream(
    client: mr.ModelRuntimeClient,
    xinference: FakeXinference,
    message: str,
    expected: tuple[Any, ...],
) -> None:
    # After the 200, Xinference reports a failure as `data: {"error": "<string>"}` and stops,
    # with no [DONE].
    script = chat_stream().role().content("Hel").error(message)
    xinference.script("/v1/chat/completions", script.handler())

    chunks, exc = stream_error(client, xinference.credentials(CHAT))

    assert text(chunks) == "Hel"
    assert_error(exc, *expected)
    assert INTERNAL_ADDRESS not in str(exc)


# ---- retries ----------------------------------------------------------------------------------
# On a server with the default retries (the session's server makes one attempt per call); the
# `max_retries` credential caps them per call.


def chat_requests(xinference: FakeXinference) -> int:
    return len([r for r in xinference.upstream.requests if r.path == "/v1/chat/completions"])


def retry_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "modelruntime.retries"]


def test_a_brief_outage_is_retried(
    retrying_client: mr.ModelRuntimeClient, xinference: FakeXinference
) -> None:
    script = chat_stream().role().content("ok")
    finish(script, "stop", 1, 1).done()
    attempts = iter(
        [
            answering(lambda: detail(503, "Service busy")),
            answering(lambda: text_response(502, "Bad Gateway")),
            script.handler(),
        ]
    )

    async def in_turn(request: web.Request, recorded: Recorded) -> web.StreamResponse:
        return await next(attempts)(request, recorded)  # type: ignore[no-any-return]

    xinference.script("/v1/chat/completions", in_turn)

    chunks = list(
        retrying_client.stream_llm(
            PROVIDER, "my-qwen", xinference.credentials(CHAT, max_retries="2"), "Hi"
        )
    )

    assert text(chunks) == "ok"
    assert chat_requests(xinference) == 3


@pytest.mark.parametrize(("max_retries", "requests"), [("0", 1), ("1", 2), ("10", 3)])
def test_max_retries_caps_the_servers_retries(
    retrying_client: mr.ModelRuntimeClient,
    xinference: FakeXinference,
    max_retries: str,
    requests: int,
) -> None:
    xinference.script("/v1/chat/completions", answering(lambda: detail(503, "Service busy")))

    exc = invoke_error(retrying_client, xinference.credentials(CHAT, max_retries=max_retries))

    assert_error(exc, *DOWN)
    # 10 is over the server's own three attempts in all.
    assert chat_requests(xinference) == requests


def test_a_refused_connection_is_retried(
    retrying_client: mr.ModelRuntimeClient, caplog: pytest.LogCaptureFixture
) -> None:
    credentials = {
        "server_url": f"http://127.0.0.1:{closed_port()}",
        "model_uid": CHAT,
        "max_retries": "2",
    }

    with caplog.at_level(logging.DEBUG, "modelruntime.retries"):
        exc = invoke_error(retrying_client, credentials)

    assert_error(exc, *CONNECTION)
    lines = retry_lines(caplog)
    assert len(lines) == 2 and all("InvokeConnectionError" in line for line in lines)


def test_a_failed_tls_handshake_is_not_retried(
    retrying_client: mr.ModelRuntimeClient,
    xinference: FakeXinference,
    caplog: pytest.LogCaptureFixture,
) -> None:
    credentials = xinference.credentials(
        CHAT, server_url=xinference.url.replace("http://", "https://"), max_retries="3"
    )

    with caplog.at_level(logging.DEBUG, "modelruntime.retries"):
        exc = invoke_error(retrying_client, credentials)

    assert_error(exc, *CONNECTION)
    assert "TLS" in str(exc)
    # A handshake that will not heal is not tried again.
    assert retry_lines(caplog) == []


# ---- credentials the runtime can tell are wrong -----------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("server_url", "xinference.local:9997"),
        ("model_uid", "qwen/chat"),
        ("invoke_timeout", "soon"),
        ("max_retries", "-1"),
    ],
)
def test_unusable_credentials_are_refused_before_any_call(
    client: mr.ModelRuntimeClient, xinference: FakeXinference, field: str, value: str
) -> None:
    exc = invoke_error(client, xinference.credentials(fresh_uid("x"), **{field: value}))

    assert type(exc) is mr.InvalidCredentialsError
    assert exc.reason == "INVALID_CREDENTIALS"
    assert [v.field for v in exc.field_violations] == [f"credentials.{field}"]
    assert not xinference.upstream.requests


def test_a_uid_relaunched_as_another_kind_of_model_is_noticed_on_the_next_call(
    client: mr.ModelRuntimeClient, xinference: FakeXinference
) -> None:
    uid = xinference.add_model(fresh_uid("relaunched"), DESCRIPTIONS[CHAT])
    credentials = xinference.credentials(uid)
    client.invoke_llm(PROVIDER, "mine", credentials, "Hi")  # the description is kept
    xinference.add_model(uid, DESCRIPTIONS[EMBEDDING])

    first = invoke_error(client, credentials)
    second = invoke_error(client, credentials)

    assert_error(first, *DOWN)
    assert "is not for chat" in str(first)
    assert_error(second, *BAD)
    assert "is an embedding model, not usable as llm" in str(second)
