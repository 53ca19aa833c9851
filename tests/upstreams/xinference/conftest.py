"""Xinference provider tests: the session's real server and Python client against one fake
Xinference server per module (fake_xinference.py), reset before each test; and, for retries,
a server of their own with the default `retries:` settings."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import ServerThread

from modelruntime.client import ModelRuntimeClient
from server.config import ServerConfig

from ..conftest import CALL_TIMEOUT
from ..upstream import FakeUpstream
from .fake_xinference import FakeXinference

XINFERENCE = Path(__file__).resolve().parents[3] / "providers" / "xinference"


@pytest.fixture
def xinference(upstream: FakeUpstream) -> FakeXinference:
    """A fake Xinference server without authentication."""
    return FakeXinference(upstream)


@pytest.fixture
def secured(upstream: FakeUpstream) -> FakeXinference:
    """A fake Xinference server that requires its API key."""
    return FakeXinference(upstream, api_key="sk-xinference-test-not-a-real-key")


@pytest.fixture(scope="module")
def retrying_client() -> Iterator[ModelRuntimeClient]:
    """A client of a server that retries as configured by default (the session's server makes
    one attempt per call)."""
    config = ServerConfig(
        address="127.0.0.1:0",
        include_builtin_providers=False,
        provider_paths=[XINFERENCE],
        sync_workers=4,
    )
    server = ServerThread(config).start()
    try:
        with ModelRuntimeClient(server.address, default_timeout=CALL_TIMEOUT) as client:
            yield client
    finally:
        server.stop()
