"""A bare HTTP/2 connection (frames on a socket, no gRPC) to see what the server does at the
connection level: its keepalive PINGs, and the GOAWAY it sends a client that pings too often.
Only the frames these tests need: SETTINGS, PING, GOAWAY; the rest are read and ignored."""

from __future__ import annotations

import os
import socket
import struct
import time
from dataclasses import dataclass

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
SETTINGS = 0x4
PING = 0x6
GOAWAY = 0x7
ACK = 0x1
# GOAWAY error codes (RFC 9113 section 7).
ENHANCE_YOUR_CALM = 0xB


@dataclass(frozen=True)
class Frame:
    type: int
    flags: int
    stream: int
    payload: bytes

    @property
    def goaway_error(self) -> int:
        assert self.type == GOAWAY
        return int(struct.unpack(">I", self.payload[4:8])[0])


class RawHttp2:
    """`with RawHttp2(address, answer_pings=...) as connection:`; the SETTINGS handshake is done
    on entry."""

    def __init__(self, address: str, answer_pings: bool = True) -> None:
        host, _, port = address.rpartition(":")
        self.socket = socket.create_connection((host, int(port)), timeout=5)
        self.answer_pings = answer_pings
        self.closed = False
        self.frames: list[Frame] = []
        self._buffer = b""

    def __enter__(self) -> RawHttp2:
        self.socket.sendall(PREFACE + _frame(SETTINGS, 0, b""))
        return self

    def __exit__(self, *exc: object) -> None:
        self.socket.close()

    def ping(self) -> None:
        try:
            self.socket.sendall(_frame(PING, 0, os.urandom(8)))
        except (BrokenPipeError, ConnectionResetError):
            self.closed = True

    def read_for(self, seconds: float) -> list[Frame]:
        """The frames that arrive within `seconds` (fewer if the server closes the connection),
        answering SETTINGS and, when `answer_pings`, the server's PINGs."""
        deadline = time.monotonic() + seconds
        received: list[Frame] = []
        while not self.closed and (left := deadline - time.monotonic()) > 0:
            self.socket.settimeout(left)
            try:
                data = self.socket.recv(65536)
            except TimeoutError:
                break
            except ConnectionResetError:
                data = b""
            if not data:
                self.closed = True
                break
            self._buffer += data
            received += self._parse()
        self.frames += received
        return received

    def _parse(self) -> list[Frame]:
        frames = []
        while len(self._buffer) >= 9:
            length = int.from_bytes(self._buffer[:3], "big")
            if len(self._buffer) < 9 + length:
                break
            kind, flags = self._buffer[3], self._buffer[4]
            stream = int.from_bytes(self._buffer[5:9], "big") & 0x7FFFFFFF
            frame = Frame(kind, flags, stream, self._buffer[9 : 9 + length])
            self._buffer = self._buffer[9 + length :]
            frames.append(frame)
            if kind == SETTINGS and not flags & ACK:
                self.socket.sendall(_frame(SETTINGS, ACK, b""))
            elif kind == PING and not flags & ACK and self.answer_pings:
                self.socket.sendall(_frame(PING, ACK, frame.payload))
        return frames


def _frame(kind: int, flags: int, payload: bytes, stream: int = 0) -> bytes:
    header = len(payload).to_bytes(3, "big") + bytes([kind, flags]) + stream.to_bytes(4, "big")
    return header + payload


def server_pings(frames: list[Frame]) -> list[Frame]:
    return [f for f in frames if f.type == PING and not f.flags & ACK]


def goaways(frames: list[Frame]) -> list[Frame]:
    return [f for f in frames if f.type == GOAWAY]
