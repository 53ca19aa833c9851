"""Logs of a real `modelruntime serve` process: with `log_format: json` every line is a JSON
object and every RPC writes exactly one, with method, provider, model, code, reason, latency,
tokens, request id and trace id; secrets never appear, not even in a provider bug's traceback;
per-chunk lines only at DEBUG; the text line stays the default."""

from __future__ import annotations

import json
from typing import Any

import pytest

from modelruntime import client as mr
from server.config import ServerConfig
from server.observability.logs import redact

from ._support import CALL_TIMEOUT, FAKE_CREDENTIALS

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
TRACEPARENT = f"00-{TRACE_ID}-b7ad6b7169203331-01"
# Not shaped like any known key: only the call's own secret list can redact it.
RELAY_SECRET = "relay-secret-0123456789abcdef"
# No exporter: the process must not try to reach a collector.
NO_EXPORT = {"OTEL_TRACES_EXPORTER": "none"}


def json_lines(log: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.splitlines() if line.strip()]


def rpc_lines(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in entries if e["logger"] == "modelruntime.rpc" and "method" in e]


def crashing_relay(upstream: Any) -> None:
    from upstreams.upstream import sse_data, write_stream

    async def handler(request: Any, recorded: Any) -> Any:
        return await write_stream(request, [sse_data({"text": "a "}), sse_data({"crash": True})])

    upstream.route("POST", "/v1/relay", handler)


def test_json_logs_one_structured_line_per_rpc_without_secrets(
    serve_process: Any, upstream: Any
) -> None:
    crashing_relay(upstream)
    server = serve_process(log_format="json", tracing=True, env=NO_EXPORT)
    with mr.ModelRuntimeClient(server.address, default_timeout=CALL_TIMEOUT) as client:
        chunks = list(
            client.stream_llm(
                "fake",
                "fake-chat",
                FAKE_CREDENTIALS,
                "three little words",
                metadata=[("x-request-id", "req-ops-1"), ("traceparent", TRACEPARENT)],
            )
        )
        with pytest.raises(mr.InvokeRateLimitError):
            client.invoke_llm(
                "fake", "fake-chat", {**FAKE_CREDENTIALS, "fail_with": "rate_limit"}, "hi", {}
            )
        with pytest.raises(mr.InternalError):
            list(
                client.stream_llm(
                    "relay",
                    "relay-chat",
                    {"base_url": upstream.url, "api_key": RELAY_SECRET},
                    "hi",
                )
            )
    server.terminate()
    assert server.wait(30) == 0

    log = server.log()
    entries = json_lines(log)  # every line is JSON
    stream, refused, crashed = rpc_lines(entries)
    usage = chunks[-1].delta.usage
    assert stream["method"] == "StreamLLM"
    assert stream["provider"] == "fake" and stream["model"] == "fake-chat"
    assert stream["code"] == "OK" and stream["reason"] == ""
    assert stream["request_id"] == "req-ops-1"
    assert stream["trace_id"] == TRACE_ID
    assert stream["messages"] == len(chunks)
    assert stream["input_tokens"] == usage.prompt_tokens
    assert stream["output_tokens"] == usage.completion_tokens
    assert stream["price"] == usage.total_price and stream["currency"] == usage.currency
    assert stream["latency_ms"] >= 0 and stream["time_to_first_token_ms"] >= 0

    assert refused["method"] == "InvokeLLM"
    assert refused["code"] == "RESOURCE_EXHAUSTED" and refused["reason"] == "INVOKE_RATE_LIMIT"
    assert refused["outcome"] == "InvokeRateLimitError"
    assert len(refused["request_id"]) == 16  # made up when the caller sends none

    assert crashed["code"] == "INTERNAL" and crashed["reason"] == "INTERNAL"
    # The provider bug's traceback is logged, with the key it held redacted.
    tracebacks = [e["exception"] for e in entries if "exception" in e]
    assert any("relay bug while using key [REDACTED]" in t for t in tracebacks)
    assert RELAY_SECRET not in log
    assert FAKE_CREDENTIALS["api_key"] not in log
    # Per-chunk lines are DEBUG only.
    assert not [e for e in entries if e["logger"] == "modelruntime.rpc.chunks"]


def test_per_chunk_lines_only_at_debug_and_text_is_the_default(serve_process: Any) -> None:
    assert ServerConfig().log_format == "text"
    server = serve_process(log_level="DEBUG")
    with mr.ModelRuntimeClient(server.address, default_timeout=CALL_TIMEOUT) as client:
        chunks = list(
            client.stream_llm(
                "fake", "fake-chat", FAKE_CREDENTIALS, "hi", model_parameters={"reply": "a b c"}
            )
        )
    server.terminate()
    assert server.wait(30) == 0

    log = server.log()
    chunk_lines = [line for line in log.splitlines() if "modelruntime.rpc.chunks:" in line]
    assert len(chunk_lines) == len(chunks)
    assert f"StreamLLM provider=fake model=fake-chat outcome=OK chunks={len(chunks)} " in log
    assert FAKE_CREDENTIALS["api_key"] not in log


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        ("authorization: Bearer abc.def-ghi", "authorization: Bearer [REDACTED]"),
        ("GET /v1beta/models?key=AIzaSyExample123&alt=sse", "?key=[REDACTED]&alt=sse"),
        ('{"api_key": "0123456789abcdef"}', '{"api_key": "[REDACTED]"}'),
        ("Incorrect API key provided: sk-proj-abcdef123456", "provided: sk-[REDACTED]"),
        ("x-api-key=topsecret", "x-api-key=[REDACTED]"),
    ],
)
def test_redact_hides_what_looks_like_a_credential(text: str, kept: str) -> None:
    assert kept in redact(text)


def test_redact_keeps_ordinary_log_lines() -> None:
    line = (
        "StreamLLM provider=fake model=fake-chat outcome=OK chunks=3 latency_ms=1.2 "
        "request_id=abc code=OK reason=- input_tokens=8 output_tokens=2"
    )
    assert redact(line) == line
