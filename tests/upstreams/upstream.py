"""A scriptable fake upstream: a real HTTP server on a loopback port, for provider tests.

It runs aiohttp in its own thread and event loop (the modelruntime test server has another), so
tests drive it from plain synchronous code. Each test scripts the routes it needs; every request
is recorded (method, path, query, headers, body), and when a client drops a connection while a
handler is still answering, the moment is recorded too, so a test can prove that a cancelled
gRPC call closed its upstream request.

Streams are written byte for byte (`write_stream`), so a fake can reproduce a vendor's framing
exactly: `\\r\\n` line endings, comment keep-alives, pauses, and a cut connection.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from email import policy
from email.parser import BytesParser
from typing import Any

from aiohttp import web


@dataclass
class Recorded:
    """One request the fake received."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-cased names
    body: bytes
    form: dict[str, Any] = field(default_factory=dict)  # multipart fields (files as bytes)
    # The client's (host, port): equal ports mean a reused keep-alive connection.
    peer: tuple[str, int] | None = None
    # time.monotonic() when the client closed the connection before the answer was complete.
    disconnected_at: float | None = None
    _disconnected: threading.Event = field(default_factory=threading.Event, repr=False)

    def json(self) -> Any:
        return json.loads(self.body)

    def wait_disconnected(self, timeout: float = 2.0) -> float | None:
        """The moment the client dropped the connection, waiting up to `timeout` for it."""
        self._disconnected.wait(timeout)
        return self.disconnected_at


Handler = Callable[[web.Request, Recorded], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Pause:
    """In a scripted stream: wait this long before the next piece."""

    seconds: float


class Cut:
    """In a scripted stream: drop the connection here, without ending the body."""


CUT = Cut()
StreamPiece = bytes | str | Pause | Cut


class FakeUpstream:
    """`with FakeUpstream() as fake:` serves on `fake.url` until the block ends."""

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], Handler] = {}
        self.requests: list[Recorded] = []
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="fake-upstream", daemon=True)

    # ---- lifecycle -------------------------------------------------------------------------

    def __enter__(self) -> FakeUpstream:
        self._thread.start()
        if not self._ready.wait(10):
            raise TimeoutError("the fake upstream did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        # handler_cancellation: a handler is cancelled when its client goes away, which is how
        # the fake notices a dropped connection even while it sleeps between chunks.
        self._runner = web.AppRunner(app, handler_cancellation=True, access_log=None)
        self._loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        self._loop.run_until_complete(site.start())
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self._ready.set()
        self._loop.run_forever()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # ---- scripting -------------------------------------------------------------------------

    def route(self, method: str, path: str, handler: Handler) -> None:
        """Answers `method path` with `handler` (replacing an earlier script for it)."""
        self.routes[(method.upper(), path)] = handler

    def reset(self) -> None:
        self.routes.clear()
        self.requests.clear()

    def last(self, path: str | None = None) -> Recorded:
        """The most recent request (to `path`, when given)."""
        for recorded in reversed(self.requests):
            if path is None or recorded.path == path:
                return recorded
        raise AssertionError(f"the fake upstream received no request for {path or 'anything'}")

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        recorded = Recorded(
            method=request.method,
            path=request.path,
            query=dict(request.query),
            headers={k.lower(): v for k, v in request.headers.items()},
            body=body,
            peer=request.transport.get_extra_info("peername") if request.transport else None,
        )
        if request.content_type.startswith("multipart/"):
            recorded.form = _multipart_fields(request.headers["Content-Type"], body)
        self.requests.append(recorded)
        handler = self.routes.get((request.method, request.path))
        if handler is None:
            return json_response(404, {"error": f"no script for {request.method} {request.path}"})
        try:
            return await handler(request, recorded)
        except (asyncio.CancelledError, ConnectionResetError):
            recorded.disconnected_at = time.monotonic()
            recorded._disconnected.set()
            raise


def _multipart_fields(content_type: str, body: bytes) -> dict[str, Any]:
    # The body was read already (it is recorded), so aiohttp's multipart reader, which reads
    # the request stream, would find it empty: parse the recorded bytes instead.
    message = BytesParser(policy=policy.HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + body
    )
    fields: dict[str, Any] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition") or ""
        data = part.get_payload(decode=True)
        if part.get_filename() is not None:
            fields[str(name)] = {
                "filename": part.get_filename(),
                "content_type": part.get_content_type(),
                "data": data,
            }
        else:
            fields[str(name)] = data.decode() if isinstance(data, bytes) else ""
    return fields


# ---- answers ---------------------------------------------------------------------------------


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        status=status,
        body=json.dumps(body).encode(),
        content_type="application/json",
        headers=headers,
    )


def text_response(
    status: int, text: str, content_type: str = "text/plain", headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(status=status, text=text, content_type=content_type, headers=headers)


async def write_stream(
    request: web.Request,
    pieces: Iterable[StreamPiece],
    *,
    content_type: str = "text/event-stream",
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> web.StreamResponse:
    """Streams `pieces` exactly as given (chunked), pausing at `Pause` and dropping the
    connection at `CUT` without ending the body."""
    response = web.StreamResponse(status=status, headers=headers)
    response.content_type = content_type
    response.enable_chunked_encoding()
    await response.prepare(request)
    for piece in pieces:
        if isinstance(piece, Pause):
            await asyncio.sleep(piece.seconds)
        elif isinstance(piece, Cut):
            transport = request.transport
            if transport is not None:
                transport.abort()
            return response
        else:
            await response.write(piece.encode() if isinstance(piece, str) else piece)
    await response.write_eof()
    return response


def sse_data(payload: Any, line_ending: str = "\n") -> str:
    """One `data:` event (JSON unless `payload` is already a string)."""
    data = payload if isinstance(payload, str) else json.dumps(payload)
    return f"data: {data}{line_ending}{line_ending}"


def sse_event(name: str, payload: Any, line_ending: str = "\n") -> str:
    """One `event:` + `data:` event, as Anthropic sends them."""
    data = payload if isinstance(payload, str) else json.dumps(payload)
    return f"event: {name}{line_ending}data: {data}{line_ending}{line_ending}"
