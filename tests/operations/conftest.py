"""Servers of their own for the operations tests, since each test needs a config of its own
(metrics, tracing, keepalive, drain): real `modelruntime serve` processes, or servers in a
background event loop of this process when a test needs an in-memory span exporter.

They load only the fake provider and the test-only `relay` provider (which streams from a fake
upstream over HTTP), so a half-written provider elsewhere in the tree cannot break them.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from server.app import start_server
from server.config import ServerConfig

from ._support import InProcessServer, LoopThread, ServeProcess, ops_config


@pytest.fixture
def serve_process(tmp_path: Path) -> Iterator[Any]:
    """Starts `modelruntime serve` processes (`serve_process(name, **settings)`); any still
    running at the end of the test is killed."""
    started: list[ServeProcess] = []

    def start(
        name: str = "server", env: dict[str, str] | None = None, wait: bool = True, **settings: Any
    ) -> Any:
        """`wait=False` launches without waiting for the ready file (call `wait_ready()`), so
        several servers can start at once."""
        process = ServeProcess(tmp_path, name, **settings)
        started.append(process)
        process.launch(env)
        return process.wait_ready() if wait else process

    yield start
    for process in started:
        process.kill()


@pytest.fixture
def in_process_server() -> Iterator[Any]:
    """Starts servers in this process (`in_process_server(span_exporter=..., **settings)`)."""
    loop = LoopThread()
    servers: list[InProcessServer] = []

    def start(span_exporter: Any = None, **settings: Any) -> InProcessServer:
        config = ServerConfig.model_validate(ops_config(**settings))
        running = loop.run(start_server(config, span_exporter=span_exporter))
        server = InProcessServer(loop, running)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()
    loop.close()


@pytest.fixture
def upstream() -> Iterator[Any]:
    """A fake upstream HTTP server on loopback for the relay provider."""
    from upstreams.upstream import FakeUpstream

    with FakeUpstream() as fake:
        yield fake
