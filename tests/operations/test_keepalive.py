"""The `keepalive` config section reaches grpc: connections are GOAWAY'd at their maximum age
while a stream in progress finishes within the grace (and one that outlives it is cut), idle
clients reconnect; the server pings idle connections and drops one whose ping goes unanswered;
it tolerates client pings as often as configured, and not on a connection without calls when
that is not permitted."""

from __future__ import annotations

import threading
import time
from typing import Any

import grpc
import pytest

from modelruntime import client as mr

from ._support import CALL_TIMEOUT, FAKE_CREDENTIALS
from .raw_http2 import ENHANCE_YOUR_CALM, RawHttp2, goaways, server_pings

WORDS = " ".join(f"w{i}" for i in range(25))


class ChannelStates:
    """The connectivity states a channel goes through, as they happen."""

    def __init__(self, channel: grpc.Channel) -> None:
        self.seen: list[grpc.ChannelConnectivity] = []
        self._changed = threading.Condition()
        channel.subscribe(self._record, try_to_connect=False)

    def _record(self, state: grpc.ChannelConnectivity) -> None:
        with self._changed:
            self.seen.append(state)
            self._changed.notify_all()

    def wait_for(self, state: grpc.ChannelConnectivity, after: int, timeout: float) -> bool:
        """True once `state` is seen past the first `after` states."""
        with self._changed:
            return self._changed.wait_for(lambda: state in self.seen[after:], timeout)


def test_connections_are_recycled_at_max_age_and_streams_finish_within_the_grace(
    in_process_server: Any,
) -> None:
    server = in_process_server(
        keepalive={"max_connection_age_seconds": 1, "max_connection_age_grace_seconds": 4}
    )
    with grpc.insecure_channel(server.address) as channel:
        states = ChannelStates(channel)
        client = mr.ModelRuntimeClient.from_channel(channel, default_timeout=CALL_TIMEOUT)
        # 25 chunks 100 ms apart: the stream spans the GOAWAY at about 1 s.
        chunks = client.stream_llm(
            "fake",
            "fake-chat",
            FAKE_CREDENTIALS,
            "hi",
            model_parameters={"reply": WORDS, "chunk_delay_ms": 100},
        )
        assert "".join(c.delta.message.content for c in chunks) == WORDS
        # Callbacks come from another thread, possibly after the call returned: wait for them.
        assert states.wait_for(grpc.ChannelConnectivity.READY, 0, timeout=5), states.seen
        ready = states.seen.index(grpc.ChannelConnectivity.READY)
        assert states.wait_for(grpc.ChannelConnectivity.IDLE, ready, timeout=5), states.seen

        # The idle client reconnects on its next call.
        went_idle = states.seen.index(grpc.ChannelConnectivity.IDLE, ready)
        assert client.list_providers()
        assert states.wait_for(grpc.ChannelConnectivity.READY, went_idle, timeout=5), states.seen


def test_a_stream_that_outlives_the_age_grace_is_cut(in_process_server: Any) -> None:
    server = in_process_server(
        keepalive={"max_connection_age_seconds": 0.5, "max_connection_age_grace_seconds": 0.5}
    )
    started = time.monotonic()
    with (
        mr.ModelRuntimeClient(server.address, default_timeout=CALL_TIMEOUT) as client,
        pytest.raises(mr.ModelRuntimeError) as cut,
    ):
        for _ in client.stream_llm(
            "fake",
            "fake-chat",
            FAKE_CREDENTIALS,
            "hi",
            model_parameters={"reply": WORDS, "chunk_delay_ms": 200},
        ):
            pass
    # A transport-level cut: grpc's status, no ErrorInfo.
    assert cut.value.code == grpc.StatusCode.UNAVAILABLE
    assert cut.value.reason == ""
    assert time.monotonic() - started < 4, "the 5 s stream should end at about 1 s"


def test_the_server_pings_idle_connections_and_drops_one_that_does_not_answer(
    in_process_server: Any,
) -> None:
    server = in_process_server(
        keepalive={"keepalive_time_seconds": 0.3, "keepalive_timeout_seconds": 0.5}
    )
    with RawHttp2(server.address, answer_pings=True) as answering:
        assert len(server_pings(answering.read_for(2))) >= 3
        assert not answering.closed

    with RawHttp2(server.address, answer_pings=False) as silent:
        silent.read_for(5)
        assert server_pings(silent.frames)
        assert silent.closed, "a connection whose ping went unanswered should be closed"


def ping_rapidly(address: str, pings: int = 8) -> RawHttp2:
    with RawHttp2(address) as connection:
        connection.read_for(0.2)
        for _ in range(pings):
            connection.ping()
            connection.read_for(0.2)
            if connection.closed:
                break
        return connection


def test_client_pings_are_allowed_as_often_as_configured(in_process_server: Any) -> None:
    tolerant = in_process_server(keepalive={"min_ping_interval_seconds": 0.1})
    connection = ping_rapidly(tolerant.address)
    assert not goaways(connection.frames)
    assert not connection.closed


@pytest.mark.parametrize(
    "keepalive",
    [
        # 10 s between pings by default: five in a second are abuse.
        {},
        # Frequent pings are fine, but not on a connection without calls.
        {"min_ping_interval_seconds": 0.1, "keepalive_permit_without_calls": False},
    ],
    ids=["min-interval", "no-pings-without-calls"],
)
def test_too_frequent_client_pings_get_goaway(
    in_process_server: Any, keepalive: dict[str, Any]
) -> None:
    server = in_process_server(keepalive=keepalive)
    connection = ping_rapidly(server.address)
    refusals = goaways(connection.frames)
    assert refusals, "expected GOAWAY too_many_pings"
    assert refusals[-1].goaway_error == ENHANCE_YOUR_CALM
    assert b"too_many_pings" in refusals[-1].payload
