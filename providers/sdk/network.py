"""httpcore's network layer on asyncio's own transports, for every upstream connection.

httpcore's default backend goes through anyio, and for each read of a streamed body it opens a
cancel scope with a timer (`anyio.fail_after`), wraps the read in an exception-mapping context
manager, and has anyio start and stop watching the socket (two `epoll_ctl` calls). With one
upstream delta per read (a long-lived stream) the benchmark's profile put ~65% of the time httpx
spent reading there: ~25% of the server's CPU. Here the socket is watched for as long as the
connection lives, the bytes that arrived are handed out without a wait when there are any, and
a read that must wait arms one timer handle.

Errors are httpcore's (`ConnectError`, `ReadTimeout`, ...), with the cause chained, as the
anyio backend raises them, so `providers.sdk.http.upstream_errors` reads them the same.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Iterable
from typing import Any

import httpcore

__all__ = ["AsyncioBackend"]

# Beyond this many unread bytes the connection stops reading from its socket until httpcore
# catches up (a caller that reads slowly makes the upstream wait, not this process buffer).
_MAX_BUFFERED = 256 * 1024


class AsyncioBackend(httpcore.AsyncNetworkBackend):
    """Plain TCP connections (TLS started on them by httpcore, as with any backend)."""

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                transport, protocol = await loop.create_connection(
                    lambda: _Protocol(loop),
                    host,
                    port,
                    local_addr=(local_address, 0) if local_address else None,
                )
        except TimeoutError as exc:
            raise httpcore.ConnectTimeout(str(exc) or "connecting timed out") from exc
        except OSError as exc:
            raise httpcore.ConnectError(str(exc) or type(exc).__name__) from exc
        for option in socket_options or ():
            transport.get_extra_info("socket").setsockopt(*option)
        return _Stream(transport, protocol)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                transport, protocol = await loop.create_unix_connection(
                    lambda: _Protocol(loop), path
                )
        except TimeoutError as exc:
            raise httpcore.ConnectTimeout(str(exc) or "connecting timed out") from exc
        except OSError as exc:
            raise httpcore.ConnectError(str(exc) or type(exc).__name__) from exc
        return _Stream(transport, protocol)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class _Protocol(asyncio.Protocol):
    """Keeps what the socket delivered until the stream reads it."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.buffer: list[bytes] = []
        self.buffered = 0
        self.eof = False
        self.lost = False
        self.failure: BaseException | None = None
        self.paused_reading = False
        self.reader: asyncio.Future[None] | None = None  # a read waiting for bytes
        self.writable: asyncio.Future[None] | None = None  # a write waiting for room

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buffer.append(data)
        self.buffered += len(data)
        if self.buffered > _MAX_BUFFERED and self.transport is not None:
            self.transport.pause_reading()
            self.paused_reading = True
        self._wake_reader()

    def eof_received(self) -> bool:
        self.eof = True
        self._wake_reader()
        return False  # close the transport: we never write after the peer's end

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.failure = exc
        self._wake_reader()
        if self.writable is not None and not self.writable.done():
            self.writable.set_result(None)

    def pause_writing(self) -> None:
        self.writable = self.loop.create_future()

    def resume_writing(self) -> None:
        if self.writable is not None and not self.writable.done():
            self.writable.set_result(None)
        self.writable = None

    def _wake_reader(self) -> None:
        if self.reader is not None and not self.reader.done():
            self.reader.set_result(None)


class _Stream(httpcore.AsyncNetworkStream):
    def __init__(self, transport: asyncio.Transport, protocol: _Protocol) -> None:
        self._transport = transport
        self._protocol = protocol

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        protocol = self._protocol
        if not protocol.buffer:
            if protocol.eof or protocol.lost:
                return self._at_end()
            loop = protocol.loop
            reader = protocol.reader = loop.create_future()
            timer = None if timeout is None else loop.call_later(timeout, _expire, reader)
            try:
                await reader
            except TimeoutError:
                raise httpcore.ReadTimeout("the upstream sent nothing in time") from None
            finally:
                protocol.reader = None
                if timer is not None:
                    timer.cancel()
            if not protocol.buffer:
                return self._at_end()
        return self._take(max_bytes)

    def _take(self, max_bytes: int) -> bytes:
        protocol = self._protocol
        buffer = protocol.buffer
        data = buffer[0] if len(buffer) == 1 else b"".join(buffer)
        if len(data) > max_bytes:
            protocol.buffer = [data[max_bytes:]]
            data = data[:max_bytes]
        else:
            protocol.buffer = []
        protocol.buffered -= len(data)
        if protocol.paused_reading and protocol.buffered <= _MAX_BUFFERED:
            protocol.paused_reading = False
            # The transport that was paused: under TLS, the one beneath it.
            if protocol.transport is not None:
                protocol.transport.resume_reading()
        return data

    def _at_end(self) -> bytes:
        failure = self._protocol.failure
        if failure is not None:
            raise httpcore.ReadError(str(failure) or type(failure).__name__) from failure
        return b""  # the peer closed the connection: httpcore reads this as "disconnected"

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if not buffer:
            return
        protocol = self._protocol
        if protocol.lost or self._transport.is_closing():
            failure = protocol.failure
            raise httpcore.WriteError(str(failure or "the connection is closed")) from failure
        try:
            self._transport.write(buffer)
        except (OSError, RuntimeError) as exc:
            raise httpcore.WriteError(str(exc) or type(exc).__name__) from exc
        writable = protocol.writable
        if writable is not None:
            try:
                async with asyncio.timeout(timeout):
                    await asyncio.shield(writable)
            except TimeoutError as exc:
                raise httpcore.WriteTimeout("the upstream took no more bytes in time") from exc
            if protocol.lost:
                failure = protocol.failure
                raise httpcore.WriteError(str(failure or "the connection closed")) from failure

    async def aclose(self) -> None:
        # As anyio does: at once, whatever is left unsent or unread (a cancelled stream must
        # close its upstream connection now).
        self._transport.abort()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        protocol = self._protocol
        try:
            async with asyncio.timeout(timeout):
                transport = await protocol.loop.start_tls(
                    self._transport, protocol, ssl_context, server_hostname=server_hostname
                )
        except TimeoutError as exc:
            self._transport.abort()
            raise httpcore.ConnectTimeout("the TLS handshake timed out") from exc
        except (OSError, ssl.SSLError, ConnectionError) as exc:
            self._transport.abort()
            raise httpcore.ConnectError(str(exc) or type(exc).__name__) from exc
        if transport is None:  # the connection closed during the handshake
            raise httpcore.ConnectError("the connection closed during the TLS handshake")
        return _Stream(transport, protocol)

    def get_extra_info(self, info: str) -> Any:
        if info == "is_readable":
            # For an idle connection httpcore asks whether the peer sent anything, which can
            # only be its close: here that has already been read off the socket.
            protocol = self._protocol
            return bool(protocol.buffer) or protocol.eof or protocol.lost
        if info == "ssl_object":
            return self._transport.get_extra_info("ssl_object")
        if info == "client_addr":
            return self._transport.get_extra_info("sockname")
        if info == "server_addr":
            return self._transport.get_extra_info("peername")
        if info == "socket":
            return self._transport.get_extra_info("socket")
        return None


def _expire(reader: asyncio.Future[None]) -> None:
    if not reader.done():
        reader.set_exception(TimeoutError())
