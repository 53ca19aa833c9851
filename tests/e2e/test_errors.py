"""Failures as a caller sees them: the typed exception, gRPC code, ErrorInfo reason, target,
retry delay, and no secret anywhere in what the server sends back.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import grpc
import pytest

from modelruntime import client as mr

from ._support import (
    CALL_TIMEOUT,
    CREDS,
    FAILURE_IDS,
    FAILURES,
    PROBE_CREDS,
    SECRET_KEY,
    SEED_CREDS,
    Failure,
    assert_error,
    raw_status_bytes,
    unique_tag,
    violation_fields,
)

REPLY = "a b c d e f"
RETRY_AFTER = 2.5
RETRYABLE = {"connection", "server_unavailable", "rate_limit"}
AFTER = [0, 3]
AFTER_IDS = ["before-first-chunk", "mid-stream"]


def failing_parameters(failure: Failure, after: int) -> dict[str, mr.ParameterInput]:
    return {
        "reply": REPLY,
        "fail_with": failure.kind,
        "fail_after_chunks": after,
        "retry_after": RETRY_AFTER,
    }


def assert_upstream_failure(
    exc: BaseException, failure: Failure, *, model: str, retry_after: float = RETRY_AFTER
) -> None:
    assert_error(exc, failure.error, failure.code, failure.reason, provider="fake", model=model)
    assert isinstance(exc, mr.ModelRuntimeError)
    assert exc.retry_after == (retry_after if failure.carries_retry_after else None)
    assert exc.retryable is (failure.kind in RETRYABLE)


# ---- stream failures, before the first chunk and mid-stream -------------------------------


@pytest.mark.parametrize("after", AFTER, ids=AFTER_IDS)
@pytest.mark.parametrize("failure", FAILURES, ids=FAILURE_IDS)
def test_stream_failure_reaches_the_sync_client(
    client: mr.ModelRuntimeClient, failure: Failure, after: int
) -> None:
    received = []
    stream = client.stream_llm(
        "fake", "fake-chat", CREDS, "hi", model_parameters=failing_parameters(failure, after)
    )

    with pytest.raises(mr.ModelRuntimeError) as caught:
        for chunk in stream:
            received.append(chunk)

    # Exactly the chunks produced before the failure, then the error: never a short success.
    assert [c.delta.message.content for c in received] == ["a ", "b ", "c "][:after]
    assert not any(c.delta.finish_reason or c.delta.HasField("usage") for c in received)
    assert_upstream_failure(caught.value, failure, model="fake-chat")


@pytest.mark.parametrize("after", AFTER, ids=AFTER_IDS)
@pytest.mark.parametrize("failure", FAILURES, ids=FAILURE_IDS)
async def test_stream_failure_reaches_the_async_client(
    address: str, failure: Failure, after: int
) -> None:
    received = []
    async with mr.AsyncModelRuntimeClient(address, default_timeout=CALL_TIMEOUT) as aclient:
        stream = aclient.stream_llm(
            "fake", "fake-chat", CREDS, "hi", model_parameters=failing_parameters(failure, after)
        )
        with pytest.raises(mr.ModelRuntimeError) as caught:
            async for chunk in stream:
                received.append(chunk)

    assert [c.delta.message.content for c in received] == ["a ", "b ", "c "][:after]
    assert not any(c.delta.finish_reason or c.delta.HasField("usage") for c in received)
    assert_upstream_failure(caught.value, failure, model="fake-chat")


@pytest.mark.parametrize("after", AFTER, ids=AFTER_IDS)
@pytest.mark.parametrize("failure", FAILURES, ids=FAILURE_IDS)
def test_unary_invoke_llm_fails_instead_of_returning_a_partial_answer(
    client: mr.ModelRuntimeClient, failure: Failure, after: int
) -> None:
    with pytest.raises(mr.ModelRuntimeError) as caught:
        client.invoke_llm(
            "fake", "fake-chat", CREDS, "hi", model_parameters=failing_parameters(failure, after)
        )

    assert_upstream_failure(caught.value, failure, model="fake-chat")


async def test_unary_failure_reaches_the_async_client(address: str) -> None:
    failure = next(f for f in FAILURES if f.kind == "rate_limit")

    async with mr.AsyncModelRuntimeClient(address, default_timeout=CALL_TIMEOUT) as aclient:
        with pytest.raises(mr.ModelRuntimeError) as caught:
            await aclient.invoke_llm(
                "fake", "fake-chat", CREDS, "hi", model_parameters=failing_parameters(failure, 2)
            )

    assert_upstream_failure(caught.value, failure, model="fake-chat")


def test_failure_without_a_retry_delay_carries_no_retry_info(
    client: mr.ModelRuntimeClient,
) -> None:
    with pytest.raises(mr.ModelRuntimeError) as caught:
        list(
            client.stream_llm(
                "fake", "fake-chat", CREDS, "hi", model_parameters={"fail_with": "rate_limit"}
            )
        )

    assert_error(
        caught.value,
        mr.InvokeRateLimitError,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        "INVOKE_RATE_LIMIT",
        provider="fake",
        model="fake-chat",
    )
    assert caught.value.retry_after is None


# ---- failures injected through the credentials, for every model type ---------------------

CallWithCredentials = Callable[[mr.ModelRuntimeClient, dict[str, str]], Any]

CALLS_BY_MODEL: list[tuple[str, CallWithCredentials]] = [
    ("fake-chat", lambda c, creds: c.invoke_llm("fake", "fake-chat", creds, "hi")),
    ("fake-chat", lambda c, creds: list(c.stream_llm("fake", "fake-chat", creds, "hi"))),
    (
        "fake-embedding",
        lambda c, creds: c.invoke_text_embedding("fake", "fake-embedding", creds, ["hi"]),
    ),
    ("fake-rerank", lambda c, creds: c.invoke_rerank("fake", "fake-rerank", creds, "q", ["d"])),
    ("fake-tts", lambda c, creds: list(c.invoke_tts("fake", "fake-tts", creds, "hello"))),
    (
        "fake-speech2text",
        lambda c, creds: c.invoke_speech2text(
            "fake", "fake-speech2text", creds, b"RIFF-not-really", "a.wav"
        ),
    ),
    (
        "fake-moderation",
        lambda c, creds: c.invoke_moderation("fake", "fake-moderation", creds, "hi"),
    ),
]
CALL_IDS = ["invoke_llm", "stream_llm", "embedding", "rerank", "tts", "speech2text", "moderation"]


@pytest.mark.parametrize("failure", FAILURES, ids=FAILURE_IDS)
@pytest.mark.parametrize(("model", "call"), CALLS_BY_MODEL, ids=CALL_IDS)
def test_credential_injected_failure_of_every_model_type(
    client: mr.ModelRuntimeClient, model: str, call: CallWithCredentials, failure: Failure
) -> None:
    credentials = {**CREDS, "fail_with": failure.kind, "retry_after": str(RETRY_AFTER)}

    with pytest.raises(mr.ModelRuntimeError) as caught:
        call(client, credentials)

    assert_upstream_failure(caught.value, failure, model=model)


def test_retry_after_takes_the_credential_form_default(client: mr.ModelRuntimeClient) -> None:
    with pytest.raises(mr.ModelRuntimeError) as caught:
        client.invoke_moderation(
            "fake", "fake-moderation", {**CREDS, "fail_with": "server_unavailable"}, "hi"
        )

    failure = next(f for f in FAILURES if f.kind == "server_unavailable")
    # retry_after's form default is "1.5".
    assert_upstream_failure(caught.value, failure, model="fake-moderation", retry_after=1.5)


def test_credential_injected_failure_of_a_customizable_model(
    client: mr.ModelRuntimeClient,
) -> None:
    credentials = {**CREDS, "context_size": "1000", "fail_with": "rate_limit", "retry_after": "4"}

    with pytest.raises(mr.ModelRuntimeError) as caught:
        list(client.stream_llm("fake", "my-local-model", credentials, "hi"))

    failure = next(f for f in FAILURES if f.kind == "rate_limit")
    assert_upstream_failure(caught.value, failure, model="my-local-model", retry_after=4.0)


@pytest.mark.parametrize("kind", ["authorization", "bad_request"])
def test_validate_provider_credentials_refused_by_an_injected_failure(
    client: mr.ModelRuntimeClient, kind: str
) -> None:
    with pytest.raises(mr.ModelRuntimeError) as caught:
        client.validate_provider_credentials("fake", {**CREDS, "fail_with": kind})

    assert_error(
        caught.value,
        mr.CredentialsValidateFailedError,
        grpc.StatusCode.FAILED_PRECONDITION,
        "CREDENTIALS_VALIDATE_FAILED",
        provider="fake",
    )


# ---- secrets ---------------------------------------------------------------------------------

SECRET = {"api_key": SECRET_KEY}
REFUSED_CALLS: list[tuple[str, str | None, CallWithCredentials]] = [
    ("INVOKE_AUTHORIZATION", "fake-chat", CALLS_BY_MODEL[0][1]),
    ("INVOKE_AUTHORIZATION", "fake-chat", CALLS_BY_MODEL[1][1]),
    ("INVOKE_AUTHORIZATION", "fake-embedding", CALLS_BY_MODEL[2][1]),
    ("INVOKE_AUTHORIZATION", "fake-tts", CALLS_BY_MODEL[4][1]),
    (
        "INVOKE_AUTHORIZATION",
        "my-local-model",
        lambda c, creds: list(c.stream_llm("fake", "my-local-model", creds, "hi")),
    ),
    (
        "CREDENTIALS_VALIDATE_FAILED",
        None,
        lambda c, creds: c.validate_provider_credentials("fake", creds),
    ),
    (
        "CREDENTIALS_VALIDATE_FAILED",
        "fake-rerank",
        lambda c, creds: c.validate_model_credentials("fake", "rerank", "fake-rerank", creds),
    ),
]
REFUSED_IDS = [
    "invoke_llm",
    "stream_llm",
    "embedding",
    "tts",
    "customizable",
    "validate_provider",
    "validate_model",
]


def assert_no_secret(exc: mr.ModelRuntimeError) -> None:
    texts = [exc.message, str(exc), repr(exc), *exc.metadata.values()]
    texts += [f"{v.field} {v.description}" for v in exc.field_violations]
    for text in texts:
        assert SECRET_KEY not in text
        assert "this-is-a-secret" not in text
    assert exc.status is not None
    assert SECRET_KEY.encode() not in exc.status.SerializeToString()
    assert SECRET_KEY.encode() not in raw_status_bytes(exc)


@pytest.mark.parametrize(("reason", "model", "call"), REFUSED_CALLS, ids=REFUSED_IDS)
def test_refused_secret_key_is_scrubbed_from_every_error(
    client: mr.ModelRuntimeClient, reason: str, model: str | None, call: CallWithCredentials
) -> None:
    with pytest.raises(mr.ModelRuntimeError) as caught:
        call(client, SECRET)

    exc = caught.value
    if reason == "INVOKE_AUTHORIZATION":
        assert_error(
            exc,
            mr.InvokeAuthorizationError,
            grpc.StatusCode.PERMISSION_DENIED,
            reason,
            provider="fake",
            model=model,
        )
    else:
        assert_error(
            exc,
            mr.CredentialsValidateFailedError,
            grpc.StatusCode.FAILED_PRECONDITION,
            reason,
            provider="fake",
            model=model,
        )
    # The upstream's message survives, with the key replaced rather than the text dropped.
    assert "Incorrect API key provided: ***" in exc.message
    assert_no_secret(exc)


def test_secret_typed_into_the_wrong_field_is_not_echoed(client: mr.ModelRuntimeClient) -> None:
    with pytest.raises(mr.ModelRuntimeError) as caught:
        client.invoke_llm("fake", "fake-chat", {**CREDS, "fail_with": SECRET_KEY}, "hi")

    assert_error(
        caught.value,
        mr.InvalidCredentialsError,
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_CREDENTIALS",
        provider="fake",
        model="fake-chat",
    )
    assert violation_fields(caught.value) == ["credentials.fail_with"]
    assert_no_secret(caught.value)


# ---- not found -------------------------------------------------------------------------------


def test_unknown_provider(client: mr.ModelRuntimeClient) -> None:
    with pytest.raises(mr.ModelRuntimeError) as invoked:
        client.invoke_llm("no-such-provider", "some-model", CREDS, "hi")
    with pytest.raises(mr.ModelRuntimeError) as listed:
        client.list_models("no-such-provider")

    assert_error(
        invoked.value,
        mr.ProviderNotFoundError,
        grpc.StatusCode.NOT_FOUND,
        "PROVIDER_NOT_FOUND",
        provider="no-such-provider",
        model="some-model",
    )
    assert_error(
        listed.value,
        mr.ProviderNotFoundError,
        grpc.StatusCode.NOT_FOUND,
        "PROVIDER_NOT_FOUND",
        provider="no-such-provider",
    )


@pytest.mark.parametrize(
    ("provider", "call"),
    [
        ("seed_style", lambda c: c.invoke_llm("seed_style", "no-such-model", SEED_CREDS, "hi")),
        ("seed_style", lambda c: c.get_model_schema("seed_style", "llm", "no-such-model")),
        (
            "fake",
            lambda c: c.invoke_text_embedding("fake", "no-such-model", CREDS, ["hi"]),
        ),
        ("fake", lambda c: c.get_model_schema("fake", "rerank", "no-such-model", CREDS)),
    ],
    ids=["seed-llm", "seed-schema", "fake-embedding", "fake-rerank-schema"],
)
def test_unknown_model(
    client: mr.ModelRuntimeClient, provider: str, call: Callable[[mr.ModelRuntimeClient], Any]
) -> None:
    with pytest.raises(mr.ModelRuntimeError) as caught:
        call(client)

    assert_error(
        caught.value,
        mr.ModelNotFoundError,
        grpc.StatusCode.NOT_FOUND,
        "MODEL_NOT_FOUND",
        provider=provider,
        model="no-such-model",
    )


@pytest.mark.parametrize(
    ("provider", "call"),
    [
        ("seed_style", lambda c: c.invoke_rerank("seed_style", "x", SEED_CREDS, "q", ["d"])),
        ("seed_style", lambda c: c.get_model_schema("seed_style", "tts", "x")),
        ("async_probe", lambda c: c.invoke_text_embedding("async_probe", "x", {}, ["hi"])),
    ],
    ids=["rerank", "tts-schema", "embedding"],
)
def test_model_type_not_supported(
    client: mr.ModelRuntimeClient, provider: str, call: Callable[[mr.ModelRuntimeClient], Any]
) -> None:
    with pytest.raises(mr.ModelRuntimeError) as caught:
        call(client)

    assert_error(
        caught.value,
        mr.ModelTypeNotSupportedError,
        grpc.StatusCode.NOT_FOUND,
        "MODEL_TYPE_NOT_SUPPORTED",
        provider=provider,
        model="x",
    )


# ---- internal errors -------------------------------------------------------------------------


def assert_internal(exc: BaseException) -> None:
    assert_error(
        exc,
        mr.InternalError,
        grpc.StatusCode.INTERNAL,
        "INTERNAL",
        provider="async_probe",
        model="endless",
    )
    assert isinstance(exc, mr.ModelRuntimeError)
    # The exception's text may hold anything (even credentials): it must stay in the logs.
    assert "a bug in the provider" not in exc.message
    assert b"a bug in the provider" not in raw_status_bytes(exc)


def test_unmapped_provider_exception_mid_stream_is_internal(
    client: mr.ModelRuntimeClient,
) -> None:
    received = []

    with pytest.raises(mr.ModelRuntimeError) as caught:
        for chunk in client.stream_llm(
            "async_probe",
            "endless",
            PROBE_CREDS,
            "hi",
            model_parameters={"tag": unique_tag("internal"), "chunk_delay_ms": 1, "raise_after": 2},
        ):
            received.append(chunk.delta.message.content)

    assert received == ["0 ", "1 "]
    assert_internal(caught.value)


async def test_unmapped_provider_exception_reaches_the_async_client(address: str) -> None:
    async with mr.AsyncModelRuntimeClient(address, default_timeout=CALL_TIMEOUT) as aclient:
        with pytest.raises(mr.ModelRuntimeError) as caught:
            await aclient.invoke_llm(
                "async_probe",
                "endless",
                PROBE_CREDS,
                "hi",
                model_parameters={"tag": unique_tag("internal"), "raise_after": 0},
            )

    assert_internal(caught.value)


# ---- deadlines -------------------------------------------------------------------------------

SLOW = {"reply": "a b c d e f g h", "chunk_delay_ms": 200}
DEADLINE = 0.5


def test_stream_deadline_raises_a_timeout_error(client: mr.ModelRuntimeClient) -> None:
    received = []
    started = time.monotonic()

    with pytest.raises(mr.ModelRuntimeError) as caught:
        for chunk in client.stream_llm(
            "fake", "fake-chat", CREDS, "hi", model_parameters=SLOW, timeout=DEADLINE
        ):
            received.append(chunk.delta.message.content)
    elapsed = time.monotonic() - started

    exc = caught.value
    # The server bounds each wait for the upstream by the deadline, minus a margin, so its own
    # status (with ErrorInfo) reaches the caller before the caller's timer fires.
    assert type(exc) is mr.InvokeTimeoutError
    assert exc.code == grpc.StatusCode.DEADLINE_EXCEEDED
    assert (exc.reason, exc.provider, exc.model) == ("INVOKE_TIMEOUT", "fake", "fake-chat")
    # The server stops waiting a fifth of the time left before the deadline (see servicer).
    assert DEADLINE * 0.75 <= elapsed < DEADLINE + 1.0
    # Chunks come at 200 and 400 ms; the 600 ms one is past the deadline.
    assert 1 <= len(received) <= 2
    assert received == ["a ", "b "][: len(received)]


async def test_stream_deadline_raises_a_timeout_error_in_the_async_client(address: str) -> None:
    async with mr.AsyncModelRuntimeClient(address) as aclient:
        with pytest.raises(mr.ModelRuntimeError) as caught:
            async for _ in aclient.stream_llm(
                "fake", "fake-chat", CREDS, "hi", model_parameters=SLOW, timeout=DEADLINE
            ):
                pass

    assert type(caught.value) is mr.InvokeTimeoutError
    assert caught.value.code == grpc.StatusCode.DEADLINE_EXCEEDED
    assert caught.value.reason == "INVOKE_TIMEOUT"


def test_unary_deadline_is_answered_by_the_server_with_invoke_timeout(
    client: mr.ModelRuntimeClient,
) -> None:
    with pytest.raises(mr.ModelRuntimeError) as caught:
        client.invoke_llm("fake", "fake-chat", CREDS, "hi", model_parameters=SLOW, timeout=1.0)

    # The server gives up just before the caller's deadline so its status, with details,
    # arrives before the client's own timer fires.
    assert_error(
        caught.value,
        mr.InvokeTimeoutError,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        "INVOKE_TIMEOUT",
        provider="fake",
        model="fake-chat",
    )


# ---- a caller's malformed credential value is the caller's fault, not an internal one ------

CALLER_FAULT_REASONS = {"INVALID_CREDENTIALS", "CREDENTIALS_VALIDATE_FAILED", "INVOKE_BAD_REQUEST"}


def test_non_numeric_context_size_is_not_an_internal_error(
    client: mr.ModelRuntimeClient,
) -> None:
    with pytest.raises(mr.ModelRuntimeError) as caught:
        client.get_model_schema("fake", "llm", "my-local-model", {**CREDS, "context_size": "abc"})

    assert caught.value.code in (
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.FAILED_PRECONDITION,
    )
    assert caught.value.reason in CALLER_FAULT_REASONS
    assert (caught.value.provider, caught.value.model) == ("fake", "my-local-model")


def test_non_numeric_retry_after_is_not_an_internal_error(
    client: mr.ModelRuntimeClient,
) -> None:
    credentials = {**CREDS, "fail_with": "rate_limit", "retry_after": "soon"}

    with pytest.raises(mr.ModelRuntimeError) as caught:
        client.invoke_moderation("fake", "fake-moderation", credentials, "hi")

    assert caught.value.code in (
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
    )
    assert caught.value.reason in CALLER_FAULT_REASONS | {"INVOKE_RATE_LIMIT"}
    assert (caught.value.provider, caught.value.model) == ("fake", "fake-moderation")


# ---- validation answers "refused" only when the upstream refused ----------------------------


@pytest.mark.parametrize(
    ("kind", "error", "code", "reason"),
    [
        (
            "connection",
            mr.InvokeConnectionError,
            grpc.StatusCode.UNAVAILABLE,
            "INVOKE_CONNECTION_ERROR",
        ),
        (
            "rate_limit",
            mr.InvokeRateLimitError,
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            "INVOKE_RATE_LIMIT",
        ),
        (
            "authorization",
            mr.CredentialsValidateFailedError,
            grpc.StatusCode.FAILED_PRECONDITION,
            "CREDENTIALS_VALIDATE_FAILED",
        ),
    ],
)
def test_validation_keeps_outages_apart_from_refusals(
    client: mr.ModelRuntimeClient,
    kind: str,
    error: type[Exception],
    code: grpc.StatusCode,
    reason: str,
) -> None:
    # An outage during validation says nothing about the credentials: it must stay retryable.
    credentials = {**CREDS, "fail_with": kind}
    with pytest.raises(mr.ModelRuntimeError) as provider_level:
        client.validate_provider_credentials("fake", credentials)
    assert_error(provider_level.value, error, code, reason, provider="fake", model=None)
    with pytest.raises(mr.ModelRuntimeError) as model_level:
        client.validate_model_credentials("fake", "llm", "fake-chat", credentials)
    assert_error(model_level.value, error, code, reason, provider="fake", model="fake-chat")


def test_provider_validation_scrubs_the_key_it_was_given(client: mr.ModelRuntimeClient) -> None:
    with pytest.raises(mr.CredentialsValidateFailedError) as caught:
        client.validate_provider_credentials("fake", {"api_key": SECRET_KEY})
    assert SECRET_KEY not in str(caught.value)
    assert "***" in caught.value.message


def test_an_unknown_model_without_credentials_is_not_found(client: mr.ModelRuntimeClient) -> None:
    # The fake takes any LLM name as a customizable model, but only given credentials; without
    # them the answer is MODEL_NOT_FOUND with a hint, not a complaint about a missing key.
    with pytest.raises(mr.ModelNotFoundError) as caught:
        client.get_model_schema("fake", "llm", "fake-chta")
    assert caught.value.reason == "MODEL_NOT_FOUND"
    assert caught.value.code == grpc.StatusCode.NOT_FOUND
    assert "need credentials" in caught.value.message
