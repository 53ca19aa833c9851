"""Builds and runs the gRPC server: the servicer, health checking and reflection.

Shutdown order: a signal sets an event; health turns NOT_SERVING so load balancers stop sending
new calls; the server stops accepting and lets in-flight calls finish for the grace period;
then the process exits.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from dataclasses import dataclass
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from modelruntime.v1 import model_runtime_service_pb2 as pb
from modelruntime.v1 import model_runtime_service_pb2_grpc as pb_grpc
from providers.sdk import ProviderRegistry
from providers.sdk.concurrency import configure_executor
from providers.sdk.outbound import configure_outbound
from server.config import ServerConfig
from server.servicer import ModelRuntimeServicer

logger = logging.getLogger("modelruntime")

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["ModelRuntimeService"].full_name


@dataclass
class RunningServer:
    server: grpc.aio.Server
    port: int
    health: health.aio.HealthServicer
    registry: ProviderRegistry

    async def set_serving(self, serving: bool) -> None:
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if serving
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for name in ("", SERVICE_NAME):
            await self.health.set(name, status)


def load_registry(config: ServerConfig) -> ProviderRegistry:
    return ProviderRegistry.load(
        config.provider_paths,
        include_builtin=config.include_builtin_providers,
        enabled=config.providers,
    )


async def start_server(
    config: ServerConfig, registry: ProviderRegistry | None = None
) -> RunningServer:
    """Starts serving on `config.address` (port 0 picks a free port) and reports SERVING."""
    configure_executor(config.sync_workers)
    configure_outbound(config.outbound.policy())
    registry = registry or load_registry(config)
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", config.max_receive_message_bytes),
            ("grpc.max_send_message_length", config.max_send_message_bytes),
        ]
    )
    pb_grpc.add_ModelRuntimeServiceServicer_to_server(ModelRuntimeServicer(registry), server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        [SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME], server
    )
    port = server.add_insecure_port(config.address)
    if port == 0:
        raise OSError(f"cannot listen on {config.address}")
    await server.start()
    running = RunningServer(server, port, health_servicer, registry)
    await running.set_serving(True)
    return running


async def serve(config: ServerConfig, ready_file: Path | None = None) -> None:
    running = await start_server(config)
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
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    logger.info("shutting down: draining for up to %.1fs", config.grace_period_seconds)
    await running.set_serving(False)
    await running.server.stop(config.grace_period_seconds)
    logger.info("stopped")
