"""What the Xinference tests share: error assertions and chunk helpers."""

from __future__ import annotations

import socket
from decimal import Decimal

import grpc

from modelruntime import client as mr
from modelruntime.v1 import llm_pb2

PROVIDER = "xinference"


def assert_error(
    exc: BaseException,
    error: type[mr.ModelRuntimeError],
    code: grpc.StatusCode,
    reason: str,
    *,
    retry_after: float | None = None,
) -> None:
    """The exact error class, gRPC code, ErrorInfo reason and RetryInfo delay."""
    assert type(exc) is error, f"expected {error.__name__}, got {exc!r}"
    assert isinstance(exc, mr.ModelRuntimeError)
    assert exc.code == code
    assert exc.reason == reason
    assert exc.provider == PROVIDER
    assert exc.retry_after == retry_after


def text(chunks: list[llm_pb2.LLMResultChunk]) -> str:
    return "".join(c.delta.message.content for c in chunks)


def assert_free_usage(usage: llm_pb2.LLMUsage, prompt_tokens: int, completion_tokens: int) -> None:
    """Token counts as the server reported them; a self-hosted model has no price."""
    assert (usage.prompt_tokens, usage.completion_tokens) == (prompt_tokens, completion_tokens)
    assert usage.total_tokens == prompt_tokens + completion_tokens
    assert Decimal(usage.total_price or "0") == 0


def closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
