from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from modelruntime.client import AsyncModelRuntimeClient, ModelRuntimeClient

from ._stub import ClientTestStubServicer, StubServer


@pytest.fixture
def stub_server() -> Iterator[StubServer]:
    server = StubServer()
    yield server
    server.stop()


@pytest.fixture
def stub(stub_server: StubServer) -> ClientTestStubServicer:
    return stub_server.servicer


@pytest.fixture
def client(stub_server: StubServer) -> Iterator[ModelRuntimeClient]:
    with ModelRuntimeClient(stub_server.target, default_timeout=10) as client:
        yield client


@pytest.fixture
async def aclient(stub_server: StubServer) -> AsyncIterator[AsyncModelRuntimeClient]:
    async with AsyncModelRuntimeClient(stub_server.target, default_timeout=10) as client:
        yield client
