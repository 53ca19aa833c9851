"""Embeddings, rerank, speech to text and text to speech through the real server and client,
against a fake OpenAI-compatible server."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import grpc
import pytest
from aiohttp import web

from modelruntime import client as mr

from ..fakes.openai_wire import embeddings, error_reply, reply
from ..upstream import FakeUpstream, Pause, Recorded, json_response, text_response, write_stream
from .support import API_KEY, MODEL, PROVIDER, SERVED, assert_error, creds

EMBEDDINGS = "/v1/embeddings"
RERANK = "/v1/rerank"
TRANSCRIPTIONS = "/v1/audio/transcriptions"
SPEECH = "/v1/audio/speech"


# ---- text embedding ----------------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["float", "base64"])
def test_embeddings_in_floats_or_base64_in_input_order(
    client: mr.ModelRuntimeClient, upstream: FakeUpstream, encoding: str
) -> None:
    vectors = [[0.5, -0.25, 1.0], [0.125, 0.0, -2.0]]
    upstream.route(
        "POST",
        EMBEDDINGS,
        reply(embeddings(vectors, encoding=encoding, prompt_tokens=6, reverse=True)),
    )

    answer = client.invoke_text_embedding(
        PROVIDER, MODEL, creds(upstream, max_chunks="8", encoding_format=encoding), ["a", "b"]
    )

    assert [list(e.values) for e in answer.embeddings] == vectors
    assert (answer.usage.tokens, answer.usage.total_tokens) == (6, 6)
    assert Decimal(answer.usage.total_price) == 0 and answer.usage.currency == "USD"
    body = upstream.last(EMBEDDINGS).json()
    assert body == {"model": SERVED, "input": ["a", "b"], "encoding_format": encoding}
    assert upstream.last(EMBEDDINGS).headers["authorization"] == f"Bearer {API_KEY}"


def test_embeddings_leave_the_format_to_the_server_and_send_dimensions(
    client: mr.ModelRuntimeClient, upstream: FakeUpstream
) -> None:
    upstream.route("POST", EMBEDDINGS, reply(embeddings([[1.0, 0.0]])))

    client.invoke_text_embedding(PROVIDER, MODEL, creds(upstream, dimensions="2"), ["x"])

    assert upstream.last(EMBEDDINGS).json() == {"model": SERVED, "input": ["x"], "dimensions": 2}


def test_embeddings_are_sent_max_chunks_at_a_time(
    client: mr.ModelRuntimeClient, upstream: FakeUpstream
) -> None:
    async def answer(request: web.Request, recorded: Recorded) -> web.StreamResponse:
        texts = recorded.json()["input"]
        return json_response(200, embeddings([[float(len(t))] for t in texts], prompt_tokens=1))

    upstream.route("POST", EMBEDDINGS, answer)

    result = client.invoke_text_embedding(
        PROVIDER, MODEL, creds(upstream, max_chunks="2"), ["a", "bb", "ccc", "dddd", "eeeee"]
    )

    assert [r.json()["input"] for r in upstream.requests] == [
        ["a", "bb"],
        ["ccc", "dddd"],
        ["eeeee"],
    ]
    assert [list(e.values) for e in result.embeddings] == [[1.0], [2.0], [3.0], [4.0], [5.0]]
    assert result.usage.tokens == 3


def test_prefixes_follow_the_input_type(
    client: mr.ModelRuntimeClient, upstream: FakeUpstream
) -> None:
    upstream.route("POST", EMBEDDINGS, reply(embeddings([[1.0]])))
    prefixes = {"document_prefix": "passage: ", "query_prefix": "query: "}

    client.invoke_text_embedding(PROVIDER, MODEL, creds(upstream, **prefixes), ["doc"])
    client.invoke_text_embedding(
        PROVIDER, MODEL, creds(upstream, **prefixes), ["q"], input_type="query"
    )

    assert [r.json()["input"] for r in upstream.requests] == [["passage: doc"], ["query: q"]]


def test_embedding_usage_is_estimated_when_the_server_gives_none(
    client: mr.ModelRuntimeClient, upstream: FakeUpstream
) -> None:
    body = embeddings([[1.0]])
    del body["usage"]
    upstream.route("POST", EMBEDDINGS, reply(body))

    answer = client.invoke_text_embedding(PROVIDER, MODEL, creds(upstream), ["hello world"])

    assert answer.usage.tokens > 0


@pytest.mark.parametrize(
    ("status", "error", "code", "reason"),
    [
        (400, mr.InvokeBadRequestError, grpc.StatusCode.INVALID_ARGUMENT, "INVOKE_BAD_REQUEST"),
        (
            401,
            mr.InvokeAuthorizationError,
            grpc.StatusCode.PERMISSION_DENIED,
            "INVOKE_AUTHORIZATION",
        ),
        (
            503,
            mr.InvokeServerUnavailableError,
            grpc.StatusCode.UNAVAILABLE,
            "INVOKE_SERVER_UNAVAILABLE",
        ),
    ],
)
def test_embedding_errors(
    client: mr.ModelRuntimeClient,
    upstream: FakeUpstream,
    status: int,
    error: type[mr.ModelRuntimeError],
    code: grpc.StatusCode,
    reason: str,
) -> None:
    upstream.route("POST", EMBEDDINGS, error_reply(status, "nope", shape="flat"))

    with pytest.raises(mr.ModelRuntimeError) as caught:
        client.invoke_text_embedding(PROVIDER, MODEL, creds(upstream), ["x"])

    assert_error(caught.value, error, code, reason)


# ---- rerank -------------------------------------------------------------------------------------

DOCS = ["Bananas are yellow.", "Paris is the capital of France.", "France is in Europe."]
SCORES = {0: 0.02, 1: 0.97, 2: 0.41}


def cohere_results(document: str) -> list[dict[str, Any]]:
    """Cohere-style results, worst first, with `document` in one of its variants."""
    results = []
    for index, score in sorted(SCORES.items(), key=lambda item: item[1]):
        result: dict[str, Any] = {"index": index, "relevance_score": score}
        if document == "object":
            result["document"] = {"text": DOCS[index]}
        elif document == "string":
            result["document"] = DOCS[index]
        elif document == "null":
            result["document"] = None
        results.append(result)
    return results


RERANK_SHAPES = {
    "cohere": {
        "id": "rr-1",
        "results": cohere_results("absent"),
        "meta": {"api_version": {"version": "1"}, "billed_units": {"search_units": 1}},
    },
    "jina": {
        "model": SERVED,
        "results": cohere_results("object"),
        "usage": {"total_tokens": 42, "prompt_tokens": 42},
    },
    "vllm": {
        "id": "rerank-1",
        "model": SERVED,
        "usage": {"prompt_tokens": 42, "total_tokens": 42},
        "results": cohere_results("object"),
    },
    "null-documents": {"results": cohere_results("null")},
    "string-documents": {"results": cohere_results("string")},
    "tei": [{"index": i, "score": s} for i, s in SCORES.items()],
}


@pytest.mark.parametrize("shape", list(RERANK_SHAPES))
def test_rerank_reads_every_answer_shape_and_orders_by_score(
    client: mr.ModelRuntimeClient, upstream: FakeUpstream, shape: str
) -> None:
    upstream.route("POST", RERANK, reply(RERANK_SHAPES[shape]))

    answer = client.invoke_rerank(PROVIDER, MODEL, creds(upstream), "capital of France", DOCS)

    assert [(d.index, d.text, d.score) for d in answer.docs] == [
        (1, DOCS[1], 0.97),
        (2, DOCS[2], 0.41),
        (0, DOCS[0], 0.02),
    ]
    body = upstream.last(RERANK).json()
    assert body == {"model": SERVED, "query": "capital of France", "documents": DOCS, "top_n": 3}


def test_rerank_threshold_and_top_n(client: mr.ModelRuntimeClient, upstream: FakeUpstream) -> None:
    upstream.route("POST", RERANK, reply(RERANK_SHAPES["vllm"]))

    answer = client.invoke_rerank(
        PROVIDER, MODEL, creds(upstream), "q", DOCS, score_threshold=0.41, top_n=2
    )

    assert [d.index for d in answer.docs] == [1, 2]
    assert upstream.last(RERANK).json()["top_n"] == 2


def test_rerank_at_its_own_endpoint_url(
    client: mr.ModelRuntimeClient, upstream: FakeUpstream
) -> None:
    upstream.route("POST", "/rerank-service/v2/rerank", reply(RERANK_SHAPES["cohere"]))
    credentials = creds(upstream, rerank_endpoint_url=f"{upstream.url}/rerank-service/v2/rerank")

    answer = client.invoke_rerank(PROVIDER, MODEL, credentials, "q", DOCS)

    assert [d.index for d in answer.docs] == [1, 2, 0]


@pytest.mark.parametrize(
    "results",
    [
        [{"index": 0}],
        [{"index": 7, "relevance_score": 0.5}],
        [{"index": 0, "relevance_score": "high"}],
        "not a list",
    ],
    ids=["no-score", "index-out-of-range", "score-not-a-number", "no-results"],
)
def test_a_malformed_rerank_answer_is_an_upstream_fault(
    client: mr.ModelRuntimeClient, upstream: FakeUpstream, results: Any
) -> None:
    upstream.route("POST", RERANK, reply({"results": results}))

    with pytest.raises(mr.ModelRuntimeError) as caught:
        client.invoke_rerank(PROVIDER, MODEL, creds(upstream), "q", DOCS)

    assert_error(
        caught.value,
        mr.InvokeServerUnavailableError,
        grpc.StatusCode.UNAVAILABLE,
        "INVOKE_SERVER_UNAVAILABLE",
    )
    assert "rerank answer is malformed" in caught.value.message


def test_rerank_of_no_documents_asks_nothing(
    client: mr.ModelRuntimeClient, upstream: FakeUpstream
) -> None:
    assert list(client.invoke_rerank(PROVIDER, MODEL, creds(upstream), "q", []).docs) == []
    assert upstream.requests == []


# ---- speech to text ------------------------------------------------------------------------------


def test_a_transcription_is_a_multipart_upload(
    client: mr.ModelRuntimeClient, upstream: FakeUpstream
) -> None:
    upstream.route("POST", TRANSCRIPTIONS, reply({"text": "hello there", "usage": {}}))
    audio = b"ID3 fake mp3 bytes"

    text = client.invoke_speech2text(
        PROVIDER,
        MODEL,
        creds(upstream, language="en", initial_prompt="Names: Ada."),
        audio,
        filename="greeting.mp3",
    )

    assert text == "hello there"
    sent = upstream.last(TRANSCRIPTIONS)
    assert sent.headers["content-type"].startswith("multipart/form-data")
    assert sent.headers["authorization"] == f"Bearer {API_KEY}"
    assert sent.form["model"] == SERVED
    assert (sent.form["language"], sent.form["prompt"]) == ("en", "Names: Ada.")
    assert sent.form["file"]["filename"] == "greeting.mp3"
    assert sent.form["file"]["data"] == audio


def test_a_plain_text_transcription(client: mr.ModelRuntimeClient, upstream: FakeUpstream) -> None:
    async def answer(request: web.Request, recorded: Recorded) -> web.StreamResponse:
        return text_response(200, "plain words\n")

    upstream.route("POST", TRANSCRIPTIONS, answer)

    assert client.invoke_speech2text(PROVIDER, MODEL, creds(upstream), b"x", "a.wav") == (
        "plain words"
    )
    assert "language" not in upstream.last(TRANSCRIPTIONS).form


def test_a_transcription_error(client: mr.ModelRuntimeClient, upstream: FakeUpstream) -> None:
    upstream.route("POST", TRANSCRIPTIONS, error_reply(400, "Invalid file format.", param="file"))

    with pytest.raises(mr.ModelRuntimeError) as caught:
        client.invoke_speech2text(PROVIDER, MODEL, creds(upstream), b"x", "a.txt")

    assert_error(
        caught.value,
        mr.InvokeBadRequestError,
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVOKE_BAD_REQUEST",
    )
    assert "Invalid file format." in caught.value.message


# ---- text to speech ------------------------------------------------------------------------------


def speech_handler(pieces: list[bytes], pause: float = 0.0) -> Any:
    async def answer(request: web.Request, recorded: Recorded) -> web.StreamResponse:
        script: list[Any] = []
        for piece in pieces:
            script += [piece, Pause(pause)] if pause else [piece]
        return await write_stream(request, script, content_type="audio/mpeg")

    return answer


def test_speech_streams_the_audio_as_it_comes(
    client: mr.ModelRuntimeClient, upstream: FakeUpstream
) -> None:
    pieces = [b"\xff\xfb" + bytes([n]) * 300 for n in range(4)]
    upstream.route("POST", SPEECH, speech_handler(pieces, pause=0.02))

    stream = client.invoke_tts(
        PROVIDER, MODEL, creds(upstream, voices="nova, echo"), "Hello there.", voice="echo"
    )
    audio = b"".join(stream)

    assert stream.mime_type == "audio/mpeg"
    assert audio == b"".join(pieces)
    body = upstream.last(SPEECH).json()
    assert body == {
        "model": SERVED,
        "input": "Hello there.",
        "voice": "echo",
        "response_format": "mp3",
    }


def test_speech_uses_the_first_voice_by_default_and_refuses_others(
    client: mr.ModelRuntimeClient, upstream: FakeUpstream
) -> None:
    upstream.route("POST", SPEECH, speech_handler([b"audio"]))

    b"".join(client.invoke_tts(PROVIDER, MODEL, creds(upstream, voices="nova,echo"), "Hi."))
    assert upstream.last(SPEECH).json()["voice"] == "nova"

    with pytest.raises(mr.InvalidRequestError) as caught:
        client.invoke_tts(PROVIDER, MODEL, creds(upstream, voices="nova,echo"), "Hi.", voice="bob")
    assert [v.field for v in caught.value.field_violations] == ["voice"]


def test_a_speech_error_comes_before_any_audio(
    client: mr.ModelRuntimeClient, upstream: FakeUpstream
) -> None:
    upstream.route("POST", SPEECH, error_reply(429, "slow down", headers={"retry-after": "2"}))

    with pytest.raises(mr.ModelRuntimeError) as caught:
        client.invoke_tts(PROVIDER, MODEL, creds(upstream), "Hi.")

    assert_error(
        caught.value,
        mr.InvokeRateLimitError,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        "INVOKE_RATE_LIMIT",
        retry_after=2.0,
    )


def test_speech_cut_midway_is_an_error(
    client: mr.ModelRuntimeClient, upstream: FakeUpstream
) -> None:
    async def answer(request: web.Request, recorded: Recorded) -> web.StreamResponse:
        response = web.StreamResponse(headers={"content-length": "1000"})
        response.content_type = "audio/mpeg"
        await response.prepare(request)
        await response.write(b"\xff" * 100)
        assert request.transport is not None
        request.transport.abort()
        return response

    upstream.route("POST", SPEECH, answer)

    with pytest.raises(mr.ModelRuntimeError) as caught:
        b"".join(client.invoke_tts(PROVIDER, MODEL, creds(upstream), "Hi."))

    assert_error(
        caught.value,
        mr.InvokeConnectionError,
        grpc.StatusCode.UNAVAILABLE,
        "INVOKE_CONNECTION_ERROR",
    )
