"""A scriptable fake of the OpenAI HTTP protocol (and of its compatible servers and Xinference),
served by the loopback `FakeUpstream` of `tests/upstreams/upstream.py`.

Streams are built event by event and written byte for byte, so a test states exactly what the
upstream sent and can assert that the caller saw one chunk per delta:

    stream = (
        ChatStream(model="gpt-4o-mini")
        .role()                                   # {"role": "assistant", "content": ""}
        .content("Hel", "lo")                     # one chunk per piece
        .finish("stop")                           # delta {} + finish_reason
        .usage(12, 2, cached_tokens=4)            # the `choices: []` include_usage chunk
        .done()                                   # data: [DONE]
    )
    upstream.route("POST", "/v1/chat/completions", stream.handler())
    chunks = list(client.stream_llm(...))
    assert len(chunks) == stream.deltas           # events that carry a choice or usage

Every builder method returns the script, so calls chain. Besides deltas a script can hold
keep-alive comments (`ping`), pauses (`pause`), an in-band error event (`error`), any raw
bytes (`raw`), and a dropped connection (`cut`); none of those count as deltas. `line_ending`
("\\n" for OpenAI, "\\r\\n" for sse-starlette servers such as Xinference) applies to every event.

Tool calls: `tool_call(index, id=..., name=..., arguments=...)` writes one fragment (OpenAI
sends id and name on a call's first fragment and argument pieces after); `tool_calls(...)` puts
several fragments in one delta (parallel calls, or Xinference's whole calls). `fragment(...)`
builds one such fragment.

Whole answers: `chat_completion(...)`, `text_completion(...)`, `embeddings(...)` build bodies;
`reply(body)` serves one; `CompletionStream` scripts legacy `/v1/completions` streams.

Errors: `error_body(message, shape=...)` builds each body shape the family uses ("openai",
"flat" vLLM-style with an int code, "detail" and "detail_list" FastAPI-style, "string"
`{"error": "..."}`, "text" plain); `error_reply(status, message, ...)` serves one with headers
(e.g. `{"retry-after-ms": "1500"}`).
"""

from __future__ import annotations

import array
import base64
import json
import sys
from collections.abc import Sequence
from typing import Any, Self

from aiohttp import web

from ..upstream import (
    CUT,
    Handler,
    Pause,
    Recorded,
    StreamPiece,
    json_response,
    text_response,
    write_stream,
)

MODEL = "gpt-4o-mini-2024-07-18"
CREATED = 1760000000


def usage(
    prompt_tokens: int,
    completion_tokens: int,
    *,
    cached_tokens: int | None = None,
    reasoning_tokens: int | None = None,
) -> dict[str, Any]:
    """A `usage` object, with OpenAI's details objects when cached/reasoning counts are given."""
    body: dict[str, Any] = {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }
    if cached_tokens is not None:
        body["prompt_tokens_details"] = {"cached_tokens": cached_tokens, "audio_tokens": 0}
    if reasoning_tokens is not None:
        body["completion_tokens_details"] = {"reasoning_tokens": reasoning_tokens}
    return body


def fragment(
    index: int, *, id: str | None = None, name: str | None = None, arguments: str | None = None
) -> dict[str, Any]:
    """One streamed tool-call fragment, as OpenAI writes it: id, type and name only on the
    first fragment of a call."""
    function: dict[str, Any] = {}
    if name is not None:
        function["name"] = name
    if arguments is not None:
        function["arguments"] = arguments
    call: dict[str, Any] = {"index": index}
    if id is not None:
        call["id"] = id
        call["type"] = "function"
    call["function"] = function
    return call


