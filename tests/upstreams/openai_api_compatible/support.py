"""What the openai_api_compatible tests share: credentials pointing at the fake upstream and the
exact checks of an error that reached the client."""

from __future__ import annotations

from typing import Any

import grpc

from modelruntime import client as mr

from ..upstream import FakeUpstream

PROVIDER = "openai_api_compatible"
MODEL = "my-model"
# What the server knows the model by (`endpoint_model_name`).
SERVED = "Qwen/Qwen3-8B"
API_KEY = "sk-test-not-a-real-key"


def creds(upstream: FakeUpstream, **extra: str) -> dict[str, str]:
    """Credentials of a chat model on the fake upstream's `/v1`."""
    return {
        "endpoint_url": f"{upstream.url}/v1",
        "api_key": API_KEY,
        "endpoint_model_name": SERVED,
        **extra,
    }


def assert_error(
    exc: BaseException,
    error: type[mr.ModelRuntimeError],
    code: grpc.StatusCode,
    reason: str,
    *,
    retry_after: float | None = None,
    model: str = MODEL,
) -> None:
    """Exact class, gRPC code, ErrorInfo reason, the target it names, the RetryInfo delay, and
    never the key."""
    assert type(exc) is error, f"expected {error.__name__}, got {exc!r}"
    assert isinstance(exc, mr.ModelRuntimeError)
    assert exc.code == code
    assert exc.reason == reason
    assert exc.provider == PROVIDER
    assert exc.model == model
    assert exc.retry_after == retry_after
    assert API_KEY not in str(exc)


def text_of(chunks: list[Any]) -> str:
    return "".join(c.delta.message.content for c in chunks)
