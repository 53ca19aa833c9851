"""Retries, on real servers of their own (the session's server makes one attempt per call): the
built-in OpenAI and OpenAI-compatible providers against a fake upstream on loopback, through the
real Python client.

The module's server keeps the default `retries:` settings, except that the
`openai_api_compatible` provider is allowed two attempts instead of three (a per-provider
override), and has a metrics endpoint with the debug gauges.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from conftest import ServerThread
from upstreams.upstream import FakeUpstream

from modelruntime.client import ModelRuntimeClient
from server.config import ServerConfig

CALL_TIMEOUT = 10.0
COMPATIBLE_ATTEMPTS = 2


def retry_config(**settings: Any) -> ServerConfig:
    return ServerConfig.model_validate(
        {
            "address": "127.0.0.1:0",
            "providers": ["openai", "openai_api_compatible"],
            "sync_workers": 4,
            "metrics_address": "127.0.0.1:0",
            "debug_metrics": True,
            "retries": {
                "providers": {"openai_api_compatible": {"max_attempts": COMPATIBLE_ATTEMPTS}}
            },
            **settings,
        }
    )


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream() as fake:
        yield fake


@pytest.fixture(autouse=True)
def _fresh_upstream_script(request: pytest.FixtureRequest) -> None:
    if "upstream" in request.fixturenames:
        request.getfixturevalue("upstream").reset()


@pytest.fixture(scope="module")
def retrying_server() -> Iterator[ServerThread]:
    server = ServerThread(retry_config()).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def client(retrying_server: ServerThread) -> Iterator[ModelRuntimeClient]:
    with ModelRuntimeClient(retrying_server.address, default_timeout=CALL_TIMEOUT) as client:
        yield client