class _EventScript:
    """The parts every SSE script shares: framing, counting, non-delta pieces, serving."""

    def __init__(self, *, model: str, id: str, line_ending: str, object: str) -> None:
        self.model = model
        self.id = id
        self.line_ending = line_ending
        self.object = object
        self.pieces: list[StreamPiece] = []
        # Events the runtime turns into a chunk each (they carry a choice or usage).
        self.deltas = 0

    def event(self, payload: dict[str, Any]) -> Self:
        """A `data:` event with `payload` as it is; counted when it carries a choice or usage."""
        self.pieces.append(self._frame(json.dumps(payload)))
        if payload.get("choices") or payload.get("usage"):
            self.deltas += 1
        return self

    def _frame(self, data: str) -> str:
        return f"data: {data}{self.line_ending}{self.line_ending}"

    def _base(self) -> dict[str, Any]:
        return {"id": self.id, "object": self.object, "created": CREATED, "model": self.model}

    def usage(self, prompt_tokens: int, completion_tokens: int, **details: int) -> Self:
        """The `stream_options.include_usage` chunk: `choices: []` and the usage."""
        return self.event(
            {
                **self._base(),
                "choices": [],
                "usage": usage(prompt_tokens, completion_tokens, **details),
            }
        )

    def ping(self, comment: str = "ping") -> Self:
        """A `: comment` keep-alive line (Xinference writes `: ping - <timestamp>`)."""
        self.pieces.append(f": {comment}{self.line_ending}{self.line_ending}")
        return self

    def pause(self, seconds: float) -> Self:
        self.pieces.append(Pause(seconds))
        return self

    def error(self, error: Any) -> Self:
        """An in-band `data: {"error": ...}` event (a dict for OpenAI-style servers, a string
        for Xinference)."""
        self.pieces.append(self._frame(json.dumps({"error": error})))
        return self

    def data(self, text: str) -> Self:
        """A `data:` event with `text` verbatim (e.g. malformed JSON); not counted."""
        self.pieces.append(self._frame(text))
        return self

    def raw(self, piece: str | bytes) -> Self:
        self.pieces.append(piece)
        return self

    def done(self) -> Self:
        self.pieces.append(self._frame("[DONE]"))
        return self

    def cut(self) -> Self:
        """Drops the connection here, without ending the chunked body."""
        self.pieces.append(CUT)
        return self

    def handler(self, *, status: int = 200, headers: dict[str, str] | None = None) -> Handler:
        pieces = list(self.pieces)

        async def answer(request: web.Request, recorded: Recorded) -> web.StreamResponse:
            return await write_stream(request, pieces, status=status, headers=headers)

        return answer


