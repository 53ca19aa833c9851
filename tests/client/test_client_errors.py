"""Error decoding: real statuses from a real (stub) server, through the sync and async clients."""

from __future__ import annotations

import pickle
import socket

import grpc
import pytest

import modelruntime.client as mr
from modelruntime.client import _errors
from modelruntime.v1 import error_reason_pb2

from ._stub import ClientTestStubServicer, rich_status

# The contract's table (error_reason.proto), written out independently of the client's code.
EXPECTED_BY_REASON: dict[str, tuple[grpc.StatusCode, type[mr.ModelRuntimeError]]] = {
    "INVOKE_CONNECTION_ERROR": (grpc.StatusCode.UNAVAILABLE, mr.InvokeConnectionError),
    "INVOKE_SERVER_UNAVAILABLE": (grpc.StatusCode.UNAVAILABLE, mr.InvokeServerUnavailableError),
    "INVOKE_RATE_LIMIT": (grpc.StatusCode.RESOURCE_EXHAUSTED, mr.InvokeRateLimitError),
    "INVOKE_AUTHORIZATION": (grpc.StatusCode.PERMISSION_DENIED, mr.InvokeAuthorizationError),
    "INVOKE_BAD_REQUEST": (grpc.StatusCode.INVALID_ARGUMENT, mr.InvokeBadRequestError),
    "INVOKE_TIMEOUT": (grpc.StatusCode.DEADLINE_EXCEEDED, mr.InvokeTimeoutError),
    "CREDENTIALS_VALIDATE_FAILED": (
        grpc.StatusCode.FAILED_PRECONDITION,
        mr.CredentialsValidateFailedError,
    ),
    "PROVIDER_NOT_FOUND": (grpc.StatusCode.NOT_FOUND, mr.ProviderNotFoundError),
    "MODEL_NOT_FOUND": (grpc.StatusCode.NOT_FOUND, mr.ModelNotFoundError),
    "MODEL_TYPE_NOT_SUPPORTED": (grpc.StatusCode.NOT_FOUND, mr.ModelTypeNotSupportedError),
    "INVALID_PARAMETER": (grpc.StatusCode.INVALID_ARGUMENT, mr.InvalidParameterError),
    "INVALID_CREDENTIALS": (grpc.StatusCode.INVALID_ARGUMENT, mr.InvalidCredentialsError),
    "INVALID_REQUEST": (grpc.StatusCode.INVALID_ARGUMENT, mr.InvalidRequestError),
    "INTERNAL": (grpc.StatusCode.INTERNAL, mr.InternalError),
    "INVOKE_QUOTA_EXCEEDED": (grpc.StatusCode.RESOURCE_EXHAUSTED, mr.InvokeQuotaExceededError),
    "UNAUTHENTICATED": (grpc.StatusCode.UNAUTHENTICATED, mr.UnauthenticatedError),
    "PERMISSION_DENIED": (grpc.StatusCode.PERMISSION_DENIED, mr.PermissionDeniedError),
    "LIMIT_EXCEEDED": (grpc.StatusCode.INVALID_ARGUMENT, mr.LimitExceededError),
    "OVERLOADED": (grpc.StatusCode.RESOURCE_EXHAUSTED, mr.OverloadedError),
    "UPSTREAM_ADDRESS_FORBIDDEN": (
        grpc.StatusCode.PERMISSION_DENIED,
        mr.UpstreamAddressForbiddenError,
    ),
    "CREDENTIAL_SET_NOT_FOUND": (grpc.StatusCode.NOT_FOUND, mr.CredentialSetNotFoundError),
    "SHUTTING_DOWN": (grpc.StatusCode.UNAVAILABLE, mr.ShuttingDownError),
}

# Whether the same call may succeed if sent again unchanged; the rest are not retryable.
RETRYABLE_REASONS = {
    "INVOKE_CONNECTION_ERROR",
    "INVOKE_SERVER_UNAVAILABLE",
    "INVOKE_RATE_LIMIT",
    "OVERLOADED",
    "SHUTTING_DOWN",
}

SENT_REASONS = [
    mr.reason_name(value)
    for value in error_reason_pb2.ErrorReason.values()
    if value != error_reason_pb2.ERROR_REASON_UNSPECIFIED
]


def test_every_error_reason_of_the_contract_has_a_class() -> None:
    # Fails when the proto gains a reason the client (or this table) does not know yet.
    assert set(SENT_REASONS) == set(EXPECTED_BY_REASON)
    assert set(_errors._CLASS_BY_REASON) == set(SENT_REASONS)


def test_reason_name_drops_the_enum_prefix() -> None:
    assert mr.reason_name(error_reason_pb2.ERROR_REASON_INVOKE_RATE_LIMIT) == "INVOKE_RATE_LIMIT"


