"""A fake Xinference server, on the loopback `FakeUpstream`, speaking its REST API byte for byte
as the wire-protocol reference (§3, §6) describes a real 4.x server:

- `GET /v1/cluster/auth` (unauthenticated) and `GET /v1/models/{uid}` with `model_type` and
  `model_ability`; an unknown UID is a 400 whose detail leaks internal addresses;
- `POST /v1/chat/completions`, `/v1/completions`, `/v1/embeddings`, `/v1/rerank`,
  `/v1/audio/transcriptions` (multipart), `/v1/audio/speech` (raw audio bytes);
- SSE with `\\r\\n` line endings and `: ping` comments, `[DONE]` only on chat streams, errors
  after the 200 as `data: {"error": "<string>"}`;
- FastAPI `{"detail": ...}` errors, 401 with `www-authenticate` when a key is required and
  missing or wrong, 404 listing the available UIDs for an unknown model, 500 `{"detail"}` for a
  chat call to a generate-only model and for embeddings on an LLM.

Every model answers with a sensible default; a test replaces one endpoint's answer with
`script(path, handler)` (the key check and the UID lookup still run first), or adds a model
of its own with `add_model` (descriptions are kept by the runtime for a while, so a test that
needs a description to change uses a fresh UID).
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

from aiohttp import web

from ..fakes.openai_wire import (
    ChatStream,
    CompletionStream,
    chat_completion,
    text_completion,
    usage,
)
from ..upstream import FakeUpstream, Handler, Recorded, json_response, write_stream

API_KEY = "sk-xinference-test-not-a-real-key"
INTERNAL_ADDRESS = "10.20.30.40:41235"
PING = "ping - 2026-11-22 00:00:00.000000"

CHAT = "qwen-chat"  # Qwen 2.5: chat, tools, vision; transformers engine
GLM_CHAT = "glm4-chat"  # GLM-4: chat and tools, but no tagged tool-call text; vLLM engine
HYBRID = "qwen3-hybrid"  # Qwen 3: chat, tools, hybrid thinking; vLLM engine
GENERATE = "llama-generate"  # a base model: generate only; llama.cpp engine
EMBEDDING = "bge-embed"
RERANK = "bge-rerank"
WHISPER = "whisper-small"
TTS = "cosyvoice-sft"
CHATTTS = "chattts"
KOKORO = "kokoro"  # synthesises whole files only: refuses `stream`

DESCRIPTIONS: dict[str, dict[str, Any]] = {
    CHAT: {
        "model_type": "LLM",
        "address": INTERNAL_ADDRESS,
        "accelerators": ["0"],
        "model_name": "qwen2.5-instruct",
        "model_family": "qwen2.5-instruct",
        "model_lang": ["en", "zh"],
        "model_ability": ["chat", "tools", "vision"],
        "model_format": "pytorch",
        "model_size_in_billions": 7,
        "quantization": "none",
        "context_length": 32768,
        "model_engine": "Transformers",
        "replica": 1,
    },
    GLM_CHAT: {
        "model_type": "LLM",
        "address": INTERNAL_ADDRESS,
        "model_name": "glm4-chat",
        "model_family": "glm4-chat",
        "model_ability": ["chat", "tools"],
        "context_length": 131072,
        "model_engine": "vLLM",
    },
    HYBRID: {
        "model_type": "LLM",
        "address": INTERNAL_ADDRESS,
        "model_name": "qwen3",
        "model_family": "qwen3",
        "model_ability": ["chat", "tools", "reasoning", "hybrid"],
        "context_length": 40960,
        "model_engine": "vLLM",
    },
    GENERATE: {
        "model_type": "LLM",
        "address": INTERNAL_ADDRESS,
        "model_name": "llama-2",
        "model_family": "llama-2",
        "model_ability": ["generate"],
        "context_length": 4096,
        "model_engine": "llama.cpp",
    },
    EMBEDDING: {
        "model_type": "embedding",
        "address": INTERNAL_ADDRESS,
        "model_name": "bge-m3",
        "dimensions": 4,
        "max_tokens": 8192,
        "language": ["en", "zh"],
        "model_engine": "sentence_transformers",
    },
    RERANK: {
        "model_type": "rerank",
        "address": INTERNAL_ADDRESS,
        "model_name": "bge-reranker-v2-m3",
        "type": "normal",
        "language": ["en", "zh"],
    },
    WHISPER: {
        "model_type": "audio",
        "address": INTERNAL_ADDRESS,
        "model_name": "whisper-small",
        "model_family": "whisper",
        "model_ability": ["audio2text"],
    },
    TTS: {
        "model_type": "audio",
        "address": INTERNAL_ADDRESS,
        "model_name": "CosyVoice-300M-SFT",
        "model_family": "CosyVoice",
        "model_ability": ["text2audio"],
    },
    CHATTTS: {
        "model_type": "audio",
        "address": INTERNAL_ADDRESS,
        "model_name": "ChatTTS",
        "model_family": "ChatTTS",
        "model_ability": ["text2audio"],
    },
    KOKORO: {
        "model_type": "audio",
        "address": INTERNAL_ADDRESS,
        "model_name": "Kokoro-82M",
        "model_family": "Kokoro",
        "model_ability": ["text2audio"],
    },
}

_WORD = re.compile(r"\w+")
# The audio a TTS call answers with: fake MP3 frames, sent in these pieces.
AUDIO_PIECES = [b"ID3\x04fake-mp3-frame-1", b"fake-mp3-frame-2", b"fake-mp3-frame-3"]


def fresh_uid(prefix: str) -> str:
    """A UID no other test used, for a description the runtime has not kept."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def detail(status: int, message: Any, headers: dict[str, str] | None = None) -> web.Response:
    """A FastAPI HTTPException answer: `{"detail": ...}`."""
    return json_response(status, {"detail": message}, headers)


