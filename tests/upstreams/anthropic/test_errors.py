"""Every way the Anthropic API (or the road to it) can fail, row by row, as the caller sees it
through the real server and client: the exact error class, gRPC code, ErrorInfo reason, and
the RetryInfo delay where the upstream asked for one."""

from __future__ import annotations

import socket
from dataclasses import dataclass

import grpc
import pytest

from modelruntime import client as mr

from .fake_anthropic import TEST_KEY, Failure, FakeAnthropic, Reply, Text, ToolUse

PROVIDER = "anthropic"
MODEL = "claude-sonnet-4-5-20250929"
QUOTA_REASONS = {"INVOKE_QUOTA_EXCEEDED", "INVOKE_RATE_LIMIT"}


@dataclass(frozen=True)
class Expected:
    error: type[mr.ModelRuntimeError]
    code: grpc.StatusCode
    reason: str
    retry_after: float | None = None


BAD_REQUEST = Expected(
    mr.InvokeBadRequestError, grpc.StatusCode.INVALID_ARGUMENT, "INVOKE_BAD_REQUEST"
)
AUTHORIZATION = Expected(
    mr.InvokeAuthorizationError, grpc.StatusCode.PERMISSION_DENIED, "INVOKE_AUTHORIZATION"
)
UNAVAILABLE = Expected(
    mr.InvokeServerUnavailableError, grpc.StatusCode.UNAVAILABLE, "INVOKE_SERVER_UNAVAILABLE"
)
RATE_LIMIT = Expected(
    mr.InvokeRateLimitError, grpc.StatusCode.RESOURCE_EXHAUSTED, "INVOKE_RATE_LIMIT"
)
CONNECTION = Expected(
    mr.InvokeConnectionError, grpc.StatusCode.UNAVAILABLE, "INVOKE_CONNECTION_ERROR"
)
TIMEOUT = Expected(mr.InvokeTimeoutError, grpc.StatusCode.DEADLINE_EXCEEDED, "INVOKE_TIMEOUT")
# A spent quota or spend limit: a rate-limit error a caller must not retry (no RetryInfo).
QUOTA = Expected(mr.InvokeRateLimitError, grpc.StatusCode.RESOURCE_EXHAUSTED, "")


def assert_error(exc: BaseException, expected: Expected) -> None:
    assert isinstance(exc, mr.ModelRuntimeError), repr(exc)
    if expected is QUOTA:
        assert isinstance(exc, mr.InvokeRateLimitError), repr(exc)
        assert exc.reason in QUOTA_REASONS
        assert exc.retry_after is None
    else:
        assert type(exc) is expected.error, repr(exc)
        assert exc.reason == expected.reason
        assert exc.retry_after == expected.retry_after
    assert exc.code == expected.code
    assert (exc.provider, exc.model) == (PROVIDER, MODEL)
    assert TEST_KEY not in str(exc)


def stream_error(
    client: mr.ModelRuntimeClient, credentials: dict[str, str], timeout: float = 10.0
) -> tuple[list[str], mr.ModelRuntimeError]:
    """The contents streamed before the failure, and the failure."""
    received: list[str] = []
    with pytest.raises(mr.ModelRuntimeError) as caught:
        for chunk in client.stream_llm(PROVIDER, MODEL, credentials, "hi", timeout=timeout):
            received.append(chunk.delta.message.content)
    return received, caught.value


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


# ---- error statuses ------------------------------------------------------------------------

STATUS_ROWS = [
    pytest.param(
        Failure(400, "invalid_request_error", "messages: roles must alternate"),
        BAD_REQUEST,
        id="400",
    ),
    pytest.param(
        Failure(401, "authentication_error", "invalid x-api-key"), AUTHORIZATION, id="401"
    ),
    pytest.param(
        Failure(402, "billing_error", "Your account has no credit"), QUOTA, id="402-billing"
    ),
    pytest.param(
        Failure(403, "permission_error", "Your API key cannot use this model"),
        AUTHORIZATION,
        id="403",
    ),
    pytest.param(Failure(404, "not_found_error", "model: claude-nope"), BAD_REQUEST, id="404"),
    pytest.param(
        Failure(
            413,
            raw="<html><head><title>413 Request Entity Too Large</title></head>"
            "<body><center>cloudflare</center></body></html>",
            content_type="text/html",
        ),
        BAD_REQUEST,
        id="413-html",
    ),
    pytest.param(
        Failure(
            429,
            "rate_limit_error",
            "Number of request tokens has exceeded your per-minute rate limit",
            {"retry-after": "7"},
        ),
        Expected(
            mr.InvokeRateLimitError, grpc.StatusCode.RESOURCE_EXHAUSTED, "INVOKE_RATE_LIMIT", 7.0
        ),
        id="429-retry-after",
    ),
    pytest.param(
        Failure(
            429,
            "rate_limit_error",
            "You have reached your specified workspace API usage limits.",
            {"retry-after": "30"},
            details={"error_code": "enforced_spend_limit_reached"},
        ),
        QUOTA,
        id="429-spend-limit",
    ),
    pytest.param(
        Failure(
            400,
            "invalid_request_error",
            "Your credit balance is too low to access the Anthropic API.",
        ),
        QUOTA,
        id="400-credit-balance",
    ),
    pytest.param(Failure(500, "api_error", "Internal server error"), UNAVAILABLE, id="500"),
    pytest.param(Failure(504, "timeout_error", "Request timeout"), UNAVAILABLE, id="504"),
    pytest.param(
        Failure(529, "overloaded_error", "Overloaded", {"retry-after": "2"}),
        Expected(
            mr.InvokeServerUnavailableError,
            grpc.StatusCode.UNAVAILABLE,
            "INVOKE_SERVER_UNAVAILABLE",
            2.0,
        ),
        id="529-overloaded",
    ),
]


