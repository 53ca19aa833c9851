"""HTTP/1.1 to upstreams on asyncio's transports: the transport under every pooled httpx client.

httpx's own transport runs each request through httpcore's connection pool and h11's state
machine on anyio: locks, events and cancel scopes per request, and per body read an h11 event,
a chunk-header regular expression and several nested async iterators. Streaming one delta per
read (a long-lived chat), that was a third of the server's CPU (the benchmark's profile). Here a
connection is an `asyncio.Protocol` whose bytes go straight into httptools' parser (llhttp, in
C, as uvicorn uses it): the parser's callbacks keep the status, the headers and the body's
pieces, and the body stream hands those pieces out as they come, without merging or waiting.

What the pool does:
- idle connections are kept per origin (scheme, host, port), the most recently used taken
  first, at most `max_idle` in all and for `keepalive_expiry` seconds each;
- a connection returns to the pool only once its answer was read to the end and both sides
  allow keep-alive; an answer left unfinished closes its connection at once (a cancelled call
  must close the upstream's connection now);
- an idle connection the peer closes (or sends anything on) is dropped, never reused;
- with an `OutboundPolicy` every connection goes to an address the policy allows, resolved and
  checked here, TLS still verified against the host's name (see `providers.sdk.outbound`).

Failures are httpx's exceptions (`ConnectError`, `ReadTimeout`, `RemoteProtocolError`, ...),
the cause chained, so `providers.sdk.http.upstream_errors` maps them as before.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator

import httptools
import httpx

from providers.sdk.outbound import OutboundPolicy

__all__ = ["UPSTREAM_BODY", "ResponseBody", "UpstreamTransport"]

# The response extension that holds its `ResponseBody` (httpx wraps the stream it is given).
UPSTREAM_BODY = "modelruntime.upstream_body"

# Beyond this many unread bytes a connection stops reading its socket until the body's reader
# catches up: a caller that reads slowly makes the upstream wait, not this process buffer.
_MAX_BUFFERED = 256 * 1024
_DEFAULT_PORTS = {b"http": 80, b"https": 443}
# Bytes that would end a header line early (or a C string) and so let a value smuggle in
# headers or requests of its own.
_UNSAFE_IN_HEADERS = (b"\r", b"\n", b"\0")

Origin = tuple[bytes, str, int]


class UpstreamTransport(httpx.AsyncBaseTransport):
    """A pool of HTTP/1.1 connections. One instance serves one pooled client (one base URL)."""

    def __init__(
        self,
        *,
        ssl_context: ssl.SSLContext,
        policy: OutboundPolicy | None = None,
        max_idle: int = 512,
        keepalive_expiry: float = 60.0,
    ) -> None:
        self._ssl_context = ssl_context
        self._policy = policy
        self._max_idle = max_idle
        self._keepalive_expiry = keepalive_expiry
        self._idle: dict[Origin, list[_Connection]] = {}
        self._idle_count = 0
        self._open: set[_Connection] = set()
        self._closed = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        scheme = url.raw_scheme
        if scheme not in _DEFAULT_PORTS:
            raise httpx.UnsupportedProtocol(f"the URL's scheme must be http or https: {url}")
        if not url.host:
            raise httpx.UnsupportedProtocol(f"the URL has no host: {url}")
        if self._closed:
            raise httpx.ConnectError("the upstream client is closed")
        timeouts: dict[str, float | None] = request.extensions.get("timeout", {})
        head, body = _encode(request)
        origin = (scheme, url.host, url.port or _DEFAULT_PORTS[scheme])
        connection = self._take_idle(origin)
        if connection is None:
            connection = await self._connect(origin, timeouts.get("connect"))
        try:
            await connection.send(head, body, timeouts.get("write"))
            await connection.receive_head(timeouts.get("read"))
        except BaseException:
            connection.abort()
            raise
        body = ResponseBody(connection, timeouts.get("read"))
        return httpx.Response(
            connection.status,
            headers=connection.headers,
            stream=body,
            extensions={
                "http_version": b"HTTP/1.1",
                "reason_phrase": connection.reason,
                UPSTREAM_BODY: body,
            },
        )

    async def aclose(self) -> None:
        self._closed = True
        for connection in list(self._open):
            connection.abort()
        self._idle.clear()
        self._idle_count = 0

    def _take_idle(self, origin: Origin) -> _Connection | None:
        idle = self._idle.get(origin)
        if not idle:
            return None
        now = asyncio.get_running_loop().time()
        while idle:
            connection = idle.pop()
            self._idle_count -= 1
            if connection.reusable_at(now):
                connection.begin()
                return connection
            connection.abort()
        return None

    async def _connect(self, origin: Origin, timeout: float | None) -> _Connection:
        scheme, host, port = origin
        if self._policy is None:
            addresses = [host]
        else:
            addresses = await self._policy.allowed_addresses(host, port)
        tls = self._ssl_context if scheme == b"https" else None
        loop = asyncio.get_running_loop()
        failure: Exception | None = None
        for address in addresses:
            try:
                async with asyncio.timeout(timeout):
                    _, connection = await loop.create_connection(
                        lambda: _Connection(self, origin, loop),
                        address,
                        port,
                        ssl=tls,
                        server_hostname=host if tls is not None else None,
                    )
            except TimeoutError as exc:
                failure = httpx.ConnectTimeout(f"connecting to {host}:{port} timed out")
                failure.__cause__ = exc
            except (OSError, ssl.SSLError) as exc:  # refused, unreachable, TLS handshake
                failure = httpx.ConnectError(str(exc) or type(exc).__name__)
                failure.__cause__ = exc
            else:
                self._open.add(connection)
                connection.begin()
                return connection
        assert failure is not None
        raise failure

    def _release(self, connection: _Connection) -> None:
        """A connection whose answer was read to its end: kept for the next request when both
        sides allow it."""
        if self._closed or not connection.keep_alive or connection.lost or connection.spoiled:
            connection.abort()
            return
        connection.idle_since = asyncio.get_running_loop().time()
        self._idle.setdefault(connection.origin, []).append(connection)
        self._idle_count += 1
        if self._idle_count > self._max_idle:
            oldest = self._idle[connection.origin].pop(0)
            self._idle_count -= 1
            oldest.abort()

    def _forget(self, connection: _Connection) -> None:
        """A connection that closed: out of the pool, wherever it was."""
        self._open.discard(connection)
        idle = self._idle.get(connection.origin)
        if idle and connection in idle:
            idle.remove(connection)
            self._idle_count -= 1


def _encode(request: httpx.Request) -> tuple[bytes, bytes | httpx.AsyncByteStream]:
    """The request's head, and its body as bytes (or as the stream to send in chunks)."""
    lines = [b"%s %s HTTP/1.1\r\n" % (request.method.encode("ascii"), request.url.raw_path)]
    chunked = False
    for name, value in request.headers.raw:
        if any(bad in name or bad in value for bad in _UNSAFE_IN_HEADERS):
            # Never quote the value: it may be a credential.
            raise httpx.LocalProtocolError(
                f"the {name.decode('latin-1')!r} header's value contains a line break or NUL"
            )
        if name.lower() == b"transfer-encoding" and value.lower() == b"chunked":
            chunked = True
        lines.append(b"%s: %s\r\n" % (name, value))
    lines.append(b"\r\n")
    head = b"".join(lines)
    try:
        return head, request.content
    except httpx.RequestNotRead:  # a streamed body (multipart with files, a generator)
        if not chunked and "content-length" not in request.headers:
            raise httpx.LocalProtocolError(
                "a streamed request body needs Content-Length or chunked encoding"
            ) from None
        assert isinstance(request.stream, httpx.AsyncByteStream)
        return head, _Chunked(request.stream) if chunked else request.stream


