"""Retries before the first chunk, through the real server and client against a fake upstream:
what is retried (refused or broken connections, unavailable servers, rate limits with a short
Retry-After) and what never is (a bad request, a refused key, a spent quota, anything after a
stream's first chunk); the backoff within the caller's deadline; every model type."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from aiohttp import web
from upstreams.fakes.openai_wire import (
    ChatStream,
    chat_completion,
    embeddings,
    error_reply,
    reply,
)
from upstreams.upstream import CUT, FakeUpstream, Handler, Recorded, write_stream

from modelruntime import client as mr

from .conftest import COMPATIBLE_ATTEMPTS

OPENAI = "openai"
COMPATIBLE = "openai_api_compatible"
KEY = "sk-test-not-a-real-key"
CHAT = "/v1/chat/completions"

UNAVAILABLE = (
    mr.InvokeServerUnavailableError,
    grpc.StatusCode.UNAVAILABLE,
    "INVOKE_SERVER_UNAVAILABLE",
)
CONNECTION = (mr.InvokeConnectionError, grpc.StatusCode.UNAVAILABLE, "INVOKE_CONNECTION_ERROR")
RATE_LIMIT = (mr.InvokeRateLimitError, grpc.StatusCode.RESOURCE_EXHAUSTED, "INVOKE_RATE_LIMIT")
BAD_REQUEST = (mr.InvokeBadRequestError, grpc.StatusCode.INVALID_ARGUMENT, "INVOKE_BAD_REQUEST")
AUTHORIZATION = (
    mr.InvokeAuthorizationError,
    grpc.StatusCode.PERMISSION_DENIED,
    "INVOKE_AUTHORIZATION",
)


def openai_creds(upstream: FakeUpstream) -> dict[str, str]:
    return {"openai_api_key": KEY, "openai_api_base": upstream.url}


def compatible_creds(upstream: FakeUpstream) -> dict[str, str]:
    return {"endpoint_url": f"{upstream.url}/v1", "api_key": KEY, "endpoint_model_name": "m"}


def in_turn(*handlers: Handler) -> Handler:
    """Answers with each handler in turn, the last one for every request after."""
    queue: Iterator[Handler] = iter(handlers)
    last = handlers[-1]

    async def answer(request: web.Request, recorded: Recorded) -> web.StreamResponse:
        return await next(queue, last)(request, recorded)

    return answer


def busy(retry_after: str | None = None) -> Handler:
    headers = {"retry-after": retry_after} if retry_after else None
    return error_reply(503, "The server is overloaded", headers=headers)


def requests_to(upstream: FakeUpstream, path: str) -> int:
    return len([r for r in upstream.requests if r.path == path])


def assert_error(
    exc: BaseException,
    error: type[mr.ModelRuntimeError],
    code: grpc.StatusCode,
    reason: str,
    *,
    retry_after: float | None = None,
) -> None:
    assert type(exc) is error, f"expected {error.__name__}, got {exc!r}"
    assert isinstance(exc, mr.ModelRuntimeError)
    assert (exc.code, exc.reason) == (code, reason)
    assert exc.retry_after == retry_after
    assert KEY not in str(exc)


def chat_error(client: mr.ModelRuntimeClient, upstream: FakeUpstream, **kwargs: Any) -> Any:
    with pytest.raises(mr.ModelRuntimeError) as caught:
        client.invoke_llm(OPENAI, "gpt-4o-mini", openai_creds(upstream), "hi", **kwargs)
    return caught.value


# ---- what is retried ---------------------------------------------------------------------------


def test_a_chat_answers_after_two_unavailable_attempts(
    client: mr.ModelRuntimeClient, upstream: FakeUpstream
) -> None:
    upstream.route("POST", CHAT, in_turn(busy(), busy(), reply(chat_completion("at last"))))

    result = client.invoke_llm(OPENAI, "gpt-4o-mini", openai_creds(upstream), "hi")

    assert result.message.content == "at last"
    assert requests_to(upstream, CHAT) == 3


def test_retries_end_after_the_configured_attempts_with_the_last_error(
    client: mr.ModelRuntimeClient, upstream: FakeUpstream
) -> None:
    upstream.route("POST", CHAT, busy())

    assert_error(chat_error(client, upstream), *UNAVAILABLE)
    assert requests_to(upstream, CHAT) == 3  # the default: three attempts in all


def test_a_provider_override_sets_its_own_attempts(
    client: mr.ModelRuntimeClient, upstream: FakeUpstream
) -> None:
    upstream.route("POST", CHAT, busy())

    with pytest.raises(mr.ModelRuntimeError) as caught:
        client.invoke_llm(COMPATIBLE, "my-model", compatible_creds(upstream), "hi")

    assert_error(caught.value, *UNAVAILABLE)
    assert requests_to(upstream, CHAT) == COMPATIBLE_ATTEMPTS


def test_a_connection_reset_before_the_answer_is_retried(
    client: mr.ModelRuntimeClient, upstream: FakeUpstream
) -> None:
    async def reset(request: web.Request, recorded: Recorded) -> web.StreamResponse:
        assert request.transport is not None
        request.transport.abort()
        return web.Response()

    upstream.route("POST", CHAT, in_turn(reset, reply(chat_completion("after a reset"))))

    result = client.invoke_llm(OPENAI, "gpt-4o-mini", openai_creds(upstream), "hi")

    assert result.message.content == "after a reset"
    assert requests_to(upstream, CHAT) == 2


def test_a_short_retry_after_is_waited_out(
    client: mr.ModelRuntimeClient, upstream: FakeUpstream
) -> None:
    limited = error_reply(429, "Rate limit reached", headers={"retry-after-ms": "400"})
    upstream.route("POST", CHAT, in_turn(limited, reply(chat_completion("waited"))))

    started = time.monotonic()
    result = client.invoke_llm(OPENAI, "gpt-4o-mini", openai_creds(upstream), "hi")

    assert result.message.content == "waited"
    assert time.monotonic() - started >= 0.4
    assert requests_to(upstream, CHAT) == 2


# ---- what is not -------------------------------------------------------------------------------


def test_a_retry_after_over_the_cap_is_the_callers_to_wait(
    client: mr.ModelRuntimeClient, upstream: FakeUpstream
) -> None:
    upstream.route(
        "POST", CHAT, error_reply(429, "Rate limit reached", headers={"retry-after": "5"})
    )

    assert_error(chat_error(client, upstream), *RATE_LIMIT, retry_after=5.0)
    assert requests_to(upstream, CHAT) == 1


def test_a_wait_the_deadline_does_not_allow_ends_the_retries_before_the_deadline(
    client: mr.ModelRuntimeClient, upstream: FakeUpstream
) -> None:
    # 0.9 s is under the cap of 1 s, but more than half of what a 1.2 s deadline leaves.
    upstream.route("POST", CHAT, busy(retry_after="0.9"))

    started = time.monotonic()
    exc = chat_error(client, upstream, timeout=1.2)

    # The upstream's own error, with its RetryInfo, not the caller's DEADLINE_EXCEEDED.
    assert_error(exc, *UNAVAILABLE, retry_after=0.9)
    assert time.monotonic() - started < 1.0
    assert requests_to(upstream, CHAT) == 1


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (error_reply(400, "Invalid 'messages'"), BAD_REQUEST),
        (error_reply(401, "Incorrect API key provided"), AUTHORIZATION),
    ],
    ids=["bad-request", "authorization"],
)
def test_a_refusal_is_not_retried(
    client: mr.ModelRuntimeClient,
    upstream: FakeUpstream,
    answer: Handler,
    expected: tuple[Any, ...],
) -> None:
    upstream.route("POST", CHAT, answer)

    assert_error(chat_error(client, upstream), *expected)
    assert requests_to(upstream, CHAT) == 1


def test_a_spent_quota_is_not_retried(
    client: mr.ModelRuntimeClient, upstream: FakeUpstream
) -> None:
    upstream.route(
        "POST",
        CHAT,
        error_reply(
            429,
            "You exceeded your current quota",
            type="insufficient_quota",
            code="insufficient_quota",
        ),
    )

    exc = chat_error(client, upstream)

    assert type(exc) is mr.InvokeQuotaExceededError
    assert (exc.code, exc.reason) == (grpc.StatusCode.RESOURCE_EXHAUSTED, "INVOKE_QUOTA_EXCEEDED")
    assert exc.retry_after is None
    assert requests_to(upstream, CHAT) == 1


# ---- streams -----------------------------------------------------------------------------------


def test_a_stream_cut_before_its_first_chunk_is_started_again(
    client: mr.ModelRuntimeClient, upstream: FakeUpstream
) -> None:
    answer = ChatStream.text("Hel", "lo")
    upstream.route("POST", CHAT, in_turn(ChatStream().cut().handler(), answer.handler()))

    chunks = list(client.stream_llm(OPENAI, "gpt-4o-mini", openai_creds(upstream), "hi"))

    # Exactly the second attempt's deltas: nothing of the first reached the caller.
    assert len(chunks) == answer.deltas
    assert "".join(c.delta.message.content for c in chunks) == "Hello"
    assert requests_to(upstream, CHAT) == 2


def test_a_stream_is_never_retried_after_its_first_chunk(
    client: mr.ModelRuntimeClient, upstream: FakeUpstream
) -> None:
    upstream.route("POST", CHAT, ChatStream().role().content("Hel").cut().handler())

    chunks: list[Any] = []
    with pytest.raises(mr.ModelRuntimeError) as caught:
        for chunk in client.stream_llm(OPENAI, "gpt-4o-mini", openai_creds(upstream), "hi"):
            chunks.append(chunk)

    assert_error(caught.value, *CONNECTION)
    assert "".join(c.delta.message.content for c in chunks) == "Hel"
    assert requests_to(upstream, CHAT) == 1


def test_a_rate_limited_stream_starts_after_the_wait(
    client: mr.ModelRuntimeClient, upstream: FakeUpstream
) -> None:
    limited = error_reply(429, "Rate limit reached", headers={"retry-after-ms": "200"})
    answer = ChatStream.text("ok")
    upstream.route("POST", CHAT, in_turn(limited, answer.handler()))

    chunks = list(client.stream_llm(OPENAI, "gpt-4o-mini", openai_creds(upstream), "hi"))

    assert len(chunks) == answer.deltas
    assert requests_to(upstream, CHAT) == 2


# ---- the other model types ---------------------------------------------------------------------

SPEECH = "/v1/audio/speech"
AUDIO = [b"ID3\x04\x00first-frames", b"more-frames"]


def audio(*pieces: Any) -> Handler:
    async def answer(request: web.Request, recorded: Recorded) -> web.StreamResponse:
        return await write_stream(request, pieces, content_type="audio/mpeg")

    return answer


def embed(client: mr.ModelRuntimeClient, upstream: FakeUpstream) -> Any:
    result = client.invoke_text_embedding(
        OPENAI, "text-embedding-3-small", openai_creds(upstream), ["a", "b"]
    )
    return [list(e.values) for e in result.embeddings]


def rerank(client: mr.ModelRuntimeClient, upstream: FakeUpstream) -> Any:
    result = client.invoke_rerank(
        COMPATIBLE, "my-reranker", compatible_creds(upstream), "q", ["x", "y"]
    )
    return [(d.index, round(d.score, 2)) for d in result.docs]


def transcribe(client: mr.ModelRuntimeClient, upstream: FakeUpstream) -> Any:
    return client.invoke_speech2text(
        OPENAI, "whisper-1", openai_creds(upstream), b"RIFF0000WAVE", filename="a.wav"
    )


def moderate(client: mr.ModelRuntimeClient, upstream: FakeUpstream) -> Any:
    return client.invoke_moderation(
        OPENAI, "omni-moderation-latest", openai_creds(upstream), "hello"
    )


def speak(client: mr.ModelRuntimeClient, upstream: FakeUpstream) -> Any:
    return list(client.invoke_tts(OPENAI, "tts-1", openai_creds(upstream), "Hi.", voice="nova"))


MODERATION = {
    "id": "modr-1",
    "model": "omni-moderation-2024-09-26",
    "results": [{"flagged": True, "categories": {}, "category_scores": {}}],
}
OTHER_TYPES = {
    "embedding": (
        "/v1/embeddings",
        reply(embeddings([[1.0, 0.5], [2.0, 0.25]])),
        embed,
        [[1.0, 0.5], [2.0, 0.25]],
    ),
    "rerank": (
        "/v1/rerank",
        reply(
            {
                "results": [
                    {"index": 1, "relevance_score": 0.9},
                    {"index": 0, "relevance_score": 0.1},
                ]
            }
        ),
        rerank,
        [(1, 0.9), (0, 0.1)],
    ),
    "speech2text": ("/v1/audio/transcriptions", reply({"text": "hello"}), transcribe, "hello"),
    "moderation": ("/v1/moderations", reply(MODERATION), moderate, True),
    "tts": (SPEECH, audio(*AUDIO), speak, AUDIO),
}


@pytest.mark.parametrize("kind", list(OTHER_TYPES))
def test_every_model_type_is_retried(
    client: mr.ModelRuntimeClient, upstream: FakeUpstream, kind: str
) -> None:
    path, answer, call, expected = OTHER_TYPES[kind]
    upstream.route("POST", path, in_turn(busy(), answer))

    assert call(client, upstream) == expected
    assert requests_to(upstream, path) == 2


def test_speech_cut_before_its_first_audio_is_started_again(
    client: mr.ModelRuntimeClient, upstream: FakeUpstream
) -> None:
    upstream.route("POST", SPEECH, in_turn(audio(CUT), audio(*AUDIO)))

    assert speak(client, upstream) == AUDIO
    assert requests_to(upstream, SPEECH) == 2


def test_speech_is_never_retried_after_its_first_audio(
    client: mr.ModelRuntimeClient, upstream: FakeUpstream
) -> None:
    upstream.route("POST", SPEECH, audio(AUDIO[0], CUT))

    pieces: list[bytes] = []
    with pytest.raises(mr.ModelRuntimeError) as caught:
        for piece in client.invoke_tts(
            OPENAI, "tts-1", openai_creds(upstream), "Hi.", voice="nova"
        ):
            pieces.append(piece)

    assert_error(caught.value, *CONNECTION)
    assert pieces == AUDIO[:1]
    assert requests_to(upstream, SPEECH) == 1
