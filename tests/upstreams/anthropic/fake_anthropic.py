"""A fake Anthropic Messages API on the shared loopback upstream (tests/upstreams/upstream.py).

It speaks the wire protocol byte for byte, quirks included: it refuses a request without
`anthropic-version` or the expected `x-api-key` (and one without `max_tokens`) the way the API
does; streams are `event:` + `data:` pairs with `ping` events interleaved; `message_start`
reports a small `output_tokens` and `message_delta` the CUMULATIVE final count; a thinking block
receives its `signature_delta` just before it stops; errors use Anthropic's body
`{"type": "error", "error": {"type", "message"}, "request_id"}`.

Each test scripts the answers: `Reply` (blocks, stop reason, usage, pace, a cut or an in-band
error after N events, garbage) or `Failure` (status, error type, headers, raw body).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from ..upstream import (
    CUT,
    FakeUpstream,
    Pause,
    Recorded,
    StreamPiece,
    json_response,
    sse_event,
    text_response,
    write_stream,
)

TEST_KEY = "sk-ant-test-not-a-real-key"
API_VERSION = "2023-06-01"
REQUEST_ID = "req_fake_0001"


@dataclass
class Text:
    pieces: list[str]


@dataclass
class ToolUse:
    id: str
    name: str
    # The `partial_json` fragments, in order; their concatenation is the input object.
    fragments: list[str]


@dataclass
class Thinking:
    pieces: list[str]
    signature: str


@dataclass
class RedactedThinking:
    data: str


Block = Text | ToolUse | Thinking | RedactedThinking


@dataclass
class Usage:
    input_tokens: int = 25
    output_tokens: int = 9
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0


@dataclass
class Reply:
    """One scripted answer, streamed or whole depending on the request's `stream`."""

    blocks: list[Block]
    stop_reason: str = "end_turn"
    stop_sequence: str | None = None
    usage: Usage = field(default_factory=Usage)
    model: str = ""
    # Stream quirks.
    pause: float = 0.0  # before each event after the first
    delay: float = 0.0  # before the response starts
    cut_after: int | None = None  # drop the connection after this many events
    error_after: int | None = None  # send `event: error` after this many events, then end
    error_type: str = "overloaded_error"
    error_message: str = "Overloaded"
    garbage_after: int | None = None  # send a `data:` line that is not JSON
    end_after: int | None = None  # end the body cleanly after this many events
    linger: float = 0.0  # keep the body open this long after message_stop
    unknown_events: bool = False  # add event types this adapter has never heard of


@dataclass
class Failure:
    """An error answer: Anthropic's error body for `error_type`, or `raw` as it is."""

    status: int
    error_type: str = "api_error"
    message: str = "Internal server error"
    headers: dict[str, str] = field(default_factory=dict)
    details: dict[str, Any] | None = None
    raw: str | None = None
    content_type: str = "application/json"


def error_body(error_type: str, message: str, details: dict[str, Any] | None = None) -> Any:
    error: dict[str, Any] = {"type": error_type, "message": message}
    if details is not None:
        error["details"] = details
    return {"type": "error", "error": error, "request_id": REQUEST_ID}


