"""How a streamed answer is cut into events: standard server-sent events, or a server's own
delimiter (the `stream_mode_delimiter` credential, as in Dify's plugin).

With the default delimiter (a blank line, `\\n\\n`) the stream is read as SSE by httpx-sse, which
also accepts `\\r\\n` and `\\r` line endings and skips `:` keep-alive comments. Some servers
frame differently: one `data: {...}` line per event with no blank line between them (which SSE
would join into one unreadable event), or bare JSON lines without `data:`. For those the user
sets the delimiter (`\\n`, for instance) and `delimited_payloads` splits the text on it.
"""

from __future__ import annotations

import codecs
from collections.abc import AsyncIterator, Mapping

import httpx

from providers.sdk.errors import FieldViolation, InvalidCredentialsError
from providers.sdk.http import upstream_errors
from providers.sdk.protocols import openai_wire

# What the credential holds when the user left it alone: the escaped text `\n\n`.
DEFAULT_DELIMITER = "\\n\\n"
# Delimiters that are SSE's own blank line, whatever the line ending.
_SSE_BLANK_LINES = frozenset({"\n\n", "\r\n\r\n", "\r\r"})
# Lines of an SSE event that carry no data.
_SSE_FIELDS_WITHOUT_DATA = ("event:", "id:", "retry:")


def stream_delimiter(credentials: Mapping[str, str]) -> str | None:
    """The server's own event delimiter, or None when the stream is standard SSE.

    The credential is written with backslash escapes (`\\n`, `\\r\\n`, `\\u001e`), as Dify
    stores it.
    """
    written = credentials.get("stream_mode_delimiter") or DEFAULT_DELIMITER
    try:
        delimiter = codecs.decode(written, "unicode_escape")
    except UnicodeDecodeError:
        delimiter = ""
    if not delimiter:
        raise InvalidCredentialsError(
            [
                FieldViolation(
                    "credentials.stream_mode_delimiter",
                    "should be a non-empty delimiter written with backslash escapes, e.g. \\n\\n",
                )
            ]
        )
    return None if delimiter in _SSE_BLANK_LINES else delimiter


def event_reader(delimiter: str | None) -> openai_wire.EventReader:
    """How to read the events of a stream framed with `delimiter` (see `stream_delimiter`)."""
    if delimiter is None:
        return openai_wire.sse_data_events

    async def read(response: httpx.Response) -> AsyncIterator[tuple[str, str]]:
        async for payload in delimited_payloads(response, delimiter):
            yield payload, ""

    return read


async def delimited_payloads(response: httpx.Response, delimiter: str) -> AsyncIterator[str]:
    """The payloads of a stream whose events are separated by `delimiter`.

    An event's `data:` lines are its payload (joined by newlines, as SSE does); an event without
    any is taken whole, so bare JSON lines work; comments and events without data are skipped.
    What follows the last delimiter counts as a final event, since some servers end without one.
    """
    pending = ""
    with upstream_errors():
        async for text in response.aiter_text():
            pending += text
            *events, pending = pending.split(delimiter)
            for event in events:
                payload = _payload(event)
                if payload is not None:
                    yield payload
    payload = _payload(pending)
    if payload is not None:
        yield payload


def _payload(event: str) -> str | None:
    event = event.strip()
    if not event:
        return None
    lines = event.splitlines()
    data = [line[5:].removeprefix(" ") for line in lines if line.startswith("data:")]
    if data:
        return "\n".join(data)
    if all(line.startswith(":") or line.startswith(_SSE_FIELDS_WITHOUT_DATA) for line in lines):
        return None
    return event
