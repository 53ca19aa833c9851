"""Clients and raw stubs on the session's real server (see tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest

from modelruntime.client import ModelRuntimeClient
from modelruntime.v1 import model_runtime_service_pb2_grpc as pb_grpc

from ._support import CALL_TIMEOUT


@pytest.fixture(scope="module")
def client(address: str) -> Iterator[ModelRuntimeClient]:
    with ModelRuntimeClient(address, default_timeout=CALL_TIMEOUT) as sync_client:
        yield sync_client


@pytest.fixture(scope="module")
def channel(address: str) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(address) as raw_channel:
        yield raw_channel


@pytest.fixture(scope="module")
def stub(channel: grpc.Channel) -> pb_grpc.ModelRuntimeServiceStub:
    return pb_grpc.ModelRuntimeServiceStub(channel)