@pytest.mark.parametrize("reason", SENT_REASONS)
def test_each_reason_raises_its_class(
    reason: str, client: mr.ModelRuntimeClient, stub: ClientTestStubServicer
) -> None:
    code, expected = EXPECTED_BY_REASON[reason]
    stub.fail_with = rich_status(code, "it failed", reason=reason, provider="fake", model="m")

    with pytest.raises(mr.ModelRuntimeError) as caught:
        client.list_providers()

    assert type(caught.value) is expected
    assert caught.value.code == code
    assert caught.value.reason == reason
    assert caught.value.domain == "modelruntime.v1"
    assert caught.value.retryable is (reason in RETRYABLE_REASONS)


def test_spent_quota_is_a_rate_limit_that_must_not_be_retried(
    client: mr.ModelRuntimeClient, stub: ClientTestStubServicer
) -> None:
    stub.fail_with = rich_status(
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        "quota used up",
        reason="INVOKE_QUOTA_EXCEEDED",
        provider="fake",
        model="fake-chat",
    )

    # Code written before the reason existed catches it as a rate limit...
    with pytest.raises(mr.InvokeRateLimitError) as caught:
        client.list_providers()

    # ...and learns from `retryable` that waiting will not help.
    assert type(caught.value) is mr.InvokeQuotaExceededError
    assert not caught.value.retryable
    assert caught.value.retry_after is None
    assert str(caught.value) == (
        "INVOKE_QUOTA_EXCEEDED (RESOURCE_EXHAUSTED) [fake/fake-chat]: quota used up"
    )


def test_an_address_refusal_is_a_permission_refusal() -> None:
    assert issubclass(mr.UpstreamAddressForbiddenError, mr.PermissionDeniedError)
    assert issubclass(mr.LimitExceededError, mr.InvalidArgumentError)
    assert issubclass(mr.CredentialSetNotFoundError, mr.NotFoundError)


def test_all_details_are_decoded(
    client: mr.ModelRuntimeClient, stub: ClientTestStubServicer
) -> None:
    stub.fail_with = rich_status(
        grpc.StatusCode.INVALID_ARGUMENT,
        "model parameters break the model's rules",
        reason="INVALID_PARAMETER",
        provider="fake",
        model="fake-chat",
        violations=[
            ("model_parameters.temperature", "must be at most 2"),
            ("model_parameters.colour", "unknown parameter; allowed: temperature, max_tokens"),
        ],
    )

    with pytest.raises(mr.InvalidArgumentError) as caught:
        client.list_providers()

    error = caught.value
    assert isinstance(error, mr.InvalidParameterError)
    assert error.message == "model parameters break the model's rules"
    assert (error.provider, error.model) == ("fake", "fake-chat")
    assert error.metadata == {"provider": "fake", "model": "fake-chat"}
    assert error.retry_after is None
    assert error.field_violations == [
        mr.FieldViolation("model_parameters.temperature", "must be at most 2"),
        mr.FieldViolation(
            "model_parameters.colour", "unknown parameter; allowed: temperature, max_tokens"
        ),
    ]
    assert not error.retryable
    assert isinstance(error.__cause__, grpc.RpcError)
    assert error.status is not None and len(error.status.details) == 2


def test_rate_limit_carries_retry_after_and_reads_well(
    client: mr.ModelRuntimeClient, stub: ClientTestStubServicer
) -> None:
    stub.fail_with = rich_status(
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        "slow down",
        reason="INVOKE_RATE_LIMIT",
        provider="fake",
        model="fake-chat",
        retry_after=1.5,
    )

    with pytest.raises(mr.InvokeError) as caught:
        client.list_providers()

    assert isinstance(caught.value, mr.InvokeRateLimitError)
    assert caught.value.retry_after == 1.5
    assert caught.value.retryable
    assert str(caught.value) == (
        "INVOKE_RATE_LIMIT (RESOURCE_EXHAUSTED) [fake/fake-chat]: slow down (retry after 1.5s)"
    )


async def test_async_client_decodes_the_same(
    aclient: mr.AsyncModelRuntimeClient, stub: ClientTestStubServicer
) -> None:
    stub.fail_with = rich_status(
        grpc.StatusCode.UNAVAILABLE,
        "upstream overloaded",
        reason="INVOKE_SERVER_UNAVAILABLE",
        provider="fake",
        model="fake-chat",
        retry_after=0.25,
    )

    with pytest.raises(mr.InvokeServerUnavailableError) as caught:
        await aclient.list_providers()

    error = caught.value
    assert error.code == grpc.StatusCode.UNAVAILABLE
    assert (error.reason, error.provider, error.model) == (
        "INVOKE_SERVER_UNAVAILABLE",
        "fake",
        "fake-chat",
    )
    assert error.retry_after == 0.25
    assert isinstance(error.__cause__, grpc.aio.AioRpcError)


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (grpc.StatusCode.UNAVAILABLE, mr.InvokeConnectionError),
        (grpc.StatusCode.NOT_FOUND, mr.NotFoundError),
        (grpc.StatusCode.INVALID_ARGUMENT, mr.InvalidArgumentError),
        (grpc.StatusCode.INTERNAL, mr.InternalError),
        (grpc.StatusCode.UNKNOWN, mr.InternalError),
        (grpc.StatusCode.UNAUTHENTICATED, mr.UnauthenticatedError),
        # Not a rate limit without ErrorInfo: grpc itself uses it for oversized messages.
        (grpc.StatusCode.RESOURCE_EXHAUSTED, mr.UnexpectedStatusError),
        # A mesh's authorization policy (Istio, Envoy RBAC) refuses this way.
        (grpc.StatusCode.PERMISSION_DENIED, mr.PermissionDeniedError),
        (grpc.StatusCode.UNIMPLEMENTED, mr.UnexpectedStatusError),
    ],
)
def test_status_without_details_is_classified_by_code(
    code: grpc.StatusCode,
    expected: type[mr.ModelRuntimeError],
    client: mr.ModelRuntimeClient,
    stub: ClientTestStubServicer,
) -> None:
    stub.fail_with = rich_status(code, "no details here")

    with pytest.raises(mr.ModelRuntimeError) as caught:
        client.list_providers()

    assert type(caught.value) is expected
    assert (caught.value.code, caught.value.reason, caught.value.message) == (
        code,
        "",
        "no details here",
    )
    assert str(caught.value) == f"{code.name}: no details here"


