"""Real servers with security settings, one per test module or test (the session's server in
tests/conftest.py has none). They serve only the fake provider, the test-only providers and the
`recorder` provider beside this file (which records every call that reaches it), so these tests
depend on nothing but the SDK and the server."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from conftest import TEST_PROVIDERS, ServerThread

from modelruntime.client import ModelRuntimeClient
from server.config import ServerConfig

from . import recorded

FAKE_PROVIDER = Path(__file__).parents[2] / "providers" / "fake"
RECORDER_PROVIDER = Path(__file__).parent / "recorder"
CALL_TIMEOUT = 10.0


def security_config(**settings: Any) -> ServerConfig:
    return ServerConfig.model_validate(
        {
            "address": "127.0.0.1:0",
            "include_builtin_providers": False,
            "provider_paths": [FAKE_PROVIDER, TEST_PROVIDERS, RECORDER_PROVIDER],
            "sync_workers": 4,
            # One attempt per call: these tests check what each attempt does to a credential
            # set; retries across a set's keys are tested in tests/resilience.
            "retries": {"max_attempts": 1},
            **settings,
        }
    )


@contextmanager
def serving(**settings: Any) -> Iterator[ServerThread]:
    """A real server on a free loopback port with these config settings, stopped afterwards."""
    thread = ServerThread(security_config(**settings)).start()
    try:
        yield thread
    finally:
        thread.stop()


@pytest.fixture(scope="module")
def plain_server() -> Iterator[ServerThread]:
    """A server with the default (off) security settings."""
    with serving() as thread:
        yield thread


@pytest.fixture(scope="module")
def plain_client(plain_server: ServerThread) -> Iterator[ModelRuntimeClient]:
    with ModelRuntimeClient(plain_server.address, default_timeout=CALL_TIMEOUT) as client:
        yield client


@pytest.fixture(autouse=True)
def _fresh_record() -> None:
    recorded.clear()
