"""Talking to upstream HTTP APIs, the same way for every provider.

- One pooled `httpx.AsyncClient` per upstream base URL (and event loop), kept for the life of
  the process, so every call reuses warm keep-alive connections; its connections are ours
  (`providers.sdk.transport`), not httpcore's.
- Every request's timeout is bounded by the caller's deadline (`providers.sdk.deadline`).
- Transport failures and error statuses become the runtime's `InvokeError`s with messages a
  user can act on; `Retry-After` and `retry-after-ms` become `retry_after`.
- Server-sent events are read with httpx-sse, which accepts `\\n`, `\\r\\n` and `\\r` line
  endings and skips `:` comments (keep-alives).

Each provider knows its own error body; it passes a `check` callback that reads the body and
raises `error_for_status(...)` with the vendor's message (see `read_error_body`).
"""

from __future__ import annotations

import asyncio
import json
import ssl
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from contextlib import aclosing, asynccontextmanager, contextmanager
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
from httpx_sse import EventSource, ServerSentEvent, SSEError
from httpx_sse._decoders import SSEDecoder

from providers.sdk.deadline import remaining
from providers.sdk.errors import (
    InvokeAuthorizationError,
    InvokeBadRequestError,
    InvokeConnectionError,
    InvokeError,
    InvokeQuotaExceededError,
    InvokeRateLimitError,
    InvokeServerUnavailableError,
    InvokeTimeoutError,
)
from providers.sdk.outbound import OutboundPolicy, current_policy
from providers.sdk.transport import UPSTREAM_BODY, ResponseBody, UpstreamTransport

__all__ = [
    "ErrorCheck",
    "ServerSentEvent",
    "add_client_hook",
    "client_for",
    "close_clients",
    "error_for_status",
    "open_stream",
    "read_error_body",
    "request",
    "request_json",
    "retry_after",
    "sse_events",
    "stream_cut",
    "timeout",
    "upstream_errors",
]

# Without a caller deadline: connect quickly or report the upstream unreachable; a reasoning
# model may think for minutes before its first byte, so reads may wait long.
DEFAULT_TIMEOUT = httpx.Timeout(connect=10.0, read=600.0, write=60.0, pool=10.0)
# No cap on connections: the server bounds concurrent calls, and a cap here would queue long
# streams behind each other. Idle connections are kept to reuse TLS sessions.
MAX_IDLE_CONNECTIONS = 512
KEEPALIVE_EXPIRY = 60.0
# The longest error body text we quote back to the caller.
MAX_QUOTED_BODY = 300

# Raises the InvokeError that a non-2xx response means; never returns normally for one.
ErrorCheck = Callable[[httpx.Response], Awaitable[None]]

_ClientKey = tuple[str, OutboundPolicy | None]
ClientHook = Callable[[httpx.AsyncClient], None]
_client_hooks: list[ClientHook] = []
_clients: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, dict[_ClientKey, httpx.AsyncClient]
] = weakref.WeakKeyDictionary()


def client_for(base_url: str) -> httpx.AsyncClient:
    """The pooled client for `base_url` on the running event loop (an httpx client belongs to
    the loop it first ran on)."""
    loop = asyncio.get_running_loop()
    per_loop = _clients.get(loop)
    if per_loop is None:
        per_loop = _clients[loop] = {}
    base = base_url.rstrip("/")
    policy = current_policy()
    key = (base, policy)
    client = per_loop.get(key)
    if client is None or client.is_closed:
        client = per_loop[key] = httpx.AsyncClient(
            base_url=base,
            transport=UpstreamTransport(
                ssl_context=httpx.create_ssl_context(trust_env=False),
                policy=policy,
                max_idle=MAX_IDLE_CONNECTIONS,
                keepalive_expiry=KEEPALIVE_EXPIRY,
            ),
            timeout=DEFAULT_TIMEOUT,
            # A redirect would send the credentials' headers to an address nobody configured.
            follow_redirects=False,
            # Proxies and netrc from the environment would route provider keys unseen.
            trust_env=False,
        )
        client._cookies = _NoCookies()  # httpx takes no cookie policy; its setter re-wraps
        for hook in _client_hooks:
            hook(client)
    return client


def add_client_hook(hook: ClientHook) -> Callable[[], None]:
    """Calls `hook` with each pooled client as it is created (the server's tracing instruments
    them this way); returns the function that removes the hook again."""
    _client_hooks.append(hook)
    return lambda: _client_hooks.remove(hook)


class _NoCookies(httpx.Cookies):
    """A cookie jar that keeps nothing. One pooled client serves every caller and credential
    set, so a cookie one upstream answer set (a sticky session, a load balancer's affinity)
    must not ride along with another caller's requests. Reading each answer's Set-Cookie
    through urllib's cookie machinery was also ~2% of the server's CPU (the profile at
    concurrency 16)."""

    def extract_cookies(self, response: httpx.Response) -> None:
        return None


