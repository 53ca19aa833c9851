"""Scaling out: three server processes behind client-side `round_robin` over their three
addresses. Calls spread over all three; one is stopped with SIGTERM mid-run; no call fails, and
in particular none that started after the stop (the stopped server drains what it has, and its
GOAWAY moves the client's new calls to the other two).

The client is configured the way docs/operating/operations.md recommends for callers of a
fleet: round_robin, and a retry policy for UNAVAILABLE (a SHUTTING_DOWN refusal is safe to
retry elsewhere: the server did nothing with the call)."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from typing import Any

import grpc

from modelruntime import client as mr

from ._support import CALL_TIMEOUT, FAKE_CREDENTIALS

SERVICE_CONFIG = {
    "loadBalancingConfig": [{"round_robin": {}}],
    "methodConfig": [
        {
            "name": [{"service": "modelruntime.v1.ModelRuntimeService"}],
            "retryPolicy": {
                "maxAttempts": 3,
                "initialBackoff": "0.05s",
                "maxBackoff": "0.5s",
                "backoffMultiplier": 2,
                "retryableStatusCodes": ["UNAVAILABLE"],
            },
        }
    ],
}
WORKERS = 4
# Each call streams 5 words 20 ms apart.
REPLY = "one two three four five"
BEFORE_STOP = 2.0
AFTER_STOP = 2.5
MAX_CALLS_PER_WORKER = 400


@dataclass(frozen=True)
class Call:
    started: float
    ended: float
    error: BaseException | None


def call_repeatedly(
    client: mr.ModelRuntimeClient, until: threading.Event, calls: list[Call]
) -> None:
    for _ in range(MAX_CALLS_PER_WORKER):
        if until.is_set():
            return
        started = time.monotonic()
        error: BaseException | None = None
        try:
            chunks = client.stream_llm(
                "fake",
                "fake-chat",
                FAKE_CREDENTIALS,
                "hi",
                model_parameters={"reply": REPLY, "chunk_delay_ms": 20},
            )
            text = "".join(c.delta.message.content for c in chunks)
            assert text == REPLY, text
        except BaseException as exc:  # recorded, judged by the test
            error = exc
        calls.append(Call(started, time.monotonic(), error))


def served(process: Any) -> int:
    return process.log().count("StreamLLM provider=fake model=fake-chat outcome=OK")


def test_three_replicas_behind_round_robin_lose_no_call_when_one_stops(
    serve_process: Any,
) -> None:
    replicas = [
        serve_process(f"replica-{i}", wait=False, grace_period_seconds=10) for i in range(3)
    ]
    for replica in replicas:
        replica.wait_ready()
    target = "ipv4:" + ",".join(r.address for r in replicas)
    options = [("grpc.service_config", json.dumps(SERVICE_CONFIG)), ("grpc.enable_retries", 1)]
    calls: list[Call] = []
    until = threading.Event()

    with grpc.insecure_channel(target, options=options) as channel:
        client = mr.ModelRuntimeClient.from_channel(channel, default_timeout=CALL_TIMEOUT)
        workers = [
            threading.Thread(target=call_repeatedly, args=(client, until, calls), daemon=True)
            for _ in range(WORKERS)
        ]
        for worker in workers:
            worker.start()
        time.sleep(BEFORE_STOP)
        spread_before_stop = [served(r) for r in replicas]
        stopped = replicas[1]
        stopped.terminate()
        stopped_at = time.monotonic()
        time.sleep(AFTER_STOP)
        until.set()
        for worker in workers:
            worker.join(CALL_TIMEOUT + 5)
        assert not any(w.is_alive() for w in workers)

    assert stopped.wait(30) == 0
    failures = [c for c in calls if c.error is not None]
    after_stop = [c for c in calls if c.started >= stopped_at]
    assert not [c for c in after_stop if c.error is not None], failures[:3]
    assert not failures, failures[:3]
    assert len(after_stop) >= 20, "calls should have gone on after the stop"
    # round_robin spread the calls over all three before the stop...
    assert all(count >= 3 for count in spread_before_stop), spread_before_stop
    # ...and the two survivors took everything after it.
    survivors = served(replicas[0]) + served(replicas[2])
    assert survivors - spread_before_stop[0] - spread_before_stop[2] >= len(after_stop)