class ChatStream(_EventScript):
    """A `/chat/completions` stream script (`chat.completion.chunk` events)."""

    def __init__(
        self, *, model: str = MODEL, id: str = "chatcmpl-fake01", line_ending: str = "\n"
    ) -> None:
        super().__init__(
            model=model, id=id, line_ending=line_ending, object="chat.completion.chunk"
        )

    def _base(self) -> dict[str, Any]:
        return {**super()._base(), "system_fingerprint": "fp_fake"}

    @classmethod
    def text(
        cls, *pieces: str, prompt_tokens: int = 10, completion_tokens: int = 5, **options: Any
    ) -> ChatStream:
        """The usual answer: role chunk, one chunk per piece, finish, usage chunk, `[DONE]`."""
        return (
            cls(**options)
            .role()
            .content(*pieces)
            .finish("stop")
            .usage(prompt_tokens, completion_tokens)
            .done()
        )

    def chunk(
        self,
        delta: dict[str, Any],
        *,
        finish_reason: str | None = None,
        usage: dict[str, Any] | None = None,
    ) -> Self:
        """One chunk with `delta` as it is (and `usage`, as some servers put it on the last)."""
        payload: dict[str, Any] = {
            **self._base(),
            "choices": [
                {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
            ],
        }
        if usage is not None:
            payload["usage"] = usage
        return self.event(payload)

    def role(self, *, reasoning_field: str | None = None) -> Self:
        """The first chunk. With `reasoning_field`, the shape reasoning servers send first
        (`content: null` and an empty reasoning field)."""
        if reasoning_field is not None:
            return self.chunk({"role": "assistant", "content": None, reasoning_field: ""})
        return self.chunk({"role": "assistant", "content": "", "refusal": None})

    def content(self, *pieces: str) -> Self:
        for piece in pieces:
            self.chunk({"content": piece})
        return self

    def reasoning(self, *pieces: str, field: str = "reasoning_content") -> Self:
        """Reasoning pieces in `field` (`reasoning_content` or `reasoning`)."""
        for piece in pieces:
            self.chunk({"content": None, field: piece})
        return self

    def refusal(self, *pieces: str) -> Self:
        for piece in pieces:
            self.chunk({"refusal": piece})
        return self

    def tool_call(
        self,
        index: int,
        *,
        id: str | None = None,
        name: str | None = None,
        arguments: str | None = None,
    ) -> Self:
        """One delta holding one tool-call fragment (no content key at all, as OpenAI sends
        argument pieces)."""
        return self.tool_calls(fragment(index, id=id, name=name, arguments=arguments))

    def tool_calls(self, *fragments: dict[str, Any]) -> Self:
        """One delta holding several fragments: parallel calls, or whole calls at once."""
        return self.chunk({"tool_calls": list(fragments)})

    def finish(self, reason: str = "stop", *, usage: dict[str, Any] | None = None) -> Self:
        """The finish chunk: an empty delta with `finish_reason` (and `usage` if given, as
        Xinference and vLLM put it there)."""
        return self.chunk({}, finish_reason=reason, usage=usage)


class CompletionStream(_EventScript):
    """A legacy `/completions` stream script (`text_completion` events)."""

    def __init__(
        self,
        *,
        model: str = "gpt-3.5-turbo-instruct",
        id: str = "cmpl-fake01",
        line_ending: str = "\n",
    ) -> None:
        super().__init__(model=model, id=id, line_ending=line_ending, object="text_completion")

    def chunk(
        self, text: str, *, finish_reason: str | None = None, usage: dict[str, Any] | None = None
    ) -> Self:
        payload: dict[str, Any] = {
            **self._base(),
            "choices": [
                {"index": 0, "text": text, "logprobs": None, "finish_reason": finish_reason}
            ],
        }
        if usage is not None:
            payload["usage"] = usage
        return self.event(payload)

    def text(self, *pieces: str) -> Self:
        for piece in pieces:
            self.chunk(piece)
        return self

    def finish(self, reason: str = "stop", *, usage: dict[str, Any] | None = None) -> Self:
        return self.chunk("", finish_reason=reason, usage=usage)


# ---- whole answers ------------------------------------------------------------------------------


def tool_call(id: str, name: str, arguments: str | dict[str, Any]) -> dict[str, Any]:
    """A complete tool call of a non-streamed answer (arguments as a JSON string)."""
    text = arguments if isinstance(arguments, str) else json.dumps(arguments)
    return {"id": id, "type": "function", "function": {"name": name, "arguments": text}}


def chat_completion(
    content: str | None = "Hello!",
    *,
    model: str = MODEL,
    tool_calls: Sequence[dict[str, Any]] | None = None,
    reasoning: str | None = None,
    reasoning_field: str = "reasoning_content",
    refusal: str | None = None,
    finish_reason: str = "stop",
    usage: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A non-streamed `chat.completion` body."""
    message: dict[str, Any] = {
        "role": "assistant",
        "content": content,
        "refusal": refusal,
        "annotations": [],
    }
    if tool_calls:
        message["tool_calls"] = list(tool_calls)
    if reasoning is not None:
        message[reasoning_field] = reasoning
    body: dict[str, Any] = {
        "id": "chatcmpl-fake01",
        "object": "chat.completion",
        "created": CREATED,
        "model": model,
        "system_fingerprint": "fp_fake",
        "choices": [
            {"index": 0, "message": message, "logprobs": None, "finish_reason": finish_reason}
        ],
    }
    if usage is not None:
        body["usage"] = usage
    return body


def text_completion(
    text: str,
    *,
    model: str = "gpt-3.5-turbo-instruct",
    finish_reason: str = "stop",
    usage: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A non-streamed legacy `text_completion` body."""
    body: dict[str, Any] = {
        "id": "cmpl-fake01",
        "object": "text_completion",
        "created": CREATED,
        "model": model,
        "choices": [{"index": 0, "text": text, "logprobs": None, "finish_reason": finish_reason}],
    }
    if usage is not None:
        body["usage"] = usage
    return body


def base64_vector(values: Sequence[float]) -> str:
    """An embedding as OpenAI's base64 encoding: little-endian float32."""
    packed = array.array("f", values)
    if sys.byteorder == "big":
        packed.byteswap()
    return base64.b64encode(packed.tobytes()).decode()


def embeddings(
    vectors: Sequence[Sequence[float]],
    *,
    model: str = "text-embedding-3-small",
    encoding: str = "float",
    prompt_tokens: int = 8,
    reverse: bool = False,
) -> dict[str, Any]:
    """An `/embeddings` body; `encoding` "base64" encodes each vector; `reverse` lists the
    items last first, as a server may, so callers must order by `index`."""
    items = [
        {
            "object": "embedding",
            "index": i,
            "embedding": base64_vector(vector) if encoding == "base64" else list(vector),
        }
        for i, vector in enumerate(vectors)
    ]
    if reverse:
        items.reverse()
    return {
        "object": "list",
        "data": items,
        "model": model,
        "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens},
    }


def reply(body: Any, *, status: int = 200, headers: dict[str, str] | None = None) -> Handler:
    """A handler answering `body` as JSON."""

    async def answer(request: web.Request, recorded: Recorded) -> web.StreamResponse:
        return json_response(status, body, headers)

    return answer


# ---- errors -------------------------------------------------------------------------------------

_DEFAULT_TYPES = {
    401: "invalid_request_error",
    403: "permission_denied",
    404: "invalid_request_error",
    429: "requests",
}


def error_body(
    message: str,
    *,
    shape: str = "openai",
    status: int = 400,
    type: str | None = None,
    code: str | None = None,
    param: str | None = None,
) -> Any:
    """An error body of one of the family's shapes: "openai" `{"error": {message, type, param,
    code}}`, "flat" `{"object": "error", ..., "code": status}`, "detail" `{"detail": message}`,
    "detail_list" (FastAPI validation), "string" `{"error": message}`, "text" (the string)."""
    kind = (
        type
        or _DEFAULT_TYPES.get(status)
        or ("server_error" if status >= 500 else "invalid_request_error")
    )
    if shape == "openai":
        return {"error": {"message": message, "type": kind, "param": param, "code": code}}
    if shape == "flat":
        return {"object": "error", "message": message, "type": kind, "param": param, "code": status}
    if shape == "detail":
        return {"detail": message}
    if shape == "detail_list":
        return {"detail": [{"loc": ["body", param or "model"], "msg": message, "type": "missing"}]}
    if shape == "string":
        return {"error": message}
    if shape == "text":
        return message
    raise ValueError(f"unknown error shape {shape!r}")


def error_reply(
    status: int,
    message: str,
    *,
    shape: str = "openai",
    type: str | None = None,
    code: str | None = None,
    param: str | None = None,
    headers: dict[str, str] | None = None,
) -> Handler:
    """A handler answering an error status with a body of `shape` (see `error_body`)."""
    body = error_body(message, shape=shape, status=status, type=type, code=code, param=param)

    async def answer(request: web.Request, recorded: Recorded) -> web.StreamResponse:
        if isinstance(body, str):
            return text_response(status, body, headers=headers)
        return json_response(status, body, headers)

    return answer