async def close_clients() -> None:
    """Closes the running loop's pooled clients (at server shutdown)."""
    per_loop = _clients.pop(asyncio.get_running_loop(), {})
    await asyncio.gather(*(client.aclose() for client in per_loop.values()))


def timeout(read_limit: float | None = None) -> httpx.Timeout:
    """The timeout for one upstream request: the defaults, shortened to the caller's deadline.
    `read_limit` (a provider's own setting, such as a credential's invoke timeout) further caps
    how long one read may wait for the upstream's next bytes."""
    left = remaining()
    if left is None and read_limit is None:
        return DEFAULT_TIMEOUT
    connect, read = DEFAULT_TIMEOUT.connect, DEFAULT_TIMEOUT.read
    write, pool = DEFAULT_TIMEOUT.write, DEFAULT_TIMEOUT.pool
    if left is not None:
        left = max(left, 0.001)
        connect, read, write, pool = min(left, 10.0), left, left, left
    if read_limit is not None:
        read = read_limit if read is None else min(read, read_limit)
    return httpx.Timeout(connect=connect, read=read, write=write, pool=pool)


def retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds the upstream asked us to wait: `retry-after-ms` first, then `retry-after` as
    seconds or an HTTP date. None when absent, unreadable or not positive."""
    value: float | None = None
    if (ms := headers.get("retry-after-ms")) is not None:
        try:
            value = float(ms) / 1000
        except ValueError:
            value = None
    if value is None and (after := headers.get("retry-after")) is not None:
        try:
            value = float(after)
        except ValueError:
            try:
                value = parsedate_to_datetime(after).timestamp() - time.time()
            except (TypeError, ValueError):
                value = None
    return value if value is not None and value > 0 else None


def error_for_status(
    status: int, message: str, headers: Mapping[str, str], *, quota: bool = False
) -> InvokeError:
    """The InvokeError an upstream's HTTP status means. `quota` marks a 429 (or 402) that says
    the credentials' quota or spend limit is used up, which waiting does not cure."""
    text = f"the upstream answered HTTP {status}: {message}" if message else f"HTTP {status}"
    if quota or status == 402:
        return InvokeQuotaExceededError(text)
    if status == 429:
        return InvokeRateLimitError(text, retry_after=retry_after(headers))
    if status in (401, 403):
        return InvokeAuthorizationError(text)
    if status in (408, 409) or status >= 500:
        return InvokeServerUnavailableError(text, retry_after=retry_after(headers))
    if 300 <= status < 400:
        location = headers.get("location", "")
        return InvokeBadRequestError(
            f"the upstream redirected (HTTP {status}) to {location or 'another address'}; "
            "configure the final address as the base URL"
        )
    return InvokeBadRequestError(text)


async def read_error_body(response: httpx.Response) -> tuple[Any, str]:
    """An error response's JSON body (None when it is not JSON) and its text, shortened, for
    quoting when the vendor's message cannot be found."""
    try:
        raw = await response.aread()
    except httpx.HTTPError:
        raw = b""
    text = raw.decode("utf-8", "replace").strip()
    try:
        body = json.loads(text) if text else None
    except ValueError:
        body = None
    if len(text) > MAX_QUOTED_BODY:
        text = text[:MAX_QUOTED_BODY] + "..."
    return body, text


def stream_cut(marker: str) -> InvokeConnectionError:
    """The error for a stream that ended before its end marker: an incomplete answer must never
    pass for a short one."""
    return InvokeConnectionError(
        f"the upstream closed the stream before its end ({marker}); the answer is incomplete"
    )


@contextmanager
def upstream_errors() -> Iterator[None]:
    """Turns httpx's transport exceptions (and unreadable JSON) into InvokeErrors."""
    try:
        yield
    except httpx.TimeoutException as exc:
        _raise_timeout(exc)
    except httpx.ConnectError as exc:
        if _is_tls_failure(exc):
            failure = InvokeConnectionError(f"the TLS handshake with the upstream failed: {exc}")
            failure.retryable = False  # a certificate or protocol mismatch does not heal
            raise failure from exc
        raise InvokeConnectionError(f"could not connect to the upstream: {exc}") from exc
    except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError) as exc:
        raise InvokeConnectionError(
            f"the connection to the upstream broke: {exc or type(exc).__name__}"
        ) from exc
    except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
        raise InvokeBadRequestError(f"the upstream URL is not usable: {exc}") from exc
    except httpx.DecodingError as exc:
        raise InvokeServerUnavailableError(
            f"the upstream's body could not be decoded: {exc}"
        ) from exc
    except SSEError as exc:
        raise InvokeServerUnavailableError(
            f"the upstream did not answer with an event stream: {exc}"
        ) from exc
    except json.JSONDecodeError as exc:
        raise InvokeServerUnavailableError(
            f"the upstream answered with malformed JSON ({exc.msg} at position {exc.pos})"
        ) from exc
    except httpx.TransportError as exc:
        raise InvokeConnectionError(f"talking to the upstream failed: {exc}") from exc


