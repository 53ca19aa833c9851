"""Builds and runs the gRPC server: the servicer, health checking and reflection.

Shutdown (the drain, `RunningServer.drain`): on SIGTERM or SIGINT health turns NOT_SERVING and
calls that still reach the servicer are refused with UNAVAILABLE / SHUTTING_DOWN; after
`drain_delay_seconds` the server sends GOAWAY and closes its listener, so clients move to other
replicas, while calls in flight go on; when `grace_period_seconds` (counted from the signal) runs
out, the calls left are cut with UNAVAILABLE / SHUTTING_DOWN and their upstream requests closed;
then the process exits 0. A second signal cuts at once.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from modelruntime.v1 import model_runtime_service_pb2 as pb
from modelruntime.v1 import model_runtime_service_pb2_grpc as pb_grpc
from providers.sdk import ProviderRegistry
from providers.sdk.concurrency import configure_executor
from providers.sdk.http import close_clients
from providers.sdk.outbound import configure_outbound
from server.config import ServerConfig
from server.observability.logs import configure_logging
from server.observability.metrics import KnownLabels, MetricsEndpoint, RpcMetrics
from server.observability.rpc import RpcHooks, SecretFields
from server.retries import Retries
from server.security.build import build_security
from server.servicer import ModelRuntimeServicer

if TYPE_CHECKING:
    from opentelemetry.sdk.trace.export import SpanExporter

    from server.observability.tracing import Tracing

logger = logging.getLogger("modelruntime")

# After the grace period, how long the cut calls get to send their status before gRPC cancels
# whatever is left (health watches, reflection streams).
CUT_MARGIN_SECONDS = 5.0

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["ModelRuntimeService"].full_name


@dataclass
class RunningServer:
    server: grpc.aio.Server
    port: int
    health: health.aio.HealthServicer
    registry: ProviderRegistry
    hooks: RpcHooks = field(default_factory=RpcHooks)
    metrics_endpoint: MetricsEndpoint | None = None
    tracing: Tracing | None = None

    async def set_serving(self, serving: bool) -> None:
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if serving
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for name in ("", SERVICE_NAME):
            await self.health.set(name, status)

    async def drain(self, grace_period: float, delay: float = 0.0) -> None:
        """Stops the server the way the module docstring tells; returns once it has stopped."""
        loop = asyncio.get_running_loop()
        cut_at = loop.time() + grace_period
        self.hooks.start_draining(grace_period)
        await self.set_serving(False)
        if delay > 0:
            await asyncio.sleep(min(delay, grace_period))
        # GOAWAY and no more connections; calls in flight go on (gRPC's own limit is a backstop).
        closing = asyncio.create_task(
            self.server.stop(max(cut_at - loop.time(), 0.0) + CUT_MARGIN_SECONDS)
        )
        if not await self.hooks.wait_idle(max(cut_at - loop.time(), 0.0)):
            cut = self.hooks.cut_in_flight()
            logger.warning("grace period over: ending %d call(s) with SHUTTING_DOWN", cut)
            await self.hooks.wait_idle(CUT_MARGIN_SECONDS)
        # What is left is not ours to wait for (health watches, reflection): end it now.
        await self.server.stop(0)
        await closing

    async def close(self) -> None:
        """Releases what the server holds besides its port: pooled upstream connections, the
        metrics endpoint, the tracer (flushing its spans)."""
        await close_clients()
        if self.metrics_endpoint is not None:
            self.metrics_endpoint.close()
        if self.tracing is not None:
            self.tracing.shutdown()


def load_registry(config: ServerConfig) -> ProviderRegistry:
    return ProviderRegistry.load(
        config.provider_paths,
        include_builtin=config.include_builtin_providers,
        enabled=config.providers,
    )


async def start_server(
    config: ServerConfig,
    registry: ProviderRegistry | None = None,
    *,
    span_exporter: SpanExporter | None = None,
) -> RunningServer:
    """Starts serving on `config.address` (port 0 picks a free port) and reports SERVING.
    `span_exporter` turns tracing on with that exporter instead of the OTEL_* configured one."""
    configure_executor(config.sync_workers)
    configure_outbound(config.outbound.policy())
    registry = registry or load_registry(config)
    security = build_security(config, registry)
    server = grpc.aio.server(
        interceptors=security.interceptors,
        options=[
            ("grpc.max_receive_message_length", security.transport_receive_limit),
            ("grpc.max_send_message_length", config.max_send_message_bytes),
            *config.keepalive.grpc_options(),
        ],
    )
    metrics = RpcMetrics(KnownLabels(registry)) if config.metrics_address else None
    if metrics is not None and config.debug_metrics:
        metrics.count_event_loop_tasks(asyncio.get_running_loop())
    tracing = None
    if config.tracing or span_exporter is not None:
        from server.observability.tracing import Tracing

        tracing = Tracing(span_exporter)
    hooks = RpcHooks(metrics, tracing, SecretFields(registry))
    retries = Retries(config.retries, registry, metrics)
    servicer = ModelRuntimeServicer(registry, hooks, security.guard, retries)
    pb_grpc.add_ModelRuntimeServiceServicer_to_server(servicer, server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        [SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME], server
    )
    port = security.add_port(server, config.address)
    if port == 0:
        raise OSError(f"cannot listen on {config.address}")
    await server.start()
    endpoint = None
    if metrics is not None and config.metrics_address:
        endpoint = MetricsEndpoint(metrics, config.metrics_address)
    running = RunningServer(server, port, health_servicer, registry, hooks, endpoint, tracing)
    await running.set_serving(True)
    return running


async def serve(config: ServerConfig, ready_file: Path | None = None) -> None:
    configure_logging(config.log_level, config.log_format)
    running = await start_server(config)
    # The cycle collector took 8-10% of the server's CPU with 500 long-lived streams (the
    # benchmark's profile): every streamed chunk allocates dozens of short-lived containers, so
    # at Python's default threshold (700) it ran every few chunks. Everything loaded so far
    # (modules, provider schemas, protobuf descriptors) lives as long as the process and is
    # moved out of its sight; a young collection every 10,000 allocations took it out of the
    # profile, for at most a few MB of cyclic garbage waiting a little longer.
    gc.freeze()
    gc.set_threshold(10_000, 20, 20)
    host = config.address.rpartition(":")[0]
    logger.info(
        "modelruntime listening on %s:%d with providers: %s",
        host,
        running.port,
        ", ".join(p.name for p in running.registry.providers),
    )
    if ready_file is not None:
        # For tests and supervisors that start the server on port 0: the file appears, whole,
        # once the server is serving, and holds the address it listens on.
        partial = ready_file.with_name(ready_file.name + ".partial")
        partial.write_text(f"{host}:{running.port}\n", encoding="utf-8")
        partial.replace(ready_file)
    if running.metrics_endpoint is not None:
        logger.info("metrics on %s", running.metrics_endpoint.url)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()

    def cut_now() -> None:
        logger.warning("second signal: ending %d call(s) now", running.hooks.cut_in_flight())

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, cut_now)
    logger.info(
        "shutting down: draining %d call(s) for up to %.1fs",
        len(running.hooks.in_flight),
        config.grace_period_seconds,
    )
    await running.drain(config.grace_period_seconds, config.drain_delay_seconds)
    await running.close()
    logger.info("stopped")