class _Chunked(httpx.AsyncByteStream):
    def __init__(self, stream: httpx.AsyncByteStream) -> None:
        self._stream = stream

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for piece in self._stream:
            if piece:
                yield b"%x\r\n%s\r\n" % (len(piece), piece)
        yield b"0\r\n\r\n"


class _Connection(asyncio.Protocol):
    """One upstream connection, and the answer it is receiving."""

    def __init__(
        self, pool: UpstreamTransport, origin: Origin, loop: asyncio.AbstractEventLoop
    ) -> None:
        self.pool = pool
        self.origin = origin
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.in_use = False
        self.lost = False
        self.idle_since = 0.0
        self.keep_alive = False
        self.spoiled = False  # the peer sent what no request asked for: never reused
        self.draining: asyncio.TimerHandle | None = None  # giving up on the rest of a body
        self.writable: asyncio.Future[None] | None = None  # a write waiting for room
        self._reset()

    def _reset(self) -> None:
        self.status = 0
        self.reason = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.head_done = False
        self.complete = False
        self.until_close = False  # the body ends where the connection does
        self.failure: Exception | None = None
        self.body: list[bytes] = []
        self.buffered = 0
        self.paused = False
        self.waiter: asyncio.Future[None] | None = None  # a read waiting for the next event

    # --- asyncio.Protocol ---

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if not self.in_use or self.complete:
            # Bytes nobody asked for (after an answer's end, or on an idle connection): the
            # connection's state is unknown, so it is not reused.
            self.spoiled = True
            if not self.in_use:
                self.abort()
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(httpx.RemoteProtocolError("the upstream switched protocols"))
        except httptools.HttpParserError as exc:
            self._fail(
                httpx.RemoteProtocolError(f"the upstream's answer is not valid HTTP/1.1: {exc}")
            )

    def eof_received(self) -> bool:
        self._peer_closed(None)
        return False  # close our side too: a request is never sent after the peer's end

    def connection_lost(self, exc: Exception | None) -> None:
        self._peer_closed(exc)
        self.lost = True
        self.pool._forget(self)
        if self.writable is not None and not self.writable.done():
            self.writable.set_result(None)

    def pause_writing(self) -> None:
        self.writable = self.loop.create_future()

    def resume_writing(self) -> None:
        if self.writable is not None and not self.writable.done():
            self.writable.set_result(None)
        self.writable = None

    # --- httptools callbacks ---

    # Once an answer is complete, whatever the same bytes carry after it belongs to no request:
    # the connection is spoiled and the rest is ignored.

    def on_message_begin(self) -> None:
        if self.complete or not self.in_use:
            self.spoiled = True

    def on_status(self, reason: bytes) -> None:
        if not self.complete:
            self.reason += reason

    def on_header(self, name: bytes, value: bytes) -> None:
        if not self.complete:
            self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        if self.complete:
            return
        status = self.parser.get_status_code()
        if 100 <= status < 200:  # an interim answer (100 Continue, 103 Early Hints): skipped
            self.headers = []
            self.reason = b""
            return
        self.status = status
        self.head_done = True
        self.until_close = status not in (204, 304) and not any(
            name.lower() in (b"content-length", b"transfer-encoding") for name, _ in self.headers
        )
        self.keep_alive = self.parser.should_keep_alive() and not self.until_close
        self._wake()

    def on_body(self, body: bytes) -> None:
        if self.complete:
            return
        if self.draining is not None:  # more content: the reader did not stop at the end
            self.abort()
            return
        self.body.append(body)
        self.buffered += len(body)
        if self.buffered > _MAX_BUFFERED and not self.paused and self.transport is not None:
            self.paused = True
            self.transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        if not self.head_done or self.complete:  # an interim answer's end, or a spoiled one's
            return
        self._answer_ended()

    # --- used by the transport and the body ---

    def _answer_ended(self) -> None:
        self.complete = True
        if self.draining is not None:
            self.draining.cancel()
            self.draining = None
            self.finish()
        self._wake()

    def begin(self) -> None:
        self._reset()
        self.in_use = True
        self.keep_alive = False

    def reusable_at(self, now: float) -> bool:
        return (
            not self.lost
            and not self.spoiled
            and now - self.idle_since < self.pool._keepalive_expiry
        )

    async def send(
        self, head: bytes, body: bytes | httpx.AsyncByteStream, timeout: float | None
    ) -> None:
        if isinstance(body, bytes):
            await self._write(head + body if len(body) < 65536 else head, timeout)
            if len(body) >= 65536:
                await self._write(body, timeout)
            return
        await self._write(head, timeout)
        async for piece in body:
            await self._write(piece, timeout)

    async def _write(self, data: bytes, timeout: float | None) -> None:
        if self.lost or self.transport is None or self.transport.is_closing():
            raise self._closed_error(httpx.WriteError)
        self.transport.write(data)
        if self.writable is not None:
            try:
                async with asyncio.timeout(timeout):
                    await asyncio.shield(self.writable)
            except TimeoutError as exc:
                raise httpx.WriteTimeout("the upstream took no more bytes in time") from exc
            if self.lost:
                raise self._closed_error(httpx.WriteError)

    async def receive_head(self, timeout: float | None) -> None:
        while not self.head_done:
            await self._next_event(timeout, "the upstream did not answer in time")

    async def _next_event(self, timeout: float | None, late: str) -> None:
        if self.failure is not None:
            raise self.failure
        waiter = self.waiter = self.loop.create_future()
        timer = None if timeout is None else self.loop.call_later(timeout, _expire, waiter)
        try:
            await waiter
        except TimeoutError:
            raise httpx.ReadTimeout(late) from None
        finally:
            self.waiter = None
            if timer is not None:
                timer.cancel()
        if self.failure is not None:
            raise self.failure

    def take_body(self) -> list[bytes]:
        """The body's pieces received so far, as the upstream framed them (a chunk of a chunked
        body stays one piece unless the network split it)."""
        pieces = self.body
        self.body = []
        self.buffered = 0
        if self.paused and self.transport is not None:
            self.paused = False
            self.transport.resume_reading()
        return pieces

    def drain(self, max_wait: float) -> None:
        """Waits without a reader for the end of an answer whose content has all been read, to
        keep the connection: released when the end arrives, closed if any more content does
        (the reader stopped early after all) or nothing does within `max_wait` seconds."""
        if self.body:
            self.abort()
        else:
            self.draining = self.loop.call_later(max_wait, self.abort)

    def finish(self) -> None:
        """The answer's reader is done with this connection."""
        if not self.in_use:
            return
        self.in_use = False
        if self.complete and self.failure is None:
            self.pool._release(self)
        else:
            self.abort()

    def abort(self) -> None:
        self.in_use = False
        self.keep_alive = False
        if self.draining is not None:
            self.draining.cancel()
            self.draining = None
        if self.transport is not None:
            self.transport.abort()  # at once, whatever is left unsent or unread

    def _peer_closed(self, exc: Exception | None) -> None:
        if not self.in_use or self.complete or self.failure is not None:
            return
        if self.head_done and self.until_close and exc is None:
            self._answer_ended()  # a body without a length ends with the connection
            return
        if exc is not None:
            failure: Exception = httpx.ReadError(str(exc) or type(exc).__name__)
            failure.__cause__ = exc
        elif not self.head_done:
            failure = httpx.RemoteProtocolError(
                "the upstream closed the connection without answering"
            )
        else:
            failure = httpx.RemoteProtocolError(
                "the upstream closed the connection before the end of its answer"
            )
        self._fail(failure)

    def _fail(self, failure: Exception) -> None:
        if self.failure is None:
            self.failure = failure
        self.abort()
        self._wake()

    def _wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _closed_error(self, kind: type[httpx.TransportError]) -> httpx.TransportError:
        error = kind("the connection to the upstream is closed")
        error.__cause__ = self.failure
        return error


class ResponseBody(httpx.AsyncByteStream):
    """An answer's body, piece by piece as the connection receives it. Read to its end (or
    closed after its end arrived), the connection goes back to the pool; closed before, the
    connection is closed."""

    def __init__(self, connection: _Connection, read_timeout: float | None) -> None:
        self._connection = connection
        self._read_timeout = read_timeout
        self._done = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        connection = self._connection
        while not self._done:
            if connection.body:
                for piece in connection.take_body():
                    yield piece
            elif connection.complete:
                break
            else:
                await connection._next_event(
                    self._read_timeout, "the upstream sent nothing more in time"
                )
        await self.aclose()

    async def aclose(self) -> None:
        if not self._done:
            self._done = True
            self._connection.finish()

    def finish_in_background(self, max_wait: float) -> None:
        """Closes the body without waiting, for a reader that stopped at its protocol's end
        marker: the connection is kept for reuse if the answer's end (a chunked body's
        terminator) arrives within `max_wait` seconds with no more content; closed otherwise,
        at once if more content comes."""
        if self._done:
            return
        self._done = True
        connection = self._connection
        if connection.complete or connection.failure is not None:
            connection.finish()
        else:
            connection.drain(max_wait)


def _expire(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError())