def _raise_timeout(exc: httpx.TimeoutException) -> None:
    if isinstance(exc, httpx.ConnectTimeout):
        raise InvokeConnectionError("could not connect to the upstream in time") from exc
    if isinstance(exc, httpx.PoolTimeout):
        raise InvokeServerUnavailableError(
            "no connection to the upstream was free in time"
        ) from exc
    raise InvokeTimeoutError("the upstream did not answer in time") from exc


def _is_tls_failure(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLError) or "SSL" in str(seen) or "certificate" in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


async def request(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    check: ErrorCheck,
    read_timeout: float | None = None,
    **kwargs: Any,
) -> httpx.Response:
    """A complete (non-streamed) request; `check` raises for a non-2xx answer. `read_timeout`
    caps each read's wait below the caller's deadline (see `timeout`)."""
    with upstream_errors():
        response = await client.request(method, url, timeout=timeout(read_timeout), **kwargs)
        if not response.is_success:
            await check(response)
            raise error_for_status(response.status_code, "", response.headers)
        return response


async def request_json(
    client: httpx.AsyncClient, method: str, url: str, *, check: ErrorCheck, **kwargs: Any
) -> Any:
    """`request`, then the body parsed as JSON (malformed JSON is an upstream fault)."""
    response = await request(client, method, url, check=check, **kwargs)
    with upstream_errors():
        return json.loads(response.content)


@asynccontextmanager
async def open_stream(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    check: ErrorCheck,
    read_timeout: float | None = None,
    **kwargs: Any,
) -> AsyncIterator[httpx.Response]:
    """A streamed request whose status has been checked. Leaving the block early (a cancelled
    call) closes the response, and with it the upstream connection, at once. Leaving it
    normally (the answer was read to its end marker) hands the rest of the body to a background
    reader, so the connection goes back to the pool without delaying the caller. `read_timeout`
    caps the wait for each piece of the body below the caller's deadline (see `timeout`)."""
    with upstream_errors():
        request = client.build_request(method, url, timeout=timeout(read_timeout), **kwargs)
        response = await client.send(request, stream=True)
        try:
            if not response.is_success:
                await check(response)
                raise error_for_status(response.status_code, "", response.headers)
            yield response
        except BaseException:
            await response.aclose()
            raise
        if not response.is_closed:  # httpx closes a response once its body has been read
            # Usually the body's terminator has arrived with the end marker and the connection
            # goes back to the pool now; a server that lingers after its end marker is given
            # a moment in the background, never waited for.
            body = response.extensions.get(UPSTREAM_BODY)
            if isinstance(body, ResponseBody):
                body.finish_in_background(_FINISH_BODY_WAIT)
            await response.aclose()


# After an end marker only the body's terminator is left; a server slower than this to send it
# loses its connection instead.
_FINISH_BODY_WAIT = 1.0


async def sse_events(response: httpx.Response) -> AsyncIterator[ServerSentEvent]:
    """The events of an SSE response, comments (keep-alives) skipped.

    Events are cut from the body's bytes here rather than by httpx-sse's `aiter_sse`, which
    decodes the body to text and splits it line by line through two more async generators:
    per streamed delta that cost ~10 us of the ~180 us the whole server spent (the benchmark's
    profile). The fields are read as httpx-sse reads them (`SSEDecoder`, the HTML standard's
    rules); its content-type check is kept."""
    with upstream_errors():
        EventSource(response)._check_content_type()
        events = _EventSplitter()
        async with aclosing(response.aiter_bytes()) as pieces:  # type: ignore[type-var]
            async for piece in pieces:
                for event in events.feed(piece):
                    yield event
        for event in events.finish():
            yield event


class _EventSplitter:
    """Cuts an SSE body into events as its bytes arrive. A line ends at `\r\n`, `\n` or `\r`
    (a `\r` at the end of a piece waits for the next, which may start with its `\n`); an
    event ends at an empty line; an event the body ends in the middle of is dropped, as the
    standard says."""

    __slots__ = ("_buffer", "_cr", "_decoder")

    def __init__(self) -> None:
        self._buffer = b""
        self._cr = False
        self._decoder = SSEDecoder()

    def feed(self, piece: bytes) -> list[ServerSentEvent]:
        if self._cr:
            piece = b"\r" + piece
        self._cr = piece.endswith(b"\r")
        if self._cr:
            piece = piece[:-1]
        if b"\r" in piece:
            piece = piece.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        buffer = self._buffer + piece if self._buffer else piece
        end = buffer.rfind(b"\n\n")
        if end < 0:
            self._buffer = buffer
            return []
        self._buffer = buffer[end + 2 :]
        decode = self._decoder.decode
        events = []
        for line in buffer[:end].decode("utf-8", "replace").split("\n"):
            if (event := decode(line)) is not None:
                events.append(event)
        if (event := decode("")) is not None:
            events.append(event)
        return events

    def finish(self) -> list[ServerSentEvent]:
        """At the end of the body: a `\r` held back for a `\n` that never came ends a line."""
        if not self._cr:
            return []
        self._cr = False
        return self.feed(b"\n")
