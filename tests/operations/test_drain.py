"""The graceful drain, with a real `modelruntime serve` process and a real SIGTERM: health turns
NOT_SERVING, new calls are refused with UNAVAILABLE / SHUTTING_DOWN, streams in flight run on for
the grace period, the ones that outlive it end with UNAVAILABLE / SHUTTING_DOWN and their upstream
request closed, and the process exits 0."""

from __future__ import annotations

import time
from typing import Any

import grpc
import pytest
from e2e._support import assert_error
from grpc_health.v1 import health_pb2, health_pb2_grpc

from modelruntime import client as mr
from server.app import SERVICE_NAME

from ._support import CALL_TIMEOUT, FAKE_CREDENTIALS, relay_credentials, slow_relay

UNAVAILABLE = grpc.StatusCode.UNAVAILABLE
EXIT_TIMEOUT = 30.0


def health_status(address: str, service: str) -> Any:
    with grpc.insecure_channel(address) as channel:
        answer = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=service), timeout=5
        )
        return answer.status


def wait_not_serving(address: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if health_status(address, SERVICE_NAME) == health_pb2.HealthCheckResponse.NOT_SERVING:
            return
        time.sleep(0.05)
    raise AssertionError(f"health still SERVING {timeout}s after SIGTERM")


def test_sigterm_turns_health_not_serving_refuses_new_calls_and_lets_streams_finish(
    serve_process: Any,
) -> None:
    # The drain delay keeps the listener open after SIGTERM, so the test can see what a
    # client that is still connected sees.
    server = serve_process(grace_period_seconds=30, drain_delay_seconds=5)
    words = [f"w{i}" for i in range(20)]
    reply = " ".join(words)

    with mr.ModelRuntimeClient(server.address, default_timeout=CALL_TIMEOUT) as client:
        assert health_status(server.address, "") == health_pb2.HealthCheckResponse.SERVING
        stream = client.stream_llm(
            "fake",
            "fake-chat",
            FAKE_CREDENTIALS,
            "hi",
            model_parameters={"reply": reply, "chunk_delay_ms": 100},
        )
        received = [next(stream).delta.message.content]
        server.terminate()

        wait_not_serving(server.address, timeout=5)
        assert health_status(server.address, "") == health_pb2.HealthCheckResponse.NOT_SERVING
        with pytest.raises(mr.ModelRuntimeError) as refused:
            client.invoke_llm("fake", "fake-chat", FAKE_CREDENTIALS, "hi", {})
        received += [chunk.delta.message.content for chunk in stream]

    assert_error(
        refused.value,
        mr.ShuttingDownError,
        UNAVAILABLE,
        "SHUTTING_DOWN",
        provider="fake",
        model="fake-chat",
    )
    assert "".join(received) == reply
    assert server.wait(EXIT_TIMEOUT) == 0
    log = server.log()
    assert "StreamLLM provider=fake model=fake-chat outcome=OK chunks=" in log
    assert "InvokeLLM provider=fake model=fake-chat outcome=ShuttingDownError" in log
    assert "Traceback" not in log


GRACE = 2.0


def test_streams_outliving_the_grace_period_end_with_shutting_down_and_close_their_upstream(
    serve_process: Any, upstream: Any
) -> None:
    upstream.route("POST", "/v1/relay", slow_relay(pieces=400, pause=0.05))
    server = serve_process(grace_period_seconds=GRACE)

    with mr.ModelRuntimeClient(server.address, default_timeout=CALL_TIMEOUT) as client:
        stream = client.stream_llm("relay", "relay-chat", relay_credentials(upstream), "hi")
        next(stream)
        signalled = time.monotonic()
        server.terminate()
        during_grace = 0
        with pytest.raises(mr.ModelRuntimeError) as cut:
            for _ in stream:
                during_grace += 1
        ended = time.monotonic()

        # The listener is closed: a new call cannot even connect.
        with pytest.raises(mr.ModelRuntimeError) as refused:
            client.list_providers(timeout=5)

    assert_error(
        cut.value,
        mr.ShuttingDownError,
        UNAVAILABLE,
        "SHUTTING_DOWN",
        provider="relay",
        model="relay-chat",
    )
    assert during_grace > 10, "the stream should have gone on during the grace period"
    # Generous bounds: a loaded machine may be slow to deliver the signal and the status.
    assert GRACE - 0.2 <= ended - signalled < GRACE + 5
    closed_at = upstream.last("/v1/relay").wait_disconnected(timeout=5)
    assert closed_at is not None, "the upstream request was left open"
    assert GRACE - 0.2 <= closed_at - signalled < GRACE + 5
    assert refused.value.code == UNAVAILABLE
    assert server.wait(EXIT_TIMEOUT) == 0
    log = server.log()
    assert (
        "StreamLLM provider=relay model=relay-chat outcome=ShuttingDownError" in log
        and "code=UNAVAILABLE reason=SHUTTING_DOWN" in log
    )
    assert "sk-test-not-a-real-key" not in log
    assert "Traceback" not in log


def test_a_second_signal_cuts_the_calls_in_flight_at_once(
    serve_process: Any, upstream: Any
) -> None:
    upstream.route("POST", "/v1/relay", slow_relay(pieces=2000, pause=0.05))
    server = serve_process(grace_period_seconds=60)

    with mr.ModelRuntimeClient(server.address, default_timeout=CALL_TIMEOUT) as client:
        stream = client.stream_llm("relay", "relay-chat", relay_credentials(upstream), "hi")
        next(stream)
        server.terminate()
        time.sleep(0.5)
        second = time.monotonic()
        server.terminate()
        with pytest.raises(mr.ModelRuntimeError) as cut:
            for _ in stream:
                pass
        ended = time.monotonic()

    assert_error(
        cut.value,
        mr.ShuttingDownError,
        UNAVAILABLE,
        "SHUTTING_DOWN",
        provider="relay",
        model="relay-chat",
    )
    assert ended - second < 5
    assert upstream.last("/v1/relay").wait_disconnected(timeout=5) is not None
    assert server.wait(EXIT_TIMEOUT) == 0


def test_a_caller_that_stopped_reading_does_not_hold_the_drain(serve_process: Any) -> None:
    # Big chunks fill the flow-control windows: the server ends up blocked writing to a caller
    # that reads one chunk and no more, which no status can reach; the drain still ends.
    server = serve_process(grace_period_seconds=1)
    big_words = " ".join(["w" * 5000] * 3000)
    with mr.ModelRuntimeClient(server.address, default_timeout=CALL_TIMEOUT) as client:
        stream = client.stream_llm(
            "fake",
            "fake-chat",
            FAKE_CREDENTIALS,
            "hi",
            model_parameters={"reply": big_words, "max_tokens": 8192},
        )
        next(stream)
        time.sleep(0.5)
        signalled = time.monotonic()
        server.terminate()
        assert server.wait(EXIT_TIMEOUT) == 0
        assert time.monotonic() - signalled < 1 + 10
        with pytest.raises(mr.ModelRuntimeError) as cut:
            for _ in stream:
                pass

    # The transport's status (the caller was not reading, so none of ours could get through).
    assert cut.value.code == UNAVAILABLE
    assert "outcome=ShuttingDownError" in server.log()
    assert "code=UNAVAILABLE reason=SHUTTING_DOWN" in server.log()