@pytest.mark.parametrize(("failure", "expected"), STATUS_ROWS)
def test_an_error_status_before_a_stream_maps_to_its_error(
    client: mr.ModelRuntimeClient,
    anthropic: FakeAnthropic,
    credentials: dict[str, str],
    failure: Failure,
    expected: Expected,
) -> None:
    anthropic.failure = failure

    received, exc = stream_error(client, credentials)

    assert received == []
    assert_error(exc, expected)
    if failure.raw is None:
        # Anthropic's own words and request id reach the caller.
        assert failure.message in str(exc)
        assert "req_fake_0001" in str(exc)
    else:
        assert "request_too_large" in str(exc)
        assert "<html>" not in str(exc)


@pytest.mark.parametrize(("failure", "expected"), STATUS_ROWS)
def test_an_error_status_of_a_whole_answer_maps_to_its_error(
    client: mr.ModelRuntimeClient,
    anthropic: FakeAnthropic,
    credentials: dict[str, str],
    failure: Failure,
    expected: Expected,
) -> None:
    anthropic.failure = failure

    with pytest.raises(mr.ModelRuntimeError) as caught:
        client.invoke_llm(PROVIDER, MODEL, credentials, "hi")

    assert_error(caught.value, expected)


def test_a_wrong_key_is_refused_and_never_echoed(
    client: mr.ModelRuntimeClient, anthropic: FakeAnthropic, credentials: dict[str, str]
) -> None:
    # Some gateways quote the key they refused; the runtime scrubs it.
    anthropic.failure = Failure(401, "authentication_error", f"invalid x-api-key: {TEST_KEY}")

    _, exc = stream_error(client, credentials)

    assert_error(exc, AUTHORIZATION)
    assert "invalid x-api-key: ***" in str(exc)


def test_the_fakes_own_key_check_is_an_authorization_error(
    client: mr.ModelRuntimeClient, anthropic: FakeAnthropic, credentials: dict[str, str]
) -> None:
    _, exc = stream_error(client, {**credentials, "anthropic_api_key": "sk-ant-not-the-test-key"})

    assert_error(exc, AUTHORIZATION)
    assert "authentication_error: invalid x-api-key" in str(exc)


# ---- transport failures --------------------------------------------------------------------


def test_a_refused_connection_is_a_connection_error(client: mr.ModelRuntimeClient) -> None:
    credentials = {
        "anthropic_api_key": TEST_KEY,
        "anthropic_api_url": f"http://127.0.0.1:{free_port()}",
    }

    _, exc = stream_error(client, credentials)

    assert_error(exc, CONNECTION)
    assert "could not connect" in str(exc)


def test_a_connection_reset_before_the_answer_is_a_connection_error(
    client: mr.ModelRuntimeClient, anthropic: FakeAnthropic, credentials: dict[str, str]
) -> None:
    anthropic.reset = True

    _, exc = stream_error(client, credentials)

    assert_error(exc, CONNECTION)


def test_a_tls_failure_is_a_connection_error(
    client: mr.ModelRuntimeClient, anthropic: FakeAnthropic
) -> None:
    # TLS spoken to a plain-HTTP server fails the handshake.
    credentials = {
        "anthropic_api_key": TEST_KEY,
        "anthropic_api_url": f"https://127.0.0.1:{anthropic.upstream.port}",
    }

    _, exc = stream_error(client, credentials)

    assert_error(exc, CONNECTION)
    assert "TLS" in str(exc)


