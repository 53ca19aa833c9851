"""Shared fixtures: one real modelruntime server per test session, on a loopback port.

The server runs in a background thread with its own event loop, so tests can call it with the
sync client and the asyncio client alike. Besides the built-in providers it loads the test-only
providers in tests/providers_for_tests (a sync one written in the seed's style, an async one that
records when its generator stops).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from server.app import RunningServer, start_server
from server.config import RetriesConfig, ServerConfig

TEST_PROVIDERS = Path(__file__).parent / "providers_for_tests"
FAKE_CREDENTIALS = {"api_key": "fake-test-key"}


class ServerThread:
    """A real server on 127.0.0.1:<free port>, served from a thread's event loop."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.loop = asyncio.new_event_loop()
        self.running: RunningServer | None = None
        self._started = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(
            target=self._run, name="modelruntime-test-server", daemon=True
        )

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.running = self.loop.run_until_complete(start_server(self.config))
        except BaseException as exc:  # reported to the test thread
            self._error = exc
        finally:
            self._started.set()
        if self.running is not None:
            self.loop.run_forever()

    def start(self) -> ServerThread:
        self._thread.start()
        if not self._started.wait(timeout=30):
            raise TimeoutError("test server did not start within 30 s")
        if self._error is not None:
            raise self._error
        return self

    @property
    def address(self) -> str:
        assert self.running is not None
        return f"127.0.0.1:{self.running.port}"

    def stop(self) -> None:
        if self.running is not None:
            future = asyncio.run_coroutine_threadsafe(self.running.server.stop(0), self.loop)
            future.result(timeout=10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)


@pytest.fixture(scope="session")
def server() -> Iterator[ServerThread]:
    # One attempt per call: the tests on this server check what each upstream answer becomes;
    # retries are tested on servers of their own (tests/faults, tests/resilience).
    config = ServerConfig(
        address="127.0.0.1:0",
        provider_paths=[TEST_PROVIDERS],
        sync_workers=8,
        retries=RetriesConfig(max_attempts=1),
    )
    thread = ServerThread(config).start()
    yield thread
    thread.stop()


@pytest.fixture(scope="session")
def address(server: ServerThread) -> str:
    return server.address
