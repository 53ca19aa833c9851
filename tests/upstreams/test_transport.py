"""providers.sdk.transport: HTTP/1.1 under every pooled upstream client, against raw asyncio
servers on loopback that write their answers byte for byte (so each framing, cut and quirk is
exactly what the test says)."""

from __future__ import annotations

import asyncio
import hashlib
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from security.certs import Authority

from providers.sdk.transport import UPSTREAM_BODY, ResponseBody, UpstreamTransport

BIG = bytes(range(256)) * 8192  # 2 MiB, well past what a connection buffers unread
Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class Server:
    """A raw server; counts the connections it accepted."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections = 0
        self.port = 0

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            await self.handler(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()


@asynccontextmanager
async def serving(handler: Handler, tls: ssl.SSLContext | None = None) -> AsyncIterator[Server]:
    server = Server(handler)
    listener = await asyncio.start_server(server._serve, "127.0.0.1", 0, ssl=tls)
    server.port = listener.sockets[0].getsockname()[1]
    try:
        yield server
    finally:
        listener.close()
        await asyncio.wait_for(listener.wait_closed(), 5)


@asynccontextmanager
async def client(
    port: int, *, scheme: str = "http", host: str = "127.0.0.1", tls: ssl.SSLContext | None = None
) -> AsyncIterator[httpx.AsyncClient]:
    transport = UpstreamTransport(ssl_context=tls or ssl.create_default_context())
    async with httpx.AsyncClient(
        base_url=f"{scheme}://{host}:{port}", transport=transport, timeout=5.0
    ) as http_client:
        yield http_client


async def read_request(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    """A request's head and its body (Content-Length or chunked)."""
    head = await reader.readuntil(b"\r\n\r\n")
    lower = head.lower()
    if b"transfer-encoding: chunked" in lower:
        body = b""
        while True:
            size = int((await reader.readuntil(b"\r\n"))[:-2], 16)
            piece = await reader.readexactly(size + 2)
            if size == 0:
                return head, body
            body += piece[:-2]
    for line in lower.split(b"\r\n"):
        if line.startswith(b"content-length:"):
            return head, await reader.readexactly(int(line.split(b":")[1]))
    return head, b""


def answer(body: bytes, *extra: bytes) -> bytes:
    return (
        b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: %d\r\n" % len(body)
        + b"".join(extra)
        + b"\r\n"
        + body
    )


