"""Retries with a server-side credential set: a key that hits a rate limit rests, and the call
itself is retried at once with the set's next key, whatever the busy key's Retry-After."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from aiohttp import web
from conftest import ServerThread
from upstreams.fakes.openai_wire import chat_completion, error_body
from upstreams.upstream import FakeUpstream, Recorded, json_response

from modelruntime import client as mr
from modelruntime.v1 import model_runtime_service_pb2 as pb
from modelruntime.v1 import model_runtime_service_pb2_grpc as pb_grpc

from .conftest import CALL_TIMEOUT, retry_config

# Obviously fake keys, read by the server from the environment.
BUSY_KEY = "sk-test-busy-key-not-real"
OTHER_BUSY_KEY = "sk-test-other-busy-key-not-real"
FREE_KEY = "sk-test-free-key-not-real"
ENVIRONMENT = {
    "RESILIENCE_BUSY_KEY": BUSY_KEY,
    "RESILIENCE_OTHER_BUSY_KEY": OTHER_BUSY_KEY,
    "RESILIENCE_FREE_KEY": FREE_KEY,
}
BUSY_KEYS = {BUSY_KEY, OTHER_BUSY_KEY}


def credential_set(upstream: FakeUpstream, *key_variables: str) -> dict[str, Any]:
    return {
        "provider": "openai",
        "cooldown_seconds": 60,
        "credentials": [
            {"openai_api_key": {"env": variable}, "openai_api_base": upstream.url}
            for variable in key_variables
        ],
    }


@pytest.fixture
def server(upstream: FakeUpstream) -> Iterator[ServerThread]:
    """A fresh server per test: the sets' turns and rests start over."""
    sets = {
        "busy-then-free": credential_set(upstream, "RESILIENCE_BUSY_KEY", "RESILIENCE_FREE_KEY"),
        "all-busy": credential_set(upstream, "RESILIENCE_BUSY_KEY", "RESILIENCE_OTHER_BUSY_KEY"),
    }
    with pytest.MonkeyPatch.context() as env:
        for name, value in ENVIRONMENT.items():
            env.setenv(name, value)
        config = retry_config(security={"credential_sets": sets})
    thread = ServerThread(config).start()
    yield thread
    thread.stop()


@pytest.fixture
def stub(server: ServerThread) -> Iterator[pb_grpc.ModelRuntimeServiceStub]:
    with grpc.insecure_channel(server.address) as channel:
        yield pb_grpc.ModelRuntimeServiceStub(channel)


async def busy_keys_are_rate_limited(request: web.Request, recorded: Recorded) -> web.Response:
    if recorded.headers["authorization"].removeprefix("Bearer ") in BUSY_KEYS:
        body = error_body("Rate limit reached for requests", status=429)
        # Far over the server's cap: the same key would not be tried again in this call.
        return json_response(429, body, {"retry-after": "30"})
    return json_response(200, chat_completion("from the free key"))


def chat(credential_set: str) -> pb.InvokeLLMRequest:
    return pb.InvokeLLMRequest(
        provider="openai",
        model="gpt-4o-mini",
        credential_set=credential_set,
        prompt_messages=mr.to_prompt_messages("hi"),
    )


def keys_sent(upstream: FakeUpstream) -> list[str]:
    return [r.headers["authorization"].removeprefix("Bearer ") for r in upstream.requests]


def test_a_rate_limited_key_rests_and_the_call_is_retried_at_once_on_the_next(
    stub: pb_grpc.ModelRuntimeServiceStub, upstream: FakeUpstream
) -> None:
    upstream.route("POST", "/v1/chat/completions", busy_keys_are_rate_limited)

    first = stub.InvokeLLM(chat("busy-then-free"), timeout=CALL_TIMEOUT)
    second = stub.InvokeLLM(chat("busy-then-free"), timeout=CALL_TIMEOUT)

    assert first.result.message.content == second.result.message.content == "from the free key"
    # The busy key rests for the rest of the test: the second call goes straight to the free one.
    assert keys_sent(upstream) == [BUSY_KEY, FREE_KEY, FREE_KEY]


def test_when_every_key_is_rate_limited_the_caller_gets_the_rate_limit(
    stub: pb_grpc.ModelRuntimeServiceStub, upstream: FakeUpstream
) -> None:
    upstream.route("POST", "/v1/chat/completions", busy_keys_are_rate_limited)

    with pytest.raises(grpc.RpcError) as caught:
        stub.InvokeLLM(chat("all-busy"), timeout=CALL_TIMEOUT)
    error = mr.from_rpc_error(caught.value)

    assert type(error) is mr.InvokeRateLimitError
    assert (error.code, error.reason) == (grpc.StatusCode.RESOURCE_EXHAUSTED, "INVOKE_RATE_LIMIT")
    assert error.retry_after == 30.0
    # Each key once; the second's Retry-After is over the cap, so no third attempt.
    assert keys_sent(upstream) == [BUSY_KEY, OTHER_BUSY_KEY]
    assert not [key for key in BUSY_KEYS if key in str(error)]
