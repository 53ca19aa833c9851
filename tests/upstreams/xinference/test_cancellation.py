"""A caller who cancels a stream closes its Xinference request at once (within 100 ms), so
the server stops generating."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from modelruntime import client as mr

from ..fakes.openai_wire import ChatStream, CompletionStream
from ._support import PROVIDER
from .fake_xinference import CHAT, GENERATE, FakeXinference, chat_stream, completion_stream

PIECES = 500


def endless_chat() -> tuple[str, ChatStream | CompletionStream]:
    script = chat_stream().role()
    for n in range(PIECES):
        script.content(f"w{n} ").pause(0.02)
    return "/v1/chat/completions", script.done()


def endless_completion() -> tuple[str, ChatStream | CompletionStream]:
    script = completion_stream()
    for n in range(PIECES):
        script.text(f"w{n} ").pause(0.02)
    return "/v1/completions", script.finish("stop")


@pytest.mark.parametrize(
    ("uid", "model", "scripted"),
    [(CHAT, "my-qwen", endless_chat), (GENERATE, "base", endless_completion)],
    ids=["chat", "completion"],
)
def test_cancelling_a_stream_closes_the_upstream_request_within_100_ms(
    client: mr.ModelRuntimeClient,
    xinference: FakeXinference,
    uid: str,
    model: str,
    scripted: Callable[[], tuple[str, ChatStream | CompletionStream]],
) -> None:
    path, script = scripted()
    xinference.script(path, script.handler())
    stream = client.stream_llm(PROVIDER, model, xinference.credentials(uid), "Go on")

    received = [next(stream) for _ in range(3)]
    cancelled_at = time.monotonic()
    stream.cancel()

    closed_at = xinference.upstream.last(path).wait_disconnected(timeout=2.0)
    assert len(received) == 3
    assert closed_at is not None, "the fake Xinference server never saw the request close"
    assert closed_at - cancelled_at < 0.1
    with pytest.raises(mr.CallCancelledError):
        next(stream)
