"""OpenAI embeddings, moderation, transcription and speech through the gRPC server, and what
the fake OpenAI upstream receives for each."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import grpc
import pytest
from aiohttp import web

from modelruntime import client as mr

from ..fakes.openai_wire import embeddings, error_reply, reply
from ..upstream import FakeUpstream, Pause, Recorded, json_response, write_stream
from ._support import PROVIDER, assert_error, creds, price

EMBEDDINGS = "/v1/embeddings"
MODERATIONS = "/v1/moderations"
TRANSCRIPTIONS = "/v1/audio/transcriptions"
SPEECH = "/v1/audio/speech"


# ---- embeddings ------------------------------------------------------------------------------


def vector_for(text: str) -> list[float]:
    # Exactly representable in float32, so base64 round trips compare equal.
    return [float(len(text)), 0.5, -2.25]


def embedding_answer(encoding: str) -> Any:
    """Answers each batch with one vector per input, listed last first, and 2 tokens a text."""

    async def answer(request: web.Request, recorded: Recorded) -> web.StreamResponse:
        texts = recorded.json()["input"]
        body = embeddings(
            [vector_for(t) for t in texts],
            encoding=encoding,
            prompt_tokens=2 * len(texts),
            reverse=True,
        )
        return json_response(200, body)

    return answer


def test_embeddings_go_in_batches_of_max_chunks_and_come_back_in_order_decoded(
    client: mr.ModelRuntimeClient, upstream: FakeUpstream
) -> None:
    upstream.route("POST", EMBEDDINGS, embedding_answer("base64"))
    texts = ["x" * n for n in range(1, 71)]

    result = client.invoke_text_embedding(
        PROVIDER, "text-embedding-3-small", creds(upstream), texts
    )

    assert [list(e.values) for e in result.embeddings] == [vector_for(t) for t in texts]
    batches = [r.json() for r in upstream.requests]
    assert [len(b["input"]) for b in batches] == [32, 32, 6]
    assert [t for b in batches for t in b["input"]] == texts
    assert all(b["encoding_format"] == "base64" for b in batches)
    assert all(b["model"] == "text-embedding-3-small" for b in batches)
    assert all("dimensions" not in b for b in batches)
    assert result.usage.tokens == 140
    assert Decimal(result.usage.total_price) == price(140, "0.02")
    assert result.usage.currency == "USD"


def test_float_embeddings_from_a_server_that_ignores_base64_are_read_too(
    client: mr.ModelRuntimeClient, upstream: FakeUpstream
) -> None:
    upstream.route("POST", EMBEDDINGS, embedding_answer("float"))

    result = client.invoke_text_embedding(
        PROVIDER, "text-embedding-ada-002", creds(upstream), ["a", "bb"]
    )

    assert [list(e.values) for e in result.embeddings] == [vector_for("a"), vector_for("bb")]


def test_embedding_dimensions_are_sent_to_text_embedding_3_models_only(
    client: mr.ModelRuntimeClient, upstream: FakeUpstream
) -> None:
    upstream.route("POST", EMBEDDINGS, embedding_answer("base64"))
    credentials = creds(upstream, text_embedding_dimensions="256")

    client.invoke_text_embedding(PROVIDER, "text-embedding-3-large", credentials, ["a"])
    client.invoke_text_embedding(PROVIDER, "text-embedding-ada-002", credentials, ["a"])

    large, ada = (r.json() for r in upstream.requests)
    assert large["dimensions"] == 256
    assert "dimensions" not in ada


def test_embedding_dimensions_that_are_not_a_number_are_invalid_credentials(
    client: mr.ModelRuntimeClient, upstream: FakeUpstream
) -> None:
    with pytest.raises(mr.InvalidCredentialsError) as caught:
        client.invoke_text_embedding(
            PROVIDER,
            "text-embedding-3-small",
            creds(upstream, text_embedding_dimensions="many"),
            ["a"],
        )

    assert [v.field for v in caught.value.field_violations] == [
        "credentials.text_embedding_dimensions"
    ]
    assert upstream.requests == []


def test_an_embedding_error_is_typed_like_a_chat_error(
    client: mr.ModelRuntimeClient, upstream: FakeUpstream
) -> None:
    upstream.route(
        "POST",
        EMBEDDINGS,
        error_reply(
            400,
            "This model's maximum context length is 8192 tokens.",
            code="context_length_exceeded",
        ),
    )

    with pytest.raises(mr.ModelRuntimeError) as caught:
        client.invoke_text_embedding(PROVIDER, "text-embedding-3-small", creds(upstream), ["a"])

    assert_error(
        caught.value,
        mr.InvokeBadRequestError,
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVOKE_BAD_REQUEST",
        model="text-embedding-3-small",
    )
    assert "maximum context length" in caught.value.message


# ---- moderation ------------------------------------------------------------------------------


def moderation_answer(flagged_requests: set[int]) -> Any:
    """Flags every result of the requests numbered in `flagged_requests` (from 1)."""
    answered: list[int] = []

    async def answer(request: web.Request, recorded: Recorded) -> web.StreamResponse:
        answered.append(len(answered) + 1)
        flagged = answered[-1] in flagged_requests
        results = [
            {"flagged": flagged, "categories": {}, "category_scores": {}}
            for _ in recorded.json()["input"]
        ]
        body = {"id": "modr-1", "model": "omni-moderation-2024-09-26", "results": results}
        return json_response(200, body)

    return answer


def test_moderation_of_a_clean_text_is_not_flagged(
    client: mr.ModelRuntimeClient, upstream: FakeUpstream
) -> None:
    upstream.route("POST", MODERATIONS, moderation_answer(set()))

    assert (
        client.invoke_moderation(PROVIDER, "omni-moderation-latest", creds(upstream), "hello")
        is False
    )
    assert upstream.last(MODERATIONS).json() == {
        "model": "omni-moderation-latest",
        "input": ["hello"],
    }


def test_a_long_text_is_moderated_in_pieces_and_any_flagged_piece_flags_it(
    client: mr.ModelRuntimeClient, upstream: FakeUpstream
) -> None:
    upstream.route("POST", MODERATIONS, moderation_answer({2}))
    text = "a" * (2000 * 33 + 5)

    assert (
        client.invoke_moderation(PROVIDER, "omni-moderation-latest", creds(upstream), text) is True
    )

    batches = [r.json()["input"] for r in upstream.requests]
    assert [len(b) for b in batches] == [32, 2]
    assert [len(piece) for piece in batches[1]] == [2000, 5]
    assert "".join(p for b in batches for p in b) == text


# ---- speech to text --------------------------------------------------------------------------

WAV = b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(32)


def test_transcription_uploads_the_file_and_model_as_multipart(
    client: mr.ModelRuntimeClient, upstream: FakeUpstream
) -> None:
    upstream.route("POST", TRANSCRIPTIONS, reply({"text": "Hello there."}))

    text = client.invoke_speech2text(
        PROVIDER, "whisper-1", creds(upstream), WAV, filename="hello.wav"
    )

    assert text == "Hello there."
    form = upstream.last(TRANSCRIPTIONS).form
    assert form["model"] == "whisper-1"
    assert form["response_format"] == "json"
    assert form["file"] == {"filename": "hello.wav", "content_type": "audio/x-wav", "data": WAV}


def test_a_file_without_an_extension_is_named_after_its_format(
    client: mr.ModelRuntimeClient, upstream: FakeUpstream
) -> None:
    upstream.route("POST", TRANSCRIPTIONS, reply({"text": "ok"}))

    client.invoke_speech2text(PROVIDER, "gpt-4o-transcribe", creds(upstream), WAV)

    assert upstream.last(TRANSCRIPTIONS).form["file"]["filename"] == "audio.wav"


def test_a_transcription_error_is_typed(
    client: mr.ModelRuntimeClient, upstream: FakeUpstream
) -> None:
    upstream.route(
        "POST",
        TRANSCRIPTIONS,
        error_reply(400, "Invalid file format. Supported formats: ['flac', 'm4a', 'mp3']"),
    )

    with pytest.raises(mr.ModelRuntimeError) as caught:
        client.invoke_speech2text(
            PROVIDER, "whisper-1", creds(upstream), b"nonsense", filename="a.txt"
        )

    assert_error(
        caught.value,
        mr.InvokeBadRequestError,
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVOKE_BAD_REQUEST",
        model="whisper-1",
    )


# ---- text to speech --------------------------------------------------------------------------

AUDIO_PIECES = [b"ID3\x04\x00first-frames", b"second-frames", b"last"]


def speech_answer() -> Any:
    async def answer(request: web.Request, recorded: Recorded) -> web.StreamResponse:
        pieces: list[Any] = []
        for piece in AUDIO_PIECES:
            pieces += [piece, Pause(0.05)]
        return await write_stream(request, pieces, content_type="audio/mpeg")

    return answer


def test_speech_streams_the_audio_in_the_pieces_the_upstream_sent(
    client: mr.ModelRuntimeClient, upstream: FakeUpstream
) -> None:
    upstream.route("POST", SPEECH, speech_answer())

    stream = client.invoke_tts(PROVIDER, "tts-1", creds(upstream), "Hello there.", voice="nova")
    pieces = list(stream)

    assert stream.mime_type == "audio/mpeg"
    assert pieces == AUDIO_PIECES
    assert upstream.last(SPEECH).json() == {
        "model": "tts-1",
        "input": "Hello there.",
        "voice": "nova",
        "response_format": "mp3",
    }


def test_speech_uses_the_default_voice_and_refuses_an_unknown_one(
    client: mr.ModelRuntimeClient, upstream: FakeUpstream
) -> None:
    upstream.route("POST", SPEECH, speech_answer())

    b"".join(client.invoke_tts(PROVIDER, "gpt-4o-mini-tts", creds(upstream), "Hi"))
    assert upstream.last(SPEECH).json()["voice"] == "alloy"

    with pytest.raises(mr.InvalidRequestError) as caught:
        client.invoke_tts(PROVIDER, "tts-1", creds(upstream), "Hi", voice="marin")
    assert [v.field for v in caught.value.field_violations] == ["voice"]


def test_a_text_longer_than_the_word_limit_is_spoken_in_several_requests_after_sentences(
    client: mr.ModelRuntimeClient, upstream: FakeUpstream
) -> None:
    upstream.route("POST", SPEECH, speech_answer())
    sentence = "This sentence is part of a long text. "
    text = sentence * 250  # about 9,500 characters; tts-1 takes 4,096 per request

    audio = list(client.invoke_tts(PROVIDER, "tts-1-hd", creds(upstream), text))

    inputs = [r.json()["input"] for r in upstream.requests]
    assert len(inputs) == 3
    assert all(len(piece) <= 4096 for piece in inputs)
    assert all(piece.endswith(".") for piece in inputs)
    assert " ".join(inputs).split() == text.split()
    assert audio == AUDIO_PIECES * 3


def test_a_speech_error_before_any_audio_is_typed(
    client: mr.ModelRuntimeClient, upstream: FakeUpstream
) -> None:
    upstream.route(
        "POST", SPEECH, error_reply(429, "Rate limit reached", headers={"retry-after": "4"})
    )

    with pytest.raises(mr.ModelRuntimeError) as caught:
        client.invoke_tts(PROVIDER, "tts-1", creds(upstream), "Hi")

    assert_error(
        caught.value,
        mr.InvokeRateLimitError,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        "INVOKE_RATE_LIMIT",
        retry_after=4.0,
        model="tts-1",
    )
