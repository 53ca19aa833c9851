"""Provider tests: the session's real modelruntime server (tests/conftest.py, which loads every
built-in provider), the real Python client, and fake upstreams on loopback (upstream.py).

Credentials in these tests point the provider at a fake upstream's URL; keys are obviously fake.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from modelruntime.client import AsyncModelRuntimeClient, ModelRuntimeClient

from .upstream import FakeUpstream

CALL_TIMEOUT = 10.0


@pytest.fixture(scope="module")
def client(address: str) -> Iterator[ModelRuntimeClient]:
    with ModelRuntimeClient(address, default_timeout=CALL_TIMEOUT) as sync_client:
        yield sync_client


@pytest.fixture
async def async_client(address: str) -> AsyncModelRuntimeClient:
    async with AsyncModelRuntimeClient(address, default_timeout=CALL_TIMEOUT) as aio_client:
        yield aio_client  # type: ignore[misc]


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeUpstream]:
    """One fake upstream per test module; scripts and records are cleared before each test."""
    with FakeUpstream() as fake:
        yield fake


@pytest.fixture(autouse=True)
def _fresh_upstream_script(request: pytest.FixtureRequest) -> None:
    if "upstream" in request.fixturenames:
        request.getfixturevalue("upstream").reset()