def test_unknown_reason_falls_back_to_the_code(
    client: mr.ModelRuntimeClient, stub: ClientTestStubServicer
) -> None:
    # A newer server may send reasons this client does not know.
    stub.fail_with = rich_status(
        grpc.StatusCode.NOT_FOUND, "no such voice", reason="VOICE_NOT_FOUND", provider="fake"
    )

    with pytest.raises(mr.NotFoundError) as caught:
        client.list_providers()

    assert type(caught.value) is mr.NotFoundError
    assert caught.value.reason == "VOICE_NOT_FOUND"
    assert caught.value.provider == "fake"


def test_deadline_enforced_by_grpc_is_a_timeout(
    client: mr.ModelRuntimeClient, stub: ClientTestStubServicer
) -> None:
    stub.hold = True

    with pytest.raises(mr.InvokeTimeoutError) as caught:
        client.list_providers(timeout=0.2)

    assert caught.value.code == grpc.StatusCode.DEADLINE_EXCEEDED
    assert caught.value.reason == ""
    assert isinstance(caught.value.__cause__, grpc.RpcError)


async def test_async_deadline_is_a_timeout(
    aclient: mr.AsyncModelRuntimeClient, stub: ClientTestStubServicer
) -> None:
    stub.hold = True

    with pytest.raises(mr.InvokeTimeoutError):
        await aclient.list_providers(timeout=0.2)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_unreachable_server_is_a_retryable_connection_error() -> None:
    with (
        mr.ModelRuntimeClient(f"127.0.0.1:{_closed_port()}") as client,
        pytest.raises(mr.InvokeConnectionError) as caught,
    ):
        client.list_providers(timeout=5)

    assert caught.value.code == grpc.StatusCode.UNAVAILABLE
    assert caught.value.reason == ""
    assert caught.value.retryable
    assert isinstance(caught.value.__cause__, grpc.RpcError)


async def test_async_unreachable_server_is_a_connection_error() -> None:
    async with mr.AsyncModelRuntimeClient(f"127.0.0.1:{_closed_port()}") as client:
        with pytest.raises(mr.InvokeConnectionError):
            await client.list_providers(timeout=5)


def test_error_survives_pickling() -> None:
    error = mr.InvokeRateLimitError(
        "slow down",
        code=grpc.StatusCode.RESOURCE_EXHAUSTED,
        reason="INVOKE_RATE_LIMIT",
        provider="fake",
        retry_after=2.0,
        field_violations=[mr.FieldViolation("a", "b")],
    )

    copy = pickle.loads(pickle.dumps(error))

    assert type(copy) is mr.InvokeRateLimitError
    assert str(copy) == str(error)
    assert copy.field_violations == error.field_violations


def test_str_adds_the_violations_the_message_does_not_mention() -> None:
    error = mr.InvalidCredentialsError(
        "credentials do not fit the form",
        code=grpc.StatusCode.INVALID_ARGUMENT,
        reason="INVALID_CREDENTIALS",
        provider="fake",
        field_violations=[mr.FieldViolation("credentials.api_key", "required")],
    )

    assert str(error) == (
        "INVALID_CREDENTIALS (INVALID_ARGUMENT) [fake]: credentials do not fit the form "
        "(credentials.api_key: required)"
    )
    # The server's message usually names them already.
    error.message = "credentials.api_key: required"
    assert str(error) == (
        "INVALID_CREDENTIALS (INVALID_ARGUMENT) [fake]: credentials.api_key: required"
    )
    assert repr(error) == (
        "InvalidCredentialsError(code=INVALID_ARGUMENT, reason='INVALID_CREDENTIALS', "
        "message='credentials.api_key: required')"
    )


def test_rpc_error_that_is_not_a_call_is_still_translated() -> None:
    class NotACall(grpc.RpcError):
        pass

    error = mr.from_rpc_error(NotACall())

    assert type(error) is mr.InternalError
    assert error.code == grpc.StatusCode.UNKNOWN