def test_an_answer_slower_than_the_deadline_is_a_timeout(
    client: mr.ModelRuntimeClient, anthropic: FakeAnthropic, credentials: dict[str, str]
) -> None:
    anthropic.reply(Reply([Text(["late"])], delay=3.0))

    with pytest.raises(mr.ModelRuntimeError) as caught:
        client.invoke_llm(PROVIDER, MODEL, credentials, "hi", timeout=0.6)

    assert_error(caught.value, TIMEOUT)


def test_a_stream_stalling_past_the_deadline_is_a_timeout(
    client: mr.ModelRuntimeClient, anthropic: FakeAnthropic, credentials: dict[str, str]
) -> None:
    anthropic.reply(Reply([Text(["a", "b"])], pause=3.0))

    _, exc = stream_error(client, credentials, timeout=0.6)

    assert_error(exc, TIMEOUT)


# ---- broken answers ------------------------------------------------------------------------


def test_a_whole_answer_that_is_not_json_is_a_server_fault(
    client: mr.ModelRuntimeClient, anthropic: FakeAnthropic, credentials: dict[str, str]
) -> None:
    anthropic.failure = Failure(
        200, raw='{"id": "msg_01", "content": [', content_type="application/json"
    )

    with pytest.raises(mr.ModelRuntimeError) as caught:
        client.invoke_llm(PROVIDER, MODEL, credentials, "hi")

    assert_error(caught.value, UNAVAILABLE)
    assert "malformed JSON" in str(caught.value)


def test_a_stream_event_that_is_not_json_is_a_server_fault(
    client: mr.ModelRuntimeClient, anthropic: FakeAnthropic, credentials: dict[str, str]
) -> None:
    # Events: message_start, content_block_start, ping, then the garbage.
    anthropic.reply(Reply([Text(["a", "b"])], garbage_after=4))

    received, exc = stream_error(client, credentials)

    assert received == ["a"]
    assert_error(exc, UNAVAILABLE)
    assert "malformed JSON" in str(exc)


# message_start, content_block_start, ping, text_delta "a", text_delta "b", content_block_stop,
# message_delta, message_stop.
@pytest.mark.parametrize(
    ("after", "seen"),
    [(1, []), (4, ["a"]), (5, ["a", "b"]), (7, ["a", "b"])],
    ids=["after-message_start", "mid-block", "after-deltas", "before-message_stop"],
)
@pytest.mark.parametrize("how", ["cut", "clean-end"])
def test_a_stream_ending_before_message_stop_is_an_error_never_a_short_answer(
    client: mr.ModelRuntimeClient,
    anthropic: FakeAnthropic,
    credentials: dict[str, str],
    after: int,
    seen: list[str],
    how: str,
) -> None:
    if how == "cut":
        anthropic.reply(Reply([Text(["a", "b"])], cut_after=after))
    else:
        anthropic.reply(Reply([Text(["a", "b"])], end_after=after))

    received, exc = stream_error(client, credentials)

    assert received == seen
    assert_error(exc, CONNECTION)
    if how == "clean-end":
        assert "message_stop" in str(exc)


MID_STREAM_ROWS = [
    ("overloaded_error", UNAVAILABLE),
    ("api_error", UNAVAILABLE),
    ("timeout_error", UNAVAILABLE),
    ("rate_limit_error", RATE_LIMIT),
    ("invalid_request_error", BAD_REQUEST),
    ("not_found_error", BAD_REQUEST),
    ("request_too_large", BAD_REQUEST),
    ("authentication_error", AUTHORIZATION),
    ("permission_error", AUTHORIZATION),
    ("billing_error", QUOTA),
    ("a_new_kind_of_error", UNAVAILABLE),
]


@pytest.mark.parametrize(("error_type", "expected"), MID_STREAM_ROWS)
def test_an_error_event_mid_stream_is_classified_by_its_type_not_the_200(
    client: mr.ModelRuntimeClient,
    anthropic: FakeAnthropic,
    credentials: dict[str, str],
    error_type: str,
    expected: Expected,
) -> None:
    anthropic.reply(
        Reply(
            [Text(["a", "b", "c"]), ToolUse("toolu_1", "f", ["{}"])],
            error_after=5,
            error_type=error_type,
            error_message="scripted in-band failure",
        )
    )

    received, exc = stream_error(client, credentials)

    assert received == ["a", "b"]
    assert_error(exc, expected)
    assert f"{error_type} in its answer: scripted in-band failure" in str(exc)


def test_a_whole_answer_whose_body_is_an_error_is_classified_by_its_type(
    client: mr.ModelRuntimeClient, anthropic: FakeAnthropic, credentials: dict[str, str]
) -> None:
    anthropic.failure = Failure(
        200,
        raw='{"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}',
    )

    with pytest.raises(mr.ModelRuntimeError) as caught:
        client.invoke_llm(PROVIDER, MODEL, credentials, "hi")

    assert_error(caught.value, UNAVAILABLE)