def internal_error(message: str) -> web.Response:
    """An uncaught exception: 500 text/plain, as Xinference sends validation failures."""
    return web.Response(
        status=500, text=f"Internal Server Error: {message}", content_type="text/plain"
    )


def chat_stream(uid: str = CHAT) -> ChatStream:
    """A chat stream script as Xinference frames it: `\\r\\n` lines, opened by a keep-alive."""
    return ChatStream(model=uid, id="chatcmpl-1f", line_ending="\r\n").ping(PING)


def finish(script: ChatStream, reason: str, prompt_tokens: int, completion_tokens: int) -> Any:
    """Xinference's last chat chunk: an empty content, the finish reason and the usage."""
    return script.chunk(
        {"content": ""}, finish_reason=reason, usage=usage(prompt_tokens, completion_tokens)
    )


def completion_stream(uid: str = GENERATE) -> CompletionStream:
    return CompletionStream(model=uid, id="cmpl-2a", line_ending="\r\n").ping(PING)


class FakeXinference:
    """The fake server's behaviour, installed on a (reset) FakeUpstream."""

    def __init__(self, upstream: FakeUpstream, *, api_key: str | None = None) -> None:
        self.upstream = upstream
        self.api_key = api_key
        self.models: dict[str, dict[str, Any]] = {}
        self.scripts: dict[str, Handler] = {}
        upstream.route("GET", "/v1/cluster/auth", self._cluster_auth)
        for path, answer in (
            ("/v1/chat/completions", self._chat),
            ("/v1/completions", self._completion),
            ("/v1/embeddings", self._embeddings),
            ("/v1/rerank", self._rerank),
            ("/v1/audio/transcriptions", self._transcription),
            ("/v1/audio/speech", self._speech),
        ):
            upstream.route("POST", path, self._endpoint(path, answer))
        for uid, description in DESCRIPTIONS.items():
            self.add_model(uid, description)

    @property
    def url(self) -> str:
        return self.upstream.url

    def add_model(self, uid: str, description: dict[str, Any]) -> str:
        self.models[uid] = description
        self.upstream.route("GET", f"/v1/models/{uid}", self._describe(uid))
        return uid

    def describe_with(self, uid: str, handler: Handler) -> None:
        """Answers `GET /v1/models/{uid}` with `handler` instead (a loading model, ...)."""
        self.upstream.route("GET", f"/v1/models/{uid}", handler)

    def unknown_model(self, uid: str) -> None:
        """`GET /v1/models/{uid}` as a real server answers for a UID it has never launched."""

        async def answer(request: web.Request, recorded: Recorded) -> web.StreamResponse:
            return detail(
                400,
                f"[address={INTERNAL_ADDRESS}, pid=4242] Model not found in the model list, "
                f"uid: {uid}",
            )

        self.describe_with(uid, answer)

    def script(self, path: str, handler: Handler) -> None:
        self.scripts[path] = handler

    def credentials(self, uid: str, **extra: str) -> dict[str, str]:
        """Model credentials for `uid` on this server (no retries, so failures are immediate)."""
        credentials = {"server_url": self.url, "model_uid": uid, "max_retries": "0"}
        if self.api_key is not None:
            credentials["api_key"] = self.api_key
        return {**credentials, **extra}

    # ---- the server's own checks ---------------------------------------------------------------

    def _refused(self, recorded: Recorded) -> web.Response | None:
        if self.api_key is None:
            return None
        if recorded.headers.get("authorization") != f"Bearer {self.api_key}":
            return detail(
                401,
                "Could not validate credentials",
                {"WWW-Authenticate": 'Bearer scope="models:read"'},
            )
        return None

    async def _cluster_auth(self, request: web.Request, recorded: Recorded) -> web.StreamResponse:
        return json_response(200, {"auth": self.api_key is not None})

    def _describe(self, uid: str) -> Handler:
        async def answer(request: web.Request, recorded: Recorded) -> web.StreamResponse:
            refused = self._refused(recorded)
            if refused is not None:
                return refused
            return json_response(200, self.models[uid])

        return answer

    def _endpoint(self, path: str, default: Handler) -> Handler:
        async def answer(request: web.Request, recorded: Recorded) -> web.StreamResponse:
            refused = self._refused(recorded)
            if refused is not None:
                return refused
            uid = _uid(recorded)
            if uid not in self.models:
                return detail(
                    404,
                    f"Model not found, uid: {uid}. Available models: {sorted(self.models)}",
                )
            mismatch = _mismatch(path, self.models[uid])
            if mismatch is not None:
                return detail(500, mismatch)
            return await self.scripts.get(path, default)(request, recorded)

        return answer

    # ---- default answers -----------------------------------------------------------------------

    async def _chat(self, request: web.Request, recorded: Recorded) -> web.StreamResponse:
        body = recorded.json()
        uid = body["model"]
        if body.get("stream"):
            script = chat_stream(uid).role().content("Hel", "lo")
            finish(script, "stop", 20, 2).done()
            return await script.handler()(request, recorded)
        return json_response(200, chat_completion("Hello", model=uid, usage=usage(20, 2)))

    async def _completion(self, request: web.Request, recorded: Recorded) -> web.StreamResponse:
        body = recorded.json()
        uid = body["model"]
        if body.get("stream"):
            script = completion_stream(uid).text("Once", " upon").finish("stop", usage=usage(5, 2))
            return await script.handler()(request, recorded)
        return json_response(200, text_completion("Once upon", model=uid, usage=usage(5, 2)))

    async def _embeddings(self, request: web.Request, recorded: Recorded) -> web.StreamResponse:
        body = recorded.json()
        texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
        tokens = sum(len(_WORD.findall(text)) for text in texts)
        return json_response(
            200,
            {
                "object": "list",
                "model": body["model"],
                "model_replica": f"{body['model']}-0",
                "data": [
                    {"index": i, "object": "embedding", "embedding": vector_of(text)}
                    for i, text in enumerate(texts)
                ],
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            },
        )

    async def _rerank(self, request: web.Request, recorded: Recorded) -> web.StreamResponse:
        body = recorded.json()
        documents: list[str] = body["documents"]
        query_words = set(_WORD.findall(body["query"].lower()))
        scored = sorted(
            (
                (len(query_words & set(_WORD.findall(doc.lower()))) / max(len(query_words), 1), i)
                for i, doc in enumerate(documents)
            ),
            reverse=True,
        )
        if body.get("top_n") is not None:
            scored = scored[: body["top_n"]]
        returned = body.get("return_documents")
        return json_response(
            200,
            {
                "id": "6f1c0e2a",
                "results": [
                    {
                        "index": i,
                        "relevance_score": round(score, 4),
                        "document": {"text": documents[i]} if returned else None,
                    }
                    for score, i in scored
                ],
                "meta": {
                    "api_version": None,
                    "billed_units": None,
                    "warnings": None,
                    "tokens": None,
                },
            },
        )

    async def _transcription(self, request: web.Request, recorded: Recorded) -> web.StreamResponse:
        audio = recorded.form["file"]["data"]
        return json_response(200, {"text": f"heard {len(audio)} bytes"})

    async def _speech(self, request: web.Request, recorded: Recorded) -> web.StreamResponse:
        body = recorded.json()
        streamed = body.get("stream")
        if streamed and self.models[body["model"]]["model_family"] == "Kokoro":
            return detail(500, "Kokoro does not support stream mode.")
        content_type = "application/octet-stream" if streamed else "audio/mpeg"
        return await write_stream(request, AUDIO_PIECES, content_type=content_type)


def vector_of(text: str) -> list[float]:
    """A deterministic 4-dimensional vector for `text`."""
    words = _WORD.findall(text.lower())
    return [float(len(words)), float(len(text)), float(sum(map(len, words))), 0.5]


def _uid(recorded: Recorded) -> str:
    if recorded.form:
        return str(recorded.form.get("model", ""))
    try:
        return str(json.loads(recorded.body).get("model", ""))
    except ValueError:
        return ""


def _mismatch(path: str, description: dict[str, Any]) -> str | None:
    """The 500 detail a real server gives when an endpoint does not fit the model."""
    abilities = description.get("model_ability", [])
    kind = description["model_type"]
    if path == "/v1/chat/completions" and (kind != "LLM" or "chat" not in abilities):
        return f"Model {description['model_name']} is not for chat."
    if path == "/v1/completions" and (kind != "LLM" or "generate" not in abilities):
        return f"Model {description['model_name']} is not for generate."
    if path == "/v1/embeddings" and kind != "embedding":
        return f"Model {description['model_name']} is not for creating embedding."
    if path == "/v1/rerank" and kind != "rerank":
        return f"Model {description['model_name']} is not for reranking."
    return None
