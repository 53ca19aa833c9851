"""What the OpenAI provider tests share: credentials aimed at the fake upstream, the paths it
serves, and the error assertion (class, gRPC code, ErrorInfo reason, RetryInfo delay)."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

import grpc

from modelruntime import client as mr

from ..upstream import FakeUpstream

PROVIDER = "openai"
# Obviously fake; never a real key.
KEY = "sk-test-not-a-real-key"
CHAT = "/v1/chat/completions"
PRICE_QUANTUM = Decimal("0.0000001")


def creds(upstream: FakeUpstream, **extra: str) -> dict[str, str]:
    """Credentials that point the provider at the fake (Dify's base URL spelling: no /v1)."""
    return {"openai_api_key": KEY, "openai_api_base": upstream.url, **extra}


def price(tokens: int, unit_price: str, unit: str = "0.000001") -> Decimal:
    return (Decimal(tokens) * Decimal(unit_price) * Decimal(unit)).quantize(
        PRICE_QUANTUM, ROUND_HALF_UP
    )


def assert_error(
    exc: BaseException,
    error: type[mr.ModelRuntimeError],
    code: grpc.StatusCode,
    reason: str,
    *,
    retry_after: float | None = None,
    model: str | None = None,
) -> None:
    assert type(exc) is error, f"expected {error.__name__}, got {exc!r}"
    assert isinstance(exc, mr.ModelRuntimeError)
    assert exc.code == code, exc
    assert exc.reason == reason, exc
    assert exc.domain == mr.ERROR_DOMAIN
    assert exc.provider == PROVIDER
    if model is not None:
        assert exc.model == model
    assert exc.retry_after == retry_after, exc
    assert KEY not in str(exc)


def assert_quota_exceeded(exc: BaseException) -> None:
    """A spent quota: a rate-limit error that carries no retry delay (waiting won't help)."""
    assert isinstance(exc, mr.InvokeRateLimitError), repr(exc)
    assert exc.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert exc.reason in {"INVOKE_QUOTA_EXCEEDED", "INVOKE_RATE_LIMIT"}
    assert exc.retry_after is None
    assert KEY not in str(exc)