class FakeAnthropic:
    """Routes `POST /v1/messages`, `POST /v1/messages/count_tokens` and
    `GET /v1/models/{id}` on `upstream`, answering from the scripts set on it."""

    def __init__(self, upstream: FakeUpstream) -> None:
        self.upstream = upstream
        self.replies: list[Reply] = [Reply([Text(["Hello", " there"])])]
        self.failure: Failure | None = None
        self.count_tokens: int | Failure = 42
        self.models: set[str] = set()
        # Drop the connection of every Messages request before answering it.
        self.reset = False
        # The client's port of each Messages request: the same port means a reused connection.
        self.client_ports: list[int] = []
        upstream.route("POST", "/v1/messages", self._messages)
        upstream.route("POST", "/v1/messages/count_tokens", self._count_tokens)

    @property
    def url(self) -> str:
        return self.upstream.url

    def reply(self, *replies: Reply) -> None:
        """The answers to the next calls, in order; the last one repeats."""
        self.replies = list(replies)

    def list_model(self, model: str) -> None:
        self.models.add(model)
        self.upstream.route("GET", f"/v1/models/{model}", self._model)

    def messages_requests(self) -> list[Recorded]:
        return [r for r in self.upstream.requests if r.path == "/v1/messages"]

    def last_body(self) -> Any:
        return self.upstream.last("/v1/messages").json()

    # ---- handlers ------------------------------------------------------------------------

    async def _messages(self, request: web.Request, recorded: Recorded) -> web.StreamResponse:
        if request.transport is not None:
            self.client_ports.append(request.transport.get_extra_info("peername")[1])
        refused = self._refuse(recorded)
        if refused is not None:
            return refused
        body = recorded.json()
        if "max_tokens" not in body:
            return json_response(
                400, error_body("invalid_request_error", "max_tokens: Field required")
            )
        if self.reset and request.transport is not None:
            request.transport.abort()
            await asyncio.sleep(0.05)
        if self.failure is not None:
            return _failure_response(self.failure)
        reply = self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]
        if reply.delay:
            await asyncio.sleep(reply.delay)
        model = reply.model or body["model"]
        if body.get("stream"):
            return await write_stream(request, stream_pieces(reply, model))
        return json_response(200, message_object(reply, model))

    async def _count_tokens(self, request: web.Request, recorded: Recorded) -> web.StreamResponse:
        refused = self._refuse(recorded)
        if refused is not None:
            return refused
        if isinstance(self.count_tokens, Failure):
            return _failure_response(self.count_tokens)
        return json_response(200, {"input_tokens": self.count_tokens})

    async def _model(self, request: web.Request, recorded: Recorded) -> web.StreamResponse:
        refused = self._refuse(recorded)
        if refused is not None:
            return refused
        model = request.path.rsplit("/", 1)[-1]
        return json_response(
            200,
            {
                "type": "model",
                "id": model,
                "display_name": model,
                "created_at": "2025-10-01T00:00:00Z",
            },
        )

    def _refuse(self, recorded: Recorded) -> web.Response | None:
        if recorded.headers.get("anthropic-version") != API_VERSION:
            return json_response(
                400, error_body("invalid_request_error", "anthropic-version: header is required")
            )
        if recorded.headers.get("x-api-key") != TEST_KEY:
            return json_response(401, error_body("authentication_error", "invalid x-api-key"))
        return None


def _failure_response(failure: Failure) -> web.Response:
    headers = {"request-id": REQUEST_ID, **failure.headers}
    if failure.raw is not None:
        return text_response(
            failure.status, failure.raw, content_type=failure.content_type, headers=headers
        )
    return json_response(
        failure.status, error_body(failure.error_type, failure.message, failure.details), headers
    )


# ---- the wire shapes ---------------------------------------------------------------------


def _input(fragments: list[str]) -> Any:
    joined = "".join(fragments)
    return json.loads(joined) if joined else {}


def message_object(reply: Reply, model: str) -> dict[str, Any]:
    """The whole answer, as `stream: false` returns it."""
    content: list[dict[str, Any]] = []
    for block in reply.blocks:
        if isinstance(block, Text):
            content.append({"type": "text", "text": "".join(block.pieces)})
        elif isinstance(block, ToolUse):
            content.append(
                {
                    "type": "tool_use",
                    "id": block.id,
                    "name": block.name,
                    "input": _input(block.fragments),
                }
            )
        elif isinstance(block, Thinking):
            content.append(
                {
                    "type": "thinking",
                    "thinking": "".join(block.pieces),
                    "signature": block.signature,
                }
            )
        else:
            content.append({"type": "redacted_thinking", "data": block.data})
    usage = reply.usage
    return {
        "id": "msg_fake_01",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": reply.stop_reason,
        "stop_sequence": reply.stop_sequence,
        "usage": {
            "input_tokens": usage.input_tokens,
            "cache_creation_input_tokens": usage.cache_creation_input_tokens,
            "cache_read_input_tokens": usage.cache_read_input_tokens,
            "output_tokens": usage.output_tokens,
            "service_tier": "standard",
        },
    }


