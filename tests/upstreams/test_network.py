"""providers.sdk.network: the asyncio network layer under every upstream connection, on real
sockets (a raw asyncio server on loopback)."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable

import httpcore
import pytest

from providers.sdk.network import AsyncioBackend

BIG = bytes(range(256)) * 8192  # 2 MiB, well past what the connection buffers unread

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def _server(handler: Handler) -> AsyncIterator[int]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


async def test_a_slow_reader_gets_every_byte_in_order() -> None:
    async def send_big(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(BIG)
        await writer.drain()
        writer.close()

    async for port in _server(send_big):
        stream = await AsyncioBackend().connect_tcp("127.0.0.1", port, timeout=5)
        received = bytearray()
        for _ in range(10_000):  # bounded: 2 MiB in reads of at most 64 KiB
            piece = await stream.read(65536, timeout=5)
            if not piece:
                break
            assert len(piece) <= 65536
            received += piece
            await asyncio.sleep(0.001)  # slower than the socket: the buffer fills and pauses
        await stream.aclose()
    assert hashlib.sha256(received).digest() == hashlib.sha256(BIG).digest()


async def test_a_read_that_waits_too_long_is_a_read_timeout() -> None:
    async def say_nothing(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # until the client goes

    async for port in _server(say_nothing):
        stream = await AsyncioBackend().connect_tcp("127.0.0.1", port, timeout=5)
        with pytest.raises(httpcore.ReadTimeout):
            await stream.read(65536, timeout=0.05)
        await stream.aclose()


async def test_a_refused_connection_is_a_connect_error() -> None:
    async def nothing(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    async for port in _server(nothing):
        free_port = port
    with pytest.raises(httpcore.ConnectError):
        await AsyncioBackend().connect_tcp("127.0.0.1", free_port, timeout=5)


async def test_an_idle_connection_the_peer_closed_reads_as_readable() -> None:
    # httpcore drops an idle pooled connection when its socket is readable: the peer's close.
    closed = asyncio.Event()

    async def close_at_once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()
        closed.set()

    async for port in _server(close_at_once):
        stream = await AsyncioBackend().connect_tcp("127.0.0.1", port, timeout=5)
        await asyncio.wait_for(closed.wait(), 5)
        for _ in range(200):  # bounded: the close reaches us within a few loop turns
            if stream.get_extra_info("is_readable"):
                break
            await asyncio.sleep(0.01)
        assert stream.get_extra_info("is_readable")
        assert await stream.read(65536, timeout=5) == b""
        await stream.aclose()