def sends(sent: bytes, *, then_close: bool) -> Handler:
    """A server that answers the first request with `sent`, then closes the connection or waits
    for the client to."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(sent)
        await writer.drain()
        if not then_close:
            await reader.read()

    return handler


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


CHUNKED_HEAD = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
)


async def test_requests_reuse_one_kept_alive_connection() -> None:
    async def serve_many(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for n in range(5):
            _, body = await read_request(reader)
            writer.write(answer(b"%d:%s" % (n, body)))

    async with serving(serve_many) as server, client(server.port) as http_client:
        texts = [(await http_client.post("/x", content=b"hi %d" % n)).text for n in range(5)]
    assert texts == [f"{n}:hi {n}" for n in range(5)]
    assert server.connections == 1


async def test_an_answer_saying_connection_close_is_not_reused() -> None:
    async def serve_one(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(answer(b"bye", b"connection: close\r\n"))
        await writer.drain()

    async with serving(serve_one) as server, client(server.port) as http_client:
        for _ in range(3):
            assert (await http_client.get("/")).text == "bye"
    assert server.connections == 3


async def test_an_idle_connection_the_peer_closed_is_not_reused() -> None:
    async def serve_then_hang_up(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        await read_request(reader)
        writer.write(answer(b"ok"))  # keep-alive by default, and then closed anyway
        await writer.drain()

    async with serving(serve_then_hang_up) as server, client(server.port) as http_client:
        assert (await http_client.get("/")).text == "ok"
        await asyncio.sleep(0.05)  # the close reaches the idle connection
        assert (await http_client.get("/")).text == "ok"
    assert server.connections == 2


async def test_a_slow_reader_gets_every_byte_in_order() -> None:
    async def send_big(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(answer(BIG))
        await writer.drain()

    async with serving(send_big) as server, client(server.port) as http_client:
        received = bytearray()
        async with http_client.stream("GET", "/") as response:
            async for piece in response.aiter_raw():
                received += piece
                await asyncio.sleep(0.001)  # slower than the socket: the buffer fills, pauses
    assert hashlib.sha256(received).digest() == hashlib.sha256(BIG).digest()


async def test_each_piece_is_handed_out_as_it_arrives() -> None:
    # The second piece is sent only after the client has seen the first: a transport that
    # waited to fill a buffer would hang here.
    seen_first = asyncio.Event()

    async def two_pieces(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(CHUNKED_HEAD + chunk(b"data: 1\n\n"))
        await writer.drain()
        await asyncio.wait_for(seen_first.wait(), 5)
        writer.write(chunk(b"data: 2\n\n") + b"0\r\n\r\n")
        await writer.drain()

    async with serving(two_pieces) as server, client(server.port) as http_client:
        pieces = []
        async with http_client.stream("GET", "/") as response:
            async for piece in response.aiter_raw():
                pieces.append(piece)
                seen_first.set()
    assert pieces == [b"data: 1\n\n", b"data: 2\n\n"]


async def test_a_body_without_a_length_ends_with_the_connection() -> None:
    async def until_close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\npart one, ")
        await writer.drain()
        await asyncio.sleep(0.02)
        writer.write(b"part two")
        await writer.drain()

    async with serving(until_close) as server, client(server.port) as http_client:
        assert (await http_client.get("/")).text == "part one, part two"
        assert (await http_client.get("/")).text == "part one, part two"
    assert server.connections == 2


@pytest.mark.parametrize(
    "sent",
    [
        pytest.param(answer(b"0123456789")[:-4], id="content-length short"),
        pytest.param(CHUNKED_HEAD + chunk(b"data: 1\n\n"), id="chunked without terminator"),
        pytest.param(CHUNKED_HEAD + b"5\r\nab", id="chunk cut in the middle"),
    ],
)
async def test_a_body_cut_before_its_end_is_a_protocol_error(sent: bytes) -> None:
    async with serving(sends(sent, then_close=True)) as server, client(server.port) as http_client:
        with pytest.raises(httpx.RemoteProtocolError, match="before the end"):
            await http_client.get("/")


@pytest.mark.parametrize(
    "sent",
    [
        pytest.param(b"SSH-2.0-OpenSSH_9.6\r\n", id="not http"),
        pytest.param(b"HTTP/1.1 200 OK\r\ncontent-length: x\r\n\r\n", id="bad length"),
        pytest.param(CHUNKED_HEAD + b"zz\r\n", id="bad chunk size"),
    ],
)
async def test_an_answer_that_is_not_http_is_a_protocol_error(sent: bytes) -> None:
    async with serving(sends(sent, then_close=False)) as server, client(server.port) as http_client:
        with pytest.raises(httpx.RemoteProtocolError, match=r"not valid HTTP/1\.1"):
            await http_client.get("/")


async def test_no_answer_at_all_is_a_protocol_error() -> None:
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)

    async with serving(hang_up) as server, client(server.port) as http_client:
        with pytest.raises(httpx.RemoteProtocolError, match="without answering"):
            await http_client.get("/")


async def test_an_interim_answer_is_skipped() -> None:
    async def early_hints(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 103 Early Hints\r\nlink: </a>; rel=preload\r\n\r\n")
        writer.write(answer(b"final", b"x-final: yes\r\n"))
        await writer.drain()

    async with serving(early_hints) as server, client(server.port) as http_client:
        response = await http_client.get("/")
    assert (response.status_code, response.text) == (200, "final")
    assert "link" not in response.headers and response.headers["x-final"] == "yes"


async def test_a_read_that_waits_too_long_is_a_read_timeout() -> None:
    async def say_nothing(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()

    async with serving(say_nothing) as server, client(server.port) as http_client:
        with pytest.raises(httpx.ReadTimeout):
            await http_client.get("/", timeout=httpx.Timeout(5.0, read=0.05))


async def test_a_body_that_stalls_is_a_read_timeout() -> None:
    async def stall(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(CHUNKED_HEAD + chunk(b"data: 1\n\n"))
        await writer.drain()
        await reader.read()

    async with (
        serving(stall) as server,
        client(server.port) as http_client,
        http_client.stream("GET", "/", timeout=httpx.Timeout(5.0, read=0.05)) as response,
    ):
        with pytest.raises(httpx.ReadTimeout):
            async for _ in response.aiter_raw():
                pass


async def test_a_refused_connection_is_a_connect_error() -> None:
    async with serving(lambda reader, writer: asyncio.sleep(0)) as server:
        port = server.port
    async with client(port) as http_client:
        with pytest.raises(httpx.ConnectError):
            await http_client.get("/")


async def test_a_header_value_with_a_line_break_is_refused_unsent_and_unquoted() -> None:
    received: list[bytes] = []

    async def record(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        received.append(await reader.read(65536))

    async with serving(record) as server, client(server.port) as http_client:
        injected = "sk-fake\r\nx-admin: yes"
        with pytest.raises(httpx.LocalProtocolError) as raised:
            await http_client.get("/", headers={"authorization": injected})
    assert "sk-fake" not in str(raised.value)
    assert received == []


async def test_a_streamed_request_body_is_sent_chunked() -> None:
    heads: list[bytes] = []

    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head, body = await read_request(reader)
        heads.append(head)
        writer.write(answer(body))

    async def pieces() -> AsyncIterator[bytes]:
        for piece in (b"one ", b"", b"two ", b"three"):
            yield piece

    async with serving(echo) as server, client(server.port) as http_client:
        response = await http_client.post("/", content=pieces())
    assert response.text == "one two three"
    assert b"transfer-encoding: chunked" in heads[0].lower()


async def test_a_multipart_upload_arrives_whole() -> None:
    async def check(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        _, body = await read_request(reader)
        whole = BIG in body and b'name="model"\r\n\r\nm\r\n' in body
        writer.write(answer(b"whole" if whole else b"damaged"))

    async with serving(check) as server, client(server.port) as http_client:
        response = await http_client.post(
            "/", files={"file": ("a.wav", BIG, "audio/wav")}, data={"model": "m"}
        )
    assert response.text == "whole"


async def test_leaving_a_body_early_closes_its_connection_at_once() -> None:
    gone = asyncio.Event()

    async def endless(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(CHUNKED_HEAD)
        try:
            for n in range(1000):  # bounded: 10 s at most
                writer.write(chunk(b"data: %d\n\n" % n))
                await writer.drain()
                await asyncio.sleep(0.01)
        except ConnectionError:
            pass
        else:
            await reader.read()
        gone.set()

    async with serving(endless) as server, client(server.port) as http_client:
        async with http_client.stream("GET", "/") as response:
            async for _ in response.aiter_raw():
                break
        await asyncio.wait_for(gone.wait(), 1)


async def _end_marker_then(rest: bytes, pause: float) -> Handler:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for _ in range(2):
            await read_request(reader)
            writer.write(CHUNKED_HEAD + chunk(b"data: [DONE]\n\n"))
            await writer.drain()
            await asyncio.sleep(pause)
            writer.write(rest)
            await writer.drain()

    return serve


async def _read_to_end_marker(http_client: httpx.AsyncClient) -> None:
    async with http_client.stream("GET", "/") as response:
        async for piece in response.aiter_raw():
            if b"[DONE]" in piece:
                break
        body = response.extensions[UPSTREAM_BODY]
        assert isinstance(body, ResponseBody)
        body.finish_in_background(1.0)


async def test_a_terminator_after_the_end_marker_keeps_the_connection() -> None:
    handler = await _end_marker_then(b"0\r\n\r\n", pause=0.05)
    async with serving(handler) as server, client(server.port) as http_client:
        await _read_to_end_marker(http_client)
        await asyncio.sleep(0.1)  # the terminator arrives without a reader
        await _read_to_end_marker(http_client)
    assert server.connections == 1


async def test_content_after_the_end_marker_closes_the_connection() -> None:
    handler = await _end_marker_then(chunk(b"data: more\n\n") + b"0\r\n\r\n", pause=0.05)
    async with serving(handler) as server, client(server.port) as http_client:
        await _read_to_end_marker(http_client)
        await asyncio.sleep(0.1)
        await _read_to_end_marker(http_client)
    assert server.connections == 2


async def test_bytes_after_an_answer_keep_its_connection_out_of_the_pool() -> None:
    async def too_much(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(answer(b"one") + b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\ntwo")
        await writer.drain()
        await read_request(reader)  # never comes: the client does not reuse this connection
        writer.write(answer(b"reused"))

    async with serving(too_much) as server, client(server.port) as http_client:
        assert (await http_client.get("/")).text == "one"
        assert (await http_client.get("/")).text == "one"
    assert server.connections == 2


async def test_https_is_verified_against_the_host_name(tmp_path: Path) -> None:
    authority = Authority("transport test CA")
    cert_file, key_file = authority.server().write(tmp_path, "server")
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert_file, key_file)
    trusting = ssl.create_default_context(cadata=authority.pem.decode())

    async def hello(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await read_request(reader)
            writer.write(answer(b"over tls"))

    async with serving(hello, tls=server_tls) as server:
        async with client(server.port, scheme="https", host="localhost", tls=trusting) as ok:
            assert (await ok.get("/")).text == "over tls"
            assert (await ok.get("/")).text == "over tls"
        async with client(server.port, scheme="https", host="localhost") as untrusting:
            with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                await untrusting.get("/")
    # Both requests went over the one trusted connection; the refused handshake never reached
    # the handler.
    assert server.connections == 1
