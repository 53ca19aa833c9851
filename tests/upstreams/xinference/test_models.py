"""Embedding, rerank, speech-to-text and text-to-speech models through the real server and
Python client, and the requests they make."""

from __future__ import annotations

import pytest

from modelruntime import client as mr

from ..upstream import Pause, Recorded, json_response, write_stream
from ._support import PROVIDER
from .fake_xinference import (
    AUDIO_PIECES,
    CHATTTS,
    EMBEDDING,
    KOKORO,
    RERANK,
    TTS,
    WHISPER,
    FakeXinference,
    vector_of,
)

DOCS = [
    "Berlin is the capital of Germany.",
    "Paris is the capital of France.",
    "The capital of France has many museums, Paris included.",
    "Bananas are yellow.",
]


def test_embeddings_come_back_in_order_with_their_token_count(
    client: mr.ModelRuntimeClient, xinference: FakeXinference
) -> None:
    texts = ["hello world", "a longer text of six words", "x"]

    response = client.invoke_text_embedding(
        PROVIDER, "bge", xinference.credentials(EMBEDDING), texts
    )

    assert [list(e.values) for e in response.embeddings] == [vector_of(t) for t in texts]
    assert response.usage.tokens == 2 + 6 + 1
    sent = xinference.upstream.last("/v1/embeddings").json()
    # Float lists are all Xinference sends: no encoding_format is asked for.
    assert sent == {"model": EMBEDDING, "input": texts}


def test_a_long_list_of_texts_goes_in_batches_of_the_models_max_chunks(
    client: mr.ModelRuntimeClient, xinference: FakeXinference
) -> None:
    texts = [f"text number {i}" for i in range(70)]

    response = client.invoke_text_embedding(
        PROVIDER, "bge", xinference.credentials(EMBEDDING), texts
    )

    assert [list(e.values) for e in response.embeddings] == [vector_of(t) for t in texts]
    batches = [
        len(r.json()["input"]) for r in xinference.upstream.requests if r.path == "/v1/embeddings"
    ]
    assert batches == [32, 32, 6]


def test_rerank_orders_by_score_and_fills_in_the_documents(
    client: mr.ModelRuntimeClient, xinference: FakeXinference
) -> None:
    response = client.invoke_rerank(
        PROVIDER, "rr", xinference.credentials(RERANK), "capital of France Paris", DOCS
    )

    assert [d.index for d in response.docs] == [2, 1, 0, 3]
    assert [d.text for d in response.docs] == [DOCS[2], DOCS[1], DOCS[0], DOCS[3]]
    assert [d.score for d in response.docs] == [1.0, 1.0, 0.5, 0.0]
    sent = xinference.upstream.last("/v1/rerank").json()
    assert sent == {
        "model": RERANK,
        "query": "capital of France Paris",
        "documents": DOCS,
        "top_n": None,
        "return_documents": False,
    }


def test_rerank_top_n_and_score_threshold(
    client: mr.ModelRuntimeClient, xinference: FakeXinference
) -> None:
    top = client.invoke_rerank(
        PROVIDER, "rr", xinference.credentials(RERANK), "capital of France Paris", DOCS, top_n=3
    )
    above = client.invoke_rerank(
        PROVIDER,
        "rr",
        xinference.credentials(RERANK),
        "capital of France Paris",
        DOCS,
        score_threshold=0.6,
    )

    assert [d.index for d in top.docs] == [2, 1, 0]
    assert xinference.upstream.requests[-2].json()["top_n"] == 3
    assert [d.index for d in above.docs] == [2, 1]


def test_rerank_reads_documents_the_server_returns_anyway(
    client: mr.ModelRuntimeClient, xinference: FakeXinference
) -> None:
    async def answer(request: object, recorded: Recorded) -> object:
        return json_response(
            200,
            {
                "id": "r1",
                "results": [
                    {"index": 1, "relevance_score": 0.9, "document": {"text": DOCS[1]}},
                    {"index": 0, "relevance_score": 0.2, "document": {"text": DOCS[0]}},
                ],
                "meta": {
                    "api_version": None,
                    "billed_units": None,
                    "warnings": None,
                    "tokens": {"input_tokens": 30, "output_tokens": 30},
                },
            },
        )

    xinference.script("/v1/rerank", answer)  # type: ignore[arg-type]

    response = client.invoke_rerank(
        PROVIDER, "rr", xinference.credentials(RERANK), "France", DOCS[:2]
    )

    assert [(d.index, d.text, d.score) for d in response.docs] == [
        (1, DOCS[1], 0.9),
        (0, DOCS[0], 0.2),
    ]


def test_speech_to_text_uploads_the_audio_as_multipart(
    client: mr.ModelRuntimeClient, xinference: FakeXinference
) -> None:
    audio = b"RIFF....WAVEfmt " + bytes(range(256)) * 8

    transcript = client.invoke_speech2text(
        PROVIDER, "stt", xinference.credentials(WHISPER), audio, filename="hello.wav"
    )

    assert transcript == f"heard {len(audio)} bytes"
    form = xinference.upstream.last("/v1/audio/transcriptions").form
    assert form["model"] == WHISPER
    assert form["response_format"] == "json"
    assert form["file"]["filename"] == "hello.wav"
    assert form["file"]["data"] == audio


@pytest.mark.parametrize(
    ("uid", "voice", "streamed"),
    [(TTS, "英文女", True), (CHATTTS, "2222", True), (KOKORO, "af_heart", False)],
)
def test_text_to_speech_passes_the_audio_on_as_it_arrives(
    client: mr.ModelRuntimeClient,
    xinference: FakeXinference,
    uid: str,
    voice: str,
    streamed: bool,
) -> None:
    with client.invoke_tts(
        PROVIDER, "voice", xinference.credentials(uid), "Hello there.", voice=voice
    ) as stream:
        pieces = list(stream)

    assert stream.mime_type == "audio/mpeg"
    assert b"".join(pieces) == b"".join(AUDIO_PIECES)
    sent = xinference.upstream.last("/v1/audio/speech").json()
    assert sent == {
        "model": uid,
        "input": "Hello there.",
        "voice": voice,
        "response_format": "mp3",
        "speed": 1.0,
        "stream": streamed,
    }


def test_text_to_speech_pieces_are_not_held_back(
    client: mr.ModelRuntimeClient, xinference: FakeXinference
) -> None:
    async def answer(request: object, recorded: Recorded) -> object:
        return await write_stream(
            request,  # type: ignore[arg-type]
            [AUDIO_PIECES[0], Pause(0.3), AUDIO_PIECES[1]],
            content_type="application/octet-stream",
        )

    xinference.script("/v1/audio/speech", answer)  # type: ignore[arg-type]

    with client.invoke_tts(PROVIDER, "voice", xinference.credentials(CHATTTS), "Hi") as stream:
        first = next(stream)
        rest = list(stream)

    assert first == AUDIO_PIECES[0]
    assert b"".join(rest) == AUDIO_PIECES[1]


def test_a_voice_outside_a_fixed_list_is_refused(
    client: mr.ModelRuntimeClient, xinference: FakeXinference
) -> None:
    with pytest.raises(mr.InvalidRequestError) as caught:
        client.invoke_tts(PROVIDER, "voice", xinference.credentials(TTS), "Hi", voice="alloy")

    assert caught.value.reason == "INVALID_REQUEST"
    assert "中文女" in str(caught.value)
    assert not any(r.path == "/v1/audio/speech" for r in xinference.upstream.requests)