def stream_events(reply: Reply, model: str) -> list[tuple[str, Any]]:
    """The (event, data) pairs of a streamed answer, in order."""
    usage = reply.usage
    events: list[tuple[str, Any]] = [
        (
            "message_start",
            {
                "type": "message_start",
                "message": {
                    "id": "msg_fake_01",
                    "type": "message",
                    "role": "assistant",
                    "model": model,
                    "content": [],
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": {
                        "input_tokens": usage.input_tokens,
                        "cache_creation_input_tokens": usage.cache_creation_input_tokens,
                        "cache_read_input_tokens": usage.cache_read_input_tokens,
                        # Small at the start; message_delta reports the final, cumulative count.
                        "output_tokens": 1,
                        "service_tier": "standard",
                    },
                },
            },
        )
    ]
    for index, block in enumerate(reply.blocks):
        events += _block_events(index, block)
    if reply.unknown_events:
        events.insert(2, ("content_block_flash", {"type": "content_block_flash", "index": 0}))
    events.append(
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": reply.stop_reason, "stop_sequence": reply.stop_sequence},
                "usage": {
                    "input_tokens": usage.input_tokens,
                    "cache_creation_input_tokens": usage.cache_creation_input_tokens,
                    "cache_read_input_tokens": usage.cache_read_input_tokens,
                    "output_tokens": usage.output_tokens,
                },
            },
        )
    )
    events.append(("message_stop", {"type": "message_stop"}))
    return events


def _block_events(index: int, block: Block) -> list[tuple[str, Any]]:
    def delta(payload: dict[str, Any]) -> tuple[str, Any]:
        return (
            "content_block_delta",
            {"type": "content_block_delta", "index": index, "delta": payload},
        )

    start: dict[str, Any]
    deltas: list[tuple[str, Any]]
    if isinstance(block, Text):
        start = {"type": "text", "text": ""}
        deltas = [delta({"type": "text_delta", "text": piece}) for piece in block.pieces]
    elif isinstance(block, ToolUse):
        start = {"type": "tool_use", "id": block.id, "name": block.name, "input": {}}
        deltas = [
            delta({"type": "input_json_delta", "partial_json": fragment})
            for fragment in block.fragments
        ]
    elif isinstance(block, Thinking):
        start = {"type": "thinking", "thinking": "", "signature": ""}
        deltas = [delta({"type": "thinking_delta", "thinking": piece}) for piece in block.pieces]
        deltas.append(delta({"type": "signature_delta", "signature": block.signature}))
    else:
        start = {"type": "redacted_thinking", "data": block.data}
        deltas = []
    return [
        (
            "content_block_start",
            {"type": "content_block_start", "index": index, "content_block": start},
        ),
        ("ping", {"type": "ping"}),
        *deltas,
        ("content_block_stop", {"type": "content_block_stop", "index": index}),
    ]


def stream_pieces(reply: Reply, model: str) -> list[StreamPiece]:
    """The bytes of a streamed answer, with the reply's pauses, cut, error or garbage."""
    pieces: list[StreamPiece] = []
    for sent, (name, data) in enumerate(stream_events(reply, model)):
        if sent == reply.cut_after:
            pieces.append(CUT)
            return pieces
        if sent == reply.error_after:
            pieces.append(sse_event("error", error_body(reply.error_type, reply.error_message)))
            return pieces
        if sent == reply.end_after:
            return pieces
        if sent == reply.garbage_after:
            pieces.append('event: content_block_delta\ndata: {"type": "content_block_del\n\n')
            return pieces
        if sent and reply.pause:
            pieces.append(Pause(reply.pause))
        pieces.append(sse_event(name, data))
    if reply.linger:
        pieces.append(Pause(reply.linger))
    return pieces


def visible_deltas(reply: Reply) -> int:
    """How many events carry something a caller sees: each becomes one chunk."""
    count = 0
    for block in reply.blocks:
        if isinstance(block, Text):
            count += len(block.pieces)
        elif isinstance(block, ToolUse):
            # A call whose fragments are all empty gets one more chunk: its `{}` input.
            count += len(block.fragments) + (0 if "".join(block.fragments) else 1)
        elif isinstance(block, Thinking):
            count += len(block.pieces)
    return count
