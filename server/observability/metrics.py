"""Prometheus metrics, served on their own HTTP port (never the gRPC one).

Every label value is bounded: method names are the service's RPCs, codes are gRPC's, reasons are
the proto's ErrorReason names, and provider, model and currency are the ones the loaded provider
YAML files name; anything else a caller sends (a customizable model's free-form name, an unknown
provider) is counted as "other". No user id, credential or text from a request becomes a label.

Metrics are updated once per RPC, when it ends (plus a gauge step when a stream opens and
closes), never per chunk.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterable
from decimal import Decimal, InvalidOperation
from wsgiref.simple_server import WSGIServer

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    ProcessCollector,
    disable_created_metrics,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from providers.sdk import ProviderRegistry

OTHER = "other"

# RPC latency: from a few milliseconds (schemas, token counts) to long generations.
DURATION_BUCKETS = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    120.0,
    300.0,
    600.0,
)
# Time to first token: what a person waiting for the first word feels.
TTFT_BUCKETS = (0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 20.0, 30.0, 60.0)


class KnownLabels:
    """The provider, model and currency names label values may take: those of the loaded
    provider YAML files."""

    def __init__(self, registry: ProviderRegistry) -> None:
        self.providers = frozenset(p.name for p in registry.providers)
        self.models = frozenset(
            (p.name, m.model) for p in registry.providers for m in p.schema.models
        )
        self.currencies = frozenset(
            {"USD"}
            | {m.pricing.currency for p in registry.providers for m in p.schema.models if m.pricing}
        )

    def provider(self, name: str) -> str:
        if not name:
            return ""
        return name if name in self.providers else OTHER

    def model(self, provider: str, name: str) -> str:
        if not name:
            return ""
        return name if (provider, name) in self.models else OTHER

    def currency(self, code: str) -> str:
        return code if code in self.currencies else OTHER


class RpcMetrics:
    """The service's metrics, in a registry of their own (so several servers in one process,
    as in the tests, do not collide)."""

    def __init__(self, labels: KnownLabels) -> None:
        self.labels = labels
        # One `_created` series per labelled counter doubles the scrape for nothing we use.
        disable_created_metrics()  # type: ignore[no-untyped-call]
        self.registry = CollectorRegistry()
        registry = self.registry
        # The process's CPU, memory and file descriptors, and the garbage collector.
        ProcessCollector(registry=registry)
        GCCollector(registry=registry)
        self.rpcs = Counter(
            "modelruntime_rpcs",
            "RPCs finished, by method, provider and gRPC status code.",
            ["method", "provider", "code"],
            registry=registry,
        )
        self.duration = Histogram(
            "modelruntime_rpc_duration_seconds",
            "Seconds from receiving an RPC to its end (a stream's last message or failure).",
            ["method"],
            buckets=DURATION_BUCKETS,
            registry=registry,
        )
        self.time_to_first_token = Histogram(
            "modelruntime_time_to_first_token_seconds",
            "Seconds from receiving a streamed LLM call to the first output from the upstream.",
            ["provider", "model"],
            buckets=TTFT_BUCKETS,
            registry=registry,
        )
        self.tokens = Counter(
            "modelruntime_tokens",
            "Tokens billed, by provider, model and direction (input: prompt, output: completion).",
            ["provider", "model", "direction"],
            registry=registry,
        )
        self.price = Counter(
            "modelruntime_price",
            "Price of the calls (from the model's pricing), by provider, model and currency.",
            ["provider", "model", "currency"],
            registry=registry,
        )
        self.active_streams = Gauge(
            "modelruntime_active_streams",
            "Server-streaming RPCs open right now.",
            ["method"],
            registry=registry,
        )
        self.in_flight = Gauge(
            "modelruntime_rpcs_in_flight",
            "RPCs of the model runtime service being served right now.",
            registry=registry,
        )
        self.upstream_errors = Counter(
            "modelruntime_upstream_errors",
            "Calls that failed because of the upstream, by provider, model and error reason.",
            ["provider", "model", "reason"],
            registry=registry,
        )
        self.draining = Gauge(
            "modelruntime_draining",
            "1 while the server drains before it stops, else 0.",
            registry=registry,
        )
        self.retries = Counter(
            "modelruntime_retries",
            "Upstream calls attempted again after a retryable failure, by method, provider and "
            "the failure's reason.",
            ["method", "provider", "reason"],
            registry=registry,
        )
        self._stream_gauges = {
            method: self.active_streams.labels(method) for method in ("StreamLLM", "InvokeTTS")
        }

    def stream_opened(self, method: str) -> None:
        self._stream_gauges[method].inc()

    def stream_closed(self, method: str) -> None:
        self._stream_gauges[method].dec()

    def finished(
        self,
        method: str,
        provider: str,
        model: str,
        code: str,
        seconds: float,
        upstream_reason: str | None,
    ) -> None:
        provider_label = self.labels.provider(provider)
        self.rpcs.labels(method, provider_label, code).inc()
        self.duration.labels(method).observe(seconds)
        if upstream_reason:
            self.upstream_errors.labels(
                provider_label, self.labels.model(provider, model), upstream_reason
            ).inc()

    def retried(self, method: str, provider: str, reason: str) -> None:
        self.retries.labels(method, self.labels.provider(provider), reason).inc()

    def count_event_loop_tasks(self, loop: asyncio.AbstractEventLoop) -> None:
        """Adds the debug gauge `modelruntime_event_loop_tasks`: the tasks not yet done on the
        server's event loop, counted on that loop at each scrape (the endpoint serves from
        another thread). Tests use it to prove a fault left no task behind."""
        self.registry.register(_EventLoopTasks(loop))

    def usage(
        self,
        provider: str,
        model: str,
        input_tokens: int,
        output_tokens: int,
        price: str,
        currency: str,
        time_to_first_token: float | None,
    ) -> None:
        provider_label = self.labels.provider(provider)
        model_label = self.labels.model(provider, model)
        if input_tokens:
            self.tokens.labels(provider_label, model_label, "input").inc(input_tokens)
        if output_tokens:
            self.tokens.labels(provider_label, model_label, "output").inc(output_tokens)
        amount = _amount(price)
        if amount:
            self.price.labels(provider_label, model_label, self.labels.currency(currency)).inc(
                amount
            )
        if time_to_first_token is not None:
            self.time_to_first_token.labels(provider_label, model_label).observe(
                time_to_first_token
            )


def _amount(price: str) -> float:
    if not price:
        return 0.0
    try:
        value = Decimal(price)
    except InvalidOperation:
        return 0.0
    return float(value) if value.is_finite() and value > 0 else 0.0


class _EventLoopTasks(Collector):
    # A scrape waits this long for a busy loop before it leaves the gauge out.
    _WAIT = 2.0

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def collect(self) -> Iterable[Metric]:
        async def count() -> int:
            return len(asyncio.all_tasks()) - 1  # not this one

        try:
            future = asyncio.run_coroutine_threadsafe(count(), self._loop)
        except RuntimeError:  # the loop is closed
            return
        try:
            tasks = future.result(self._WAIT)
        except Exception:  # too busy: no sample rather than a wrong one
            future.cancel()
            return
        yield GaugeMetricFamily(
            "modelruntime_event_loop_tasks",
            "Tasks not yet done on the server's event loop (debug_metrics).",
            value=tasks,
        )


class MetricsEndpoint:
    """The HTTP server Prometheus scrapes (any path answers; `/metrics` by convention)."""

    def __init__(self, metrics: RpcMetrics, address: str) -> None:
        host, _, port = address.rpartition(":")
        host = host.strip("[]") or "0.0.0.0"
        self._server: WSGIServer
        self._thread: threading.Thread
        self._server, self._thread = start_http_server(int(port), host, metrics.registry)
        self.host = host
        self.port: int = self._server.server_port

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
