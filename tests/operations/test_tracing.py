"""OpenTelemetry tracing, seen through an in-memory span exporter: a call that carries a W3C
`traceparent` gets a SERVER span in that trace, its upstream HTTP request a CLIENT span below it
(and the trace context goes on to the upstream), failures mark the span, nothing secret is
recorded, and tracing is off unless configured."""

from __future__ import annotations

from typing import Any

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from modelruntime import client as mr
from server.config import ServerConfig

from ._support import CALL_TIMEOUT, FAKE_CREDENTIALS, RELAY_KEY, relay_credentials, slow_relay

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_SPAN_ID = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{PARENT_SPAN_ID}-01"
SERVICE = "modelruntime.v1.ModelRuntimeService"


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def traced_server(in_process_server: Any, exporter: InMemorySpanExporter) -> Any:
    return in_process_server(span_exporter=exporter)


def spans_named(exporter: InMemorySpanExporter, name: str) -> list[Any]:
    return [span for span in exporter.get_finished_spans() if span.name == name]


def test_a_call_with_traceparent_gets_a_child_span_in_that_trace(
    traced_server: Any, exporter: InMemorySpanExporter
) -> None:
    with mr.ModelRuntimeClient(traced_server.address, default_timeout=CALL_TIMEOUT) as client:
        chunks = list(
            client.stream_llm(
                "fake",
                "fake-chat",
                FAKE_CREDENTIALS,
                "hello",
                metadata=[("traceparent", TRACEPARENT)],
            )
        )

    (span,) = spans_named(exporter, f"{SERVICE}/StreamLLM")
    assert format(span.context.trace_id, "032x") == TRACE_ID
    assert span.parent is not None and format(span.parent.span_id, "016x") == PARENT_SPAN_ID
    assert span.kind is SpanKind.SERVER
    assert span.attributes["rpc.system"] == "grpc"
    assert span.attributes["rpc.method"] == "StreamLLM"
    assert span.attributes["rpc.grpc.status_code"] == "OK"
    assert span.attributes["modelruntime.provider"] == "fake"
    assert span.attributes["modelruntime.model"] == "fake-chat"
    assert span.attributes["modelruntime.messages"] == len(chunks)
    usage = chunks[-1].delta.usage
    assert span.attributes["gen_ai.usage.input_tokens"] == usage.prompt_tokens
    assert span.attributes["gen_ai.usage.output_tokens"] == usage.completion_tokens
    assert span.status.status_code is not StatusCode.ERROR


def test_upstream_requests_are_child_spans_and_carry_the_trace_on(
    traced_server: Any, exporter: InMemorySpanExporter, upstream: Any
) -> None:
    upstream.route("POST", "/v1/relay", slow_relay(pieces=3, pause=0.0, usage=(5, 3)))
    with mr.ModelRuntimeClient(traced_server.address, default_timeout=CALL_TIMEOUT) as client:
        text = "".join(
            chunk.delta.message.content
            for chunk in client.stream_llm(
                "relay",
                "relay-chat",
                relay_credentials(upstream),
                "hi",
                metadata=[("traceparent", TRACEPARENT)],
            )
        )
    assert text == "0 1 2 "

    (rpc,) = spans_named(exporter, f"{SERVICE}/StreamLLM")
    (http,) = [s for s in exporter.get_finished_spans() if s.kind is SpanKind.CLIENT]
    assert http.context.trace_id == rpc.context.trace_id
    assert format(http.context.trace_id, "032x") == TRACE_ID
    assert http.parent is not None and http.parent.span_id == rpc.context.span_id
    assert upstream.last("/v1/relay").query["key"] == RELAY_KEY
    url = http.attributes.get("url.full") or http.attributes.get("http.url")
    assert url == f"{upstream.url}/v1/relay", "the URL is recorded without its query string"
    # The upstream sees the same trace, one level down.
    sent = upstream.last("/v1/relay").headers["traceparent"]
    assert sent.split("-")[1] == TRACE_ID
    assert sent.split("-")[2] == format(http.context.span_id, "016x")

    recorded = repr([(s.name, dict(s.attributes or {}), s.events) for s in (rpc, http)])
    assert RELAY_KEY not in recorded


def test_a_failed_call_marks_its_span_with_the_code_and_reason(
    traced_server: Any, exporter: InMemorySpanExporter
) -> None:
    with (
        mr.ModelRuntimeClient(traced_server.address, default_timeout=CALL_TIMEOUT) as client,
        pytest.raises(mr.InvokeRateLimitError),
    ):
        client.invoke_llm(
            "fake", "fake-chat", {**FAKE_CREDENTIALS, "fail_with": "rate_limit"}, "hi", {}
        )

    (span,) = spans_named(exporter, f"{SERVICE}/InvokeLLM")
    assert span.parent is None, "no traceparent: a trace of its own"
    assert span.attributes["rpc.grpc.status_code"] == "RESOURCE_EXHAUSTED"
    assert span.attributes["modelruntime.error.reason"] == "INVOKE_RATE_LIMIT"
    assert span.status.status_code is StatusCode.ERROR


def test_tracing_is_off_unless_configured(in_process_server: Any) -> None:
    assert ServerConfig().tracing is False
    assert in_process_server().running.tracing is None
