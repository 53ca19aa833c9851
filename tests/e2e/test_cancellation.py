"""A caller that stops reading stops the provider: the provider's generator must see the
cancellation within STOP_BOUND of the moment the caller gave up, so the upstream request (and
its bill) ends with it.

The test providers record `time.monotonic()` when their generator is cancelled or closed; they
run in this process (the server's thread and worker pool), so both clocks are the same.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from providers_for_tests import events

from modelruntime import client as mr

from ._support import CALL_TIMEOUT, CREDS, PROBE_CREDS, SEED_CREDS, assert_error, unique_tag

STOP_BOUND = 0.1
WAIT_FOR_STOP = 2.0
CHUNKS_BEFORE_CANCEL = 3

# The seed-style provider blocks in time.sleep(SYNC_DELAY) inside its generator, on a worker
# thread. A running generator cannot be closed, so GeneratorExit reaches it only when the step
# in progress returns: up to one chunk delay after the cancellation.
SYNC_DELAY_MS = 20
SYNC_STOP_BOUND = STOP_BOUND + SYNC_DELAY_MS / 1000

PROBE_DELAY_MS = 20


def probe_stream(client: Any, tag: str, **kwargs: Any) -> Any:
    return client.stream_llm(
        "async_probe",
        "endless",
        PROBE_CREDS,
        "hi",
        model_parameters={"tag": tag, "chunk_delay_ms": PROBE_DELAY_MS},
        **kwargs,
    )


def seed_stream(client: Any, tag: str, **kwargs: Any) -> Any:
    return client.stream_llm(
        "seed_style",
        "sync-echo",
        SEED_CREDS,
        "hi",
        model_parameters={"tag": tag, "chunk_delay_ms": SYNC_DELAY_MS, "words": 100_000},
        **kwargs,
    )


def assert_stopped_within(tag: str, since: float, bound: float) -> None:
    stopped = events.wait_stopped(tag, timeout=WAIT_FOR_STOP)
    assert stopped is not None, f"the provider's generator {tag} never stopped"
    assert stopped - since < bound, f"stopped {1000 * (stopped - since):.1f} ms after"


async def assert_stopped_within_async(tag: str, since: float, bound: float) -> None:
    # Waiting blocks; off the event loop so the client can finish its own cancellation.
    stopped = await asyncio.to_thread(events.wait_stopped, tag, WAIT_FOR_STOP)
    assert stopped is not None, f"the provider's generator {tag} never stopped"
    assert stopped - since < bound, f"stopped {1000 * (stopped - since):.1f} ms after"


def first_chunks(stream: Iterator[Any]) -> list[str]:
    return [next(stream).delta.message.content for _ in range(CHUNKS_BEFORE_CANCEL)]


# ---- sync client, async provider -----------------------------------------------------------


def test_breaking_out_of_the_loop_stops_the_provider(client: mr.ModelRuntimeClient) -> None:
    tag = unique_tag("sync-break")
    received = []

    for chunk in probe_stream(client, tag):
        received.append(chunk.delta.message.content)
        if len(received) == CHUNKS_BEFORE_CANCEL:
            cancelled_at = time.monotonic()
            break

    assert received == ["0 ", "1 ", "2 "]
    assert_stopped_within(tag, cancelled_at, STOP_BOUND)


def test_closing_the_stream_stops_the_provider(client: mr.ModelRuntimeClient) -> None:
    tag = unique_tag("sync-close")

    with probe_stream(client, tag) as stream:
        assert first_chunks(stream) == ["0 ", "1 ", "2 "]
        cancelled_at = time.monotonic()

    assert_stopped_within(tag, cancelled_at, STOP_BOUND)
    with pytest.raises(StopIteration):
        next(stream)


def test_cancel_from_another_thread_stops_the_provider_and_the_reader(
    client: mr.ModelRuntimeClient,
) -> None:
    tag = unique_tag("sync-cancel")
    stream = probe_stream(client, tag)
    reading = threading.Event()
    outcome: list[BaseException] = []

    def read() -> None:
        try:
            for i, _ in enumerate(stream):
                if i + 1 == CHUNKS_BEFORE_CANCEL:
                    reading.set()
        except BaseException as exc:
            outcome.append(exc)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    assert reading.wait(CALL_TIMEOUT)
    cancelled_at = time.monotonic()
    stream.cancel()  # the "stop" button
    reader.join(CALL_TIMEOUT)

    assert not reader.is_alive()
    assert_stopped_within(tag, cancelled_at, STOP_BOUND)
    assert len(outcome) == 1
    assert_error(outcome[0], mr.CallCancelledError, grpc.StatusCode.CANCELLED, "")


# ---- async client, async provider ----------------------------------------------------------


async def test_breaking_out_of_async_for_stops_the_provider(address: str) -> None:
    tag = unique_tag("async-break")
    received = []

    async with mr.AsyncModelRuntimeClient(address, default_timeout=CALL_TIMEOUT) as aclient:
        async for chunk in probe_stream(aclient, tag):
            received.append(chunk.delta.message.content)
            if len(received) == CHUNKS_BEFORE_CANCEL:
                cancelled_at = time.monotonic()
                break
        await assert_stopped_within_async(tag, cancelled_at, STOP_BOUND)

    assert received == ["0 ", "1 ", "2 "]


async def test_cancelling_the_consuming_task_stops_the_provider(address: str) -> None:
    tag = unique_tag("async-task")
    reading = asyncio.Event()

    async with mr.AsyncModelRuntimeClient(address, default_timeout=CALL_TIMEOUT) as aclient:

        async def consume() -> None:
            count = 0
            async for _ in probe_stream(aclient, tag):
                count += 1
                if count == CHUNKS_BEFORE_CANCEL:
                    reading.set()

        task = asyncio.create_task(consume())
        await asyncio.wait_for(reading.wait(), CALL_TIMEOUT)
        cancelled_at = time.monotonic()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await assert_stopped_within_async(tag, cancelled_at, STOP_BOUND)


async def test_aclose_stops_the_provider(address: str) -> None:
    tag = unique_tag("async-aclose")

    async with mr.AsyncModelRuntimeClient(address, default_timeout=CALL_TIMEOUT) as aclient:
        async with probe_stream(aclient, tag) as stream:
            received = [(await anext(stream)).delta.message.content for _ in range(3)]
            cancelled_at = time.monotonic()
        await assert_stopped_within_async(tag, cancelled_at, STOP_BOUND)

    assert received == ["0 ", "1 ", "2 "]


async def test_cancel_from_another_task_stops_the_provider_and_the_reader(address: str) -> None:
    tag = unique_tag("async-cancel")
    reading = asyncio.Event()

    async with mr.AsyncModelRuntimeClient(address, default_timeout=CALL_TIMEOUT) as aclient:
        stream = probe_stream(aclient, tag)

        async def consume() -> None:
            count = 0
            async for _ in stream:
                count += 1
                if count == CHUNKS_BEFORE_CANCEL:
                    reading.set()

        task = asyncio.create_task(consume())
        await asyncio.wait_for(reading.wait(), CALL_TIMEOUT)
        cancelled_at = time.monotonic()
        stream.cancel()
        # The client documents CallCancelledError for the reading task.
        with pytest.raises(mr.ModelRuntimeError) as caught:
            await asyncio.wait_for(task, CALL_TIMEOUT)
        await assert_stopped_within_async(tag, cancelled_at, STOP_BOUND)

    assert_error(caught.value, mr.CallCancelledError, grpc.StatusCode.CANCELLED, "")


# ---- the sync (seed-style) provider --------------------------------------------------------


def test_breaking_out_of_the_loop_closes_a_sync_provider_generator(
    client: mr.ModelRuntimeClient,
) -> None:
    tag = unique_tag("seed-break")
    received = []

    for chunk in seed_stream(client, tag):
        received.append(chunk.delta.message.content)
        if len(received) == CHUNKS_BEFORE_CANCEL:
            cancelled_at = time.monotonic()
            break

    assert received == ["w0 ", "w1 ", "w2 "]
    assert_stopped_within(tag, cancelled_at, SYNC_STOP_BOUND)


def test_closing_the_stream_closes_a_sync_provider_generator(
    client: mr.ModelRuntimeClient,
) -> None:
    tag = unique_tag("seed-close")

    with seed_stream(client, tag) as stream:
        assert first_chunks(stream) == ["w0 ", "w1 ", "w2 "]
        cancelled_at = time.monotonic()

    assert_stopped_within(tag, cancelled_at, SYNC_STOP_BOUND)


async def test_cancelling_the_task_closes_a_sync_provider_generator(address: str) -> None:
    tag = unique_tag("seed-task")
    reading = asyncio.Event()

    async with mr.AsyncModelRuntimeClient(address, default_timeout=CALL_TIMEOUT) as aclient:

        async def consume() -> None:
            count = 0
            async for _ in seed_stream(aclient, tag):
                count += 1
                if count == CHUNKS_BEFORE_CANCEL:
                    reading.set()

        task = asyncio.create_task(consume())
        await asyncio.wait_for(reading.wait(), CALL_TIMEOUT)
        cancelled_at = time.monotonic()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await assert_stopped_within_async(tag, cancelled_at, SYNC_STOP_BOUND)


# ---- deadlines and unary calls -------------------------------------------------------------

DEADLINE = 0.3


@pytest.mark.parametrize("style", ["async", "sync"])
def test_stream_deadline_stops_the_provider(client: mr.ModelRuntimeClient, style: str) -> None:
    tag = unique_tag(f"deadline-{style}")
    start = probe_stream if style == "async" else seed_stream
    bound = STOP_BOUND if style == "async" else SYNC_STOP_BOUND

    started = time.monotonic()
    with pytest.raises(mr.ModelRuntimeError) as caught:
        for _ in start(client, tag, timeout=DEADLINE):
            pass

    assert type(caught.value) is mr.InvokeTimeoutError
    assert caught.value.code == grpc.StatusCode.DEADLINE_EXCEEDED
    assert_stopped_within(tag, started + DEADLINE, bound)


def test_unary_deadline_stops_the_provider(client: mr.ModelRuntimeClient) -> None:
    tag = unique_tag("unary-deadline")

    started = time.monotonic()
    with pytest.raises(mr.ModelRuntimeError) as caught:
        client.invoke_llm(
            "async_probe", "endless", PROBE_CREDS, "hi", {"tag": tag}, timeout=DEADLINE
        )

    assert_error(
        caught.value,
        mr.InvokeTimeoutError,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        "INVOKE_TIMEOUT",
        provider="async_probe",
        model="endless",
    )
    assert_stopped_within(tag, started + DEADLINE, STOP_BOUND)


async def test_cancelling_a_unary_call_stops_the_provider(address: str) -> None:
    tag = unique_tag("unary-cancel")

    async with mr.AsyncModelRuntimeClient(address, default_timeout=CALL_TIMEOUT) as aclient:
        # An endless stream collected into one answer: the call can only end by cancellation.
        task = asyncio.create_task(
            aclient.invoke_llm("async_probe", "endless", PROBE_CREDS, "hi", {"tag": tag})
        )
        # No event marks "the provider is running" for a unary call; give it a few chunks.
        await asyncio.sleep(5 * PROBE_DELAY_MS / 1000)
        assert not task.done()
        cancelled_at = time.monotonic()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await assert_stopped_within_async(tag, cancelled_at, STOP_BOUND)


def test_server_keeps_serving_after_cancellations(client: mr.ModelRuntimeClient) -> None:
    tag = unique_tag("after")
    with probe_stream(client, tag) as stream:
        first_chunks(stream)

    result = client.invoke_llm("seed_style", "sync-echo", SEED_CREDS, "hi", {"words": 2})

    assert result.message.content == "w0 w1 "


# ---- the server's own record of a cancellation ---------------------------------------------

RACE_ROUNDS = 30


def test_a_cancel_that_lands_while_grpc_writes_is_logged_as_cancelled_never_as_a_bug(
    client: mr.ModelRuntimeClient, caplog: pytest.LogCaptureFixture
) -> None:
    # With chunks coming as fast as the provider can make them, the cancellation mostly lands
    # while gRPC is writing a message rather than while we wait for the provider: gRPC then
    # drops our generator and asyncio closes it later from another task. That path once ended
    # as InternalError (a context-variable reset in the wrong context). The server sends the
    # words that piled up during a write together, so a short answer is all out before the
    # cancel arrives; long words fill the flow-control windows of a caller that stopped
    # reading, so the cancel lands while gRPC still writes. Now and then a call may still end
    # OK (all sent first); never anything else.
    caplog.set_level("INFO", logger="modelruntime.rpc")
    reply = " ".join(f"w{i}" + "x" * 3000 for i in range(3000))
    for _ in range(RACE_ROUNDS):
        with client.stream_llm(
            "fake", "fake-chat", CREDS, "hi", model_parameters={"reply": reply, "max_tokens": 8192}
        ) as stream:
            next(stream)
            next(stream)

    def outcomes() -> list[str]:
        return [
            r.getMessage().split("outcome=")[1].split()[0]
            for r in caplog.records
            if r.name == "modelruntime.rpc" and r.getMessage().startswith("StreamLLM ")
        ]

    deadline = time.monotonic() + WAIT_FOR_STOP
    while len(outcomes()) < RACE_ROUNDS and time.monotonic() < deadline:
        time.sleep(0.02)
    seen = outcomes()
    assert len(seen) == RACE_ROUNDS
    assert set(seen) <= {"Cancelled", "OK"}
    assert seen.count("Cancelled") >= RACE_ROUNDS // 2
    assert not [r for r in caplog.records if r.levelname == "ERROR"]
