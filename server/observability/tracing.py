"""OpenTelemetry tracing: one SERVER span per RPC, one CLIENT span per upstream HTTP request.

Off unless the config turns it on. The exporter is configured the standard way, by the OTEL_*
environment variables: OTEL_TRACES_EXPORTER (`otlp`, the default, `console` or `none`),
OTEL_EXPORTER_OTLP_(TRACES_)PROTOCOL (`grpc`, the default, or `http/protobuf`),
OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT / _HEADERS / _TIMEOUT / _CERTIFICATE, OTEL_SERVICE_NAME,
OTEL_RESOURCE_ATTRIBUTES, OTEL_TRACES_SAMPLER(_ARG) and OTEL_BSP_* (read by the SDK itself).

The caller's W3C trace context (`traceparent`, `tracestate` metadata) is the parent of the RPC's
span; the upstream requests made while serving it are its children, and carry the context on to
the upstream. Span attributes never hold credentials: the upstream URL is recorded without its
query string (some vendors take the API key there).
"""

from __future__ import annotations

import logging
import os
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import httpx
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
)

from providers.sdk.http import add_client_hook

logger = logging.getLogger("modelruntime")

SERVICE = "modelruntime.v1.ModelRuntimeService"
_TRACE_HEADERS = ("traceparent", "tracestate", "baggage")


class Tracing:
    """The tracer provider of one server, and the httpx instrumentation that makes upstream
    request spans. `exporter` replaces the OTEL_* configured one (tests pass an in-memory one).

    The pooled upstream clients are instrumented one by one as they are created: their
    transport is ours (`providers.sdk.transport`), not the httpx class that the instrumentor's
    process-wide `instrument()` patches."""

    def __init__(self, exporter: SpanExporter | None = None) -> None:
        resource = Resource.create(
            {"service.name": os.environ.get("OTEL_SERVICE_NAME") or "modelruntime"}
        )
        self.provider = TracerProvider(resource=resource)
        if exporter is not None:
            # Spans are visible to the test the moment they end.
            self.provider.add_span_processor(SimpleSpanProcessor(exporter))
        else:
            configured = _configured_exporter()
            if configured is not None:
                self.provider.add_span_processor(BatchSpanProcessor(configured))
        self.tracer = self.provider.get_tracer("modelruntime.server")
        self._instrument_httpx()

    def _instrument_httpx(self) -> None:
        global _tracing_upstreams
        self._instrumented: weakref.WeakSet[httpx.AsyncClient] = weakref.WeakSet()
        self._remove_hook: Callable[[], None] | None = None
        if _tracing_upstreams is not None:
            # Another server in this process (tests) traces upstream requests already.
            return
        _tracing_upstreams = self
        self._remove_hook = add_client_hook(self._instrument_client)

    def _instrument_client(self, client: httpx.AsyncClient) -> None:
        from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

        HTTPXClientInstrumentor.instrument_client(
            client, tracer_provider=self.provider, request_hook=_url_without_query
        )
        self._instrumented.add(client)

    def start_rpc_span(self, method: str, metadata: Sequence[tuple[str, Any]] | None) -> Any:
        """Starts the SERVER span of one RPC, child of the caller's trace context, and makes it
        current for the rest of the RPC's task (provider code and upstream requests)."""
        carrier = {
            key: value
            for key, value in metadata or ()
            if key in _TRACE_HEADERS and isinstance(value, str)
        }
        parent = propagate.extract(carrier) if carrier else None
        span = self.tracer.start_span(
            f"{SERVICE}/{method}",
            context=parent,
            kind=trace.SpanKind.SERVER,
            attributes={"rpc.system": "grpc", "rpc.service": SERVICE, "rpc.method": method},
        )
        # Never detached: gRPC runs each RPC in its own task, whose context ends with it (and a
        # stream's generator may be closed from another task, where a detach would fail).
        otel_context.attach(trace.set_span_in_context(span, parent))
        return span

    def shutdown(self) -> None:
        global _tracing_upstreams
        if self._remove_hook is not None:
            from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

            self._remove_hook()
            self._remove_hook = None
            for client in list(self._instrumented):
                HTTPXClientInstrumentor.uninstrument_client(client)
            _tracing_upstreams = None
        self.provider.shutdown()


# The server whose tracing instruments the pooled upstream clients, if any.
_tracing_upstreams: Tracing | None = None


def end_rpc_span(
    span: Any, code: str, reason: str, attributes: Mapping[str, str | int | float]
) -> None:
    span.set_attribute("rpc.grpc.status_code", code)
    for key, value in attributes.items():
        span.set_attribute(key, value)
    if reason:
        span.set_attribute("modelruntime.error.reason", reason)
    if code not in ("OK", "CANCELLED"):
        span.set_status(trace.Status(trace.StatusCode.ERROR, reason or code))
    span.end()


def _configured_exporter() -> SpanExporter | None:
    kind = os.environ.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower()
    if kind == "none":
        return None
    if kind == "console":
        return ConsoleSpanExporter()
    if kind != "otlp":
        logger.warning("OTEL_TRACES_EXPORTER=%s is not supported; using otlp", kind)
    protocol = (
        os.environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        or os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
        or "grpc"
    ).strip()
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    elif protocol == "http/protobuf":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # type: ignore[assignment]
            OTLPSpanExporter,
        )
    else:
        raise ValueError(f"OTEL_EXPORTER_OTLP_PROTOCOL={protocol} is not supported")
    return OTLPSpanExporter()


_URL_ATTRIBUTES = ("url.full", "http.url")


async def _url_without_query(span: Any, request: Any) -> None:
    if not span.is_recording():
        return
    text = str(request.url)
    if "?" in text:
        bare = text.split("?", 1)[0]
        for attribute in _URL_ATTRIBUTES:
            if attribute in span.attributes:
                span.set_attribute(attribute, bare)
