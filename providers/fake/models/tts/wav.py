"""A tiny WAV writer and reader: the fake TTS writes the spoken text into the file so that the
fake speech-to-text can read it back, which makes a round trip testable."""

from __future__ import annotations

import struct

SAMPLE_RATE = 8000
# A custom RIFF chunk; players skip chunks they do not know.
TEXT_CHUNK_ID = b"mrtx"


def wav_with_text(text: str, seconds: float) -> bytes:
    payload = text.encode()
    if len(payload) % 2:
        payload += b"\0"
    samples = b"\0\0" * int(SAMPLE_RATE * seconds)
    fmt = struct.pack("<HHIIHH", 1, 1, SAMPLE_RATE, SAMPLE_RATE * 2, 2, 16)
    body = (
        b"WAVE"
        + b"fmt "
        + struct.pack("<I", len(fmt))
        + fmt
        + TEXT_CHUNK_ID
        + struct.pack("<I", len(payload))
        + payload
        + b"data"
        + struct.pack("<I", len(samples))
        + samples
    )
    return b"RIFF" + struct.pack("<I", len(body)) + body


def text_in_wav(data: bytes) -> str | None:
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return None
    offset = 12
    while offset + 8 <= len(data):
        chunk_id = data[offset : offset + 4]
        (size,) = struct.unpack("<I", data[offset + 4 : offset + 8])
        if chunk_id == TEXT_CHUNK_ID:
            return data[offset + 8 : offset + 8 + size].rstrip(b"\0").decode(errors="replace")
        offset += 8 + size + (size % 2)
    return None
