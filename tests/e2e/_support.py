"""What the end-to-end tests share: credentials, expected error mapping, raw-stub helpers.

Every test talks to the session's real server over a loopback channel; nothing here reaches
into the server's objects.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import grpc
from conftest import FAKE_CREDENTIALS

from modelruntime import client as mr
from modelruntime.v1 import model_runtime_service_pb2 as pb

# Every call of the suite has a deadline, so a hung server fails a test instead of hanging it.
CALL_TIMEOUT = 10.0

# Any key starting with "fake-" is accepted by the fake upstream.
CREDS = dict(FAKE_CREDENTIALS)
# seed_style accepts any key, async_probe has no credential form at all.
SEED_CREDS = {"api_key": "seed-e2e-key"}
PROBE_CREDS: dict[str, str] = {}

# Does not start with "fake-": the fake upstream refuses it and echoes it in its message.
SECRET_KEY = "sk-this-is-a-secret-0000"

# The price quantum of the contract: 7 decimal places, rounded half up.
PRICE_QUANTUM = Decimal("0.0000001")


@dataclass(frozen=True)
class Failure:
    """How one upstream failure kind must reach the caller."""

    kind: str
    error: type[mr.ModelRuntimeError]
    code: grpc.StatusCode
    reason: str
    carries_retry_after: bool


FAILURES = [
    Failure(
        "connection",
        mr.InvokeConnectionError,
        grpc.StatusCode.UNAVAILABLE,
        "INVOKE_CONNECTION_ERROR",
        False,
    ),
    Failure(
        "server_unavailable",
        mr.InvokeServerUnavailableError,
        grpc.StatusCode.UNAVAILABLE,
        "INVOKE_SERVER_UNAVAILABLE",
        True,
    ),
    Failure(
        "rate_limit",
        mr.InvokeRateLimitError,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        "INVOKE_RATE_LIMIT",
        True,
    ),
    Failure(
        "authorization",
        mr.InvokeAuthorizationError,
        grpc.StatusCode.PERMISSION_DENIED,
        "INVOKE_AUTHORIZATION",
        False,
    ),
    Failure(
        "bad_request",
        mr.InvokeBadRequestError,
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVOKE_BAD_REQUEST",
        False,
    ),
    Failure(
        "timeout",
        mr.InvokeTimeoutError,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        "INVOKE_TIMEOUT",
        False,
    ),
]
FAILURE_IDS = [f.kind for f in FAILURES]


def unique_tag(prefix: str) -> str:
    """A tag no other test uses, so a provider's stop record is unambiguous."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def price(tokens: int, unit_price: str, unit: str) -> Decimal:
    return (Decimal(tokens) * Decimal(unit_price) * Decimal(unit)).quantize(
        PRICE_QUANTUM, ROUND_HALF_UP
    )


def assert_error(
    exc: BaseException,
    error: type[mr.ModelRuntimeError],
    code: grpc.StatusCode,
    reason: str,
    *,
    provider: str | None = None,
    model: str | None = None,
) -> None:
    """Exact class, gRPC code, ErrorInfo reason and domain, and the target it names."""
    assert type(exc) is error, f"expected {error.__name__}, got {exc!r}"
    assert isinstance(exc, mr.ModelRuntimeError)
    assert exc.code == code
    assert exc.reason == reason
    if reason:
        assert exc.domain == mr.ERROR_DOMAIN
    assert exc.provider == provider
    assert exc.model == model


def violation_fields(exc: mr.ModelRuntimeError) -> list[str]:
    return [v.field for v in exc.field_violations]


def raw_status_bytes(exc: mr.ModelRuntimeError) -> bytes:
    """Everything the server sent about a failure: message and every trailer, as bytes."""
    cause = exc.__cause__
    assert isinstance(cause, grpc.RpcError), "the client should chain the grpc error"
    parts = [str(cause.details() or "").encode()]  # type: ignore[attr-defined]
    for key, value in cause.trailing_metadata() or ():  # type: ignore[attr-defined]
        parts.append(key.encode())
        parts.append(value if isinstance(value, bytes) else value.encode())
    return b"\n".join(parts)


def stream_request(
    provider: str,
    model: str,
    credentials: Mapping[str, str],
    prompt: str,
    parameters: Mapping[str, mr.ParameterInput] | None = None,
) -> pb.StreamLLMRequest:
    """A StreamLLMRequest for the raw stub, built with the client's public converters."""
    return pb.StreamLLMRequest(
        provider=provider,
        model=model,
        credentials=credentials,
        prompt_messages=mr.to_prompt_messages(prompt),
        model_parameters=mr.to_model_parameters(parameters),
    )


def tool_calls_param(calls: list[dict[str, Any]]) -> str:
    return json.dumps(calls)
