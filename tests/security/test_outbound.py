"""The outbound allow-list through a real server: a customizable model whose endpoint URL names
a forbidden address is refused with UPSTREAM_ADDRESS_FORBIDDEN and nothing reaches the upstream,
including when a host name resolves to a forbidden address; an allowed address works."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import grpc
import pytest
from conftest import ServerThread
from upstreams.fakes.openai_wire import ChatStream
from upstreams.upstream import FakeUpstream

from modelruntime import client as mr
from providers.sdk.outbound import configure_outbound
from server.config import ServerConfig

CALL_TIMEOUT = 10.0
CHAT = "/v1/chat/completions"


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream() as fake:
        fake.route("POST", CHAT, ChatStream.text("all", " good").handler())
        yield fake


@contextmanager
def server_allowing(**outbound: Any) -> Iterator[mr.ModelRuntimeClient]:
    config = ServerConfig.model_validate({"address": "127.0.0.1:0", "outbound": outbound})
    thread = ServerThread(config).start()
    try:
        with mr.ModelRuntimeClient(thread.address, default_timeout=CALL_TIMEOUT) as client:
            yield client
    finally:
        thread.stop()
        # The policy is process-wide; the session's server must not inherit it.
        configure_outbound(None)


def chat(client: mr.ModelRuntimeClient, endpoint: str) -> str:
    credentials = {"endpoint_url": endpoint, "endpoint_model_name": "m", "api_key": "sk-fake"}
    chunks = client.stream_llm("openai_api_compatible", "my-model", credentials, "hi")
    return "".join(chunk.delta.message.content for chunk in chunks)


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1"])
def test_a_forbidden_address_is_refused_before_anything_is_sent(
    upstream: FakeUpstream, host: str
) -> None:
    before = len(upstream.requests)
    with (
        server_allowing(allow_cidrs=["10.0.0.0/8"]) as client,
        pytest.raises(mr.ModelRuntimeError) as caught,
    ):
        chat(client, f"http://{host}:{upstream.port}/v1")
    assert caught.value.code == grpc.StatusCode.PERMISSION_DENIED
    assert caught.value.reason == "UPSTREAM_ADDRESS_FORBIDDEN"
    assert "127.0.0.1" in str(caught.value)
    assert len(upstream.requests) == before


def test_an_allowed_network_and_port_reach_the_upstream(upstream: FakeUpstream) -> None:
    with server_allowing(allow_cidrs=["127.0.0.0/8"], allow_ports=[upstream.port]) as client:
        assert chat(client, f"http://localhost:{upstream.port}/v1") == "all good"
        with pytest.raises(mr.ModelRuntimeError) as caught:
            chat(client, f"http://localhost:{upstream.port + 1}/v1")
    assert caught.value.reason == "UPSTREAM_ADDRESS_FORBIDDEN"
