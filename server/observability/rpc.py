"""The per-RPC hook of the servicer: one `RpcScope` per call, opened and closed by the
servicer's shared frame (`_call` / `_stream`), and everything that happens at those two moments:
the log line, the metrics, the trace span, and the drain's record of calls in flight.

Nothing here runs per chunk except `RpcScope.first_message` (one comparison) and the debug
line, which is off unless `modelruntime.rpc.chunks` logs at DEBUG.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid
from collections.abc import Sequence
from typing import Any, NamedTuple

import grpc

from modelruntime.v1 import model_runtime_service_pb2 as pb
from providers.sdk import ProviderRegistry, errors
from providers.sdk.credentials import secret_values
from providers.sdk.entities.schema import CredentialFormSchema
from server.errors import code_and_reason
from server.observability.logs import hold_secrets
from server.observability.metrics import RpcMetrics
from server.observability.tracing import Tracing, end_rpc_span

logger = logging.getLogger("modelruntime.rpc")
chunk_logger = logging.getLogger("modelruntime.rpc.chunks")

STREAMING_METHODS = frozenset({"StreamLLM", "InvokeTTS"})
# A request id the caller (or Envoy, as x-request-id) sent is kept when it looks like one.
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
# The longest provider or model name a log line repeats.
_MAX_NAME = 128


class RpcScope:
    """What the servicer and its hooks learn about one RPC."""

    __slots__ = (
        "cancelled",
        "chunks",
        "cut",
        "debug",
        "first_message_at",
        "method",
        "model",
        "provider",
        "request_id",
        "retries",
        "span",
        "started",
        "task",
    )

    def __init__(self, method: str, request: Any, request_id: str | None) -> None:
        self.method = method
        self.provider: str = getattr(request, "provider", "")
        self.model: str = getattr(request, "model", "")
        self.started = time.perf_counter()
        self.request_id = request_id or uuid.uuid4().hex[:16]
        self.chunks = 0
        # Attempts made again after a retryable upstream failure (server/retries.py).
        self.retries = 0
        self.cancelled = False
        # Set when the drain's grace period ran out and the server cancelled this call.
        self.cut = False
        self.first_message_at: float | None = None
        self.debug = chunk_logger.isEnabledFor(logging.DEBUG)
        self.span: Any = None
        self.task: asyncio.Task[Any] | None = asyncio.current_task()

    def message_sent(self, items: int = 1) -> None:
        """A stream's message with `items` chunks (or pieces) has gone to gRPC (the hot path:
        keep it tiny). `chunks` counts items, which one message may carry several of."""
        if not self.chunks:
            self.first_message_at = time.perf_counter()
        if self.debug:
            for number in range(self.chunks + 1, self.chunks + items + 1):
                chunk_logger.debug(
                    "%s chunk %d of a message of %d request_id=%s",
                    self.method,
                    number,
                    items,
                    self.request_id,
                )
        self.chunks += items


class SecretFields:
    """Each provider's credential form fields, to tell which values of a request's
    credentials are secrets (secret-input) to keep out of the logs."""

    def __init__(self, registry: ProviderRegistry) -> None:
        self._forms: dict[str, list[CredentialFormSchema]] = {}
        for provider in registry.providers:
            schema = provider.schema
            forms = (schema.provider_credential_schema, schema.model_credential_schema)
            self._forms[provider.name] = [
                field for form in forms if form for field in form.credential_form_schemas
            ]

    def values(self, provider: str, credentials: Any) -> list[str]:
        form = self._forms.get(provider)
        return secret_values(form, credentials) if form else []


class RpcHooks:
    """Opens and closes every RPC's scope; owns the drain state. Without metrics or tracing
    it only logs, which is what a bare `ModelRuntimeServicer(registry)` gets."""

    def __init__(
        self,
        metrics: RpcMetrics | None = None,
        tracing: Tracing | None = None,
        secret_fields: SecretFields | None = None,
    ) -> None:
        self.metrics = metrics
        self.tracing = tracing
        self.secret_fields = secret_fields
        self.in_flight: set[RpcScope] = set()
        self.draining = False
        self.grace_period: float = 0.0
        self._idle: asyncio.Event | None = None

    # ---- the servicer's side -----------------------------------------------------------------

    def begin(self, method: str, request: Any, context: grpc.aio.ServicerContext) -> RpcScope:
        metadata = context.invocation_metadata()
        scope = RpcScope(method, request, _request_id(metadata))
        credentials = getattr(request, "credentials", None)
        if credentials and self.secret_fields is not None:
            hold_secrets(self.secret_fields.values(scope.provider, credentials))
        if self.tracing is not None:
            scope.span = self.tracing.start_rpc_span(method, metadata)
        self.in_flight.add(scope)
        if self.metrics is not None:
            self.metrics.in_flight.inc()
            if method in STREAMING_METHODS:
                self.metrics.stream_opened(method)
        return scope

    def admit(self) -> None:
        """Refuses a call that arrives while the server drains."""
        if self.draining:
            raise errors.ShuttingDownError(
                "the server is shutting down and takes no new calls; retry on another replica"
            )

    def cancelled(self, scope: RpcScope) -> errors.ModelRuntimeError | None:
        """What a CancelledError in `scope`'s task means: None for the caller's own
        cancellation (re-raise it), or the status to end the call with when the drain cut it."""
        if not scope.cut:
            scope.cancelled = True
            return None
        task = asyncio.current_task()
        if task is not None:
            task.uncancel()
        return errors.ShuttingDownError(
            "the server is shutting down and ended this call when its grace period of "
            f"{self.grace_period:g}s ran out; retry on another replica"
        )

    def finish(
        self, scope: RpcScope, failure: errors.ModelRuntimeError | None, response: Any
    ) -> None:
        """Ends the RPC's record: `response` is the unary answer or a stream's last message."""
        seconds = time.perf_counter() - scope.started
        if failure is None and scope.cut:
            # Cut while gRPC was writing to a caller that stopped reading: the caller gets the
            # transport's UNAVAILABLE, and this is what happened.
            scope.cancelled = False
            failure = errors.ShuttingDownError("cut by the drain while the caller was not reading")
        if failure is not None:
            status_code, reason = code_and_reason(failure)
            code = status_code.name
        else:
            code, reason = ("CANCELLED" if scope.cancelled else "OK"), ""
        usage = _usage(response) if failure is None and response is not None else None
        ttft = _time_to_first_token(scope, usage) if scope.method == "StreamLLM" else None
        _log(scope, failure, code, reason, seconds, usage, ttft)
        self.in_flight.discard(scope)
        if self.metrics is not None:
            self._record(scope, failure, code, reason, seconds, usage, ttft)
        if scope.span is not None:
            end_rpc_span(scope.span, code, reason, _span_attributes(scope, usage))
        if self._idle is not None and not self.in_flight:
            self._idle.set()

    def _record(
        self,
        scope: RpcScope,
        failure: errors.ModelRuntimeError | None,
        code: str,
        reason: str,
        seconds: float,
        usage: _Usage | None,
        ttft: float | None,
    ) -> None:
        metrics = self.metrics
        assert metrics is not None
        metrics.in_flight.dec()
        if scope.method in STREAMING_METHODS:
            metrics.stream_closed(scope.method)
        upstream_reason = reason if isinstance(failure, errors.InvokeError) else None
        metrics.finished(scope.method, scope.provider, scope.model, code, seconds, upstream_reason)
        if usage is not None or ttft is not None:
            used = usage or _NO_USAGE
            metrics.usage(
                scope.provider,
                scope.model,
                used.input_tokens,
                used.output_tokens,
                used.price,
                used.currency,
                ttft,
            )

    # ---- the drain ---------------------------------------------------------------------------

    def start_draining(self, grace_period: float) -> None:
        self.draining = True
        self.grace_period = grace_period
        self._idle = asyncio.Event()
        if not self.in_flight:
            self._idle.set()
        if self.metrics is not None:
            self.metrics.draining.set(1)

    async def wait_idle(self, timeout: float) -> bool:
        """True once no call is in flight, False if some still are after `timeout` seconds."""
        assert self._idle is not None, "start_draining first"
        try:
            async with asyncio.timeout(timeout):
                await self._idle.wait()
        except TimeoutError:
            return False
        return True

    def cut_in_flight(self) -> int:
        """Cancels every call still in flight; each ends with UNAVAILABLE / SHUTTING_DOWN, and
        its provider code (and upstream request) is cancelled with it."""
        cut = 0
        for scope in list(self.in_flight):
            if scope.task is not None and not scope.task.done():
                scope.cut = True
                scope.task.cancel()
                cut += 1
        return cut


class _Usage(NamedTuple):
    input_tokens: int
    output_tokens: int
    price: str
    currency: str
    # The runtime's measure of an LLM call's first output (0 when unknown).
    time_to_first_token: float = 0.0


def _usage(response: Any) -> _Usage | None:
    if isinstance(response, pb.StreamLLMResponse):
        if not response.chunks or not response.chunks[-1].delta.HasField("usage"):
            return None
        llm = response.chunks[-1].delta.usage
    elif isinstance(response, pb.InvokeLLMResponse):
        if not response.result.HasField("usage"):
            return None
        llm = response.result.usage
    elif isinstance(response, pb.InvokeTextEmbeddingResponse):
        if not response.HasField("usage"):
            return None
        usage = response.usage
        return _Usage(usage.tokens, 0, usage.total_price, usage.currency)
    else:
        return None
    return _Usage(
        llm.prompt_tokens,
        llm.completion_tokens,
        llm.total_price,
        llm.currency,
        llm.time_to_first_token,
    )


def _time_to_first_token(scope: RpcScope, usage: _Usage | None) -> float | None:
    """The runtime's own measure (to the first output from the upstream) when the stream
    finished with usage; else, for a stream that ended early, to the first message sent."""
    if usage is not None and usage.time_to_first_token > 0:
        return usage.time_to_first_token
    if scope.first_message_at is None:
        return None
    return scope.first_message_at - scope.started


_NO_USAGE = _Usage(0, 0, "", "")


def _request_id(metadata: Sequence[tuple[str, Any]] | None) -> str | None:
    for key, value in metadata or ():
        if key == "x-request-id" and isinstance(value, str) and _REQUEST_ID.fullmatch(value):
            return value
    return None


def _span_attributes(scope: RpcScope, usage: _Usage | None) -> dict[str, str | int | float]:
    attributes: dict[str, str | int | float] = {"modelruntime.request_id": scope.request_id}
    if scope.provider:
        attributes["modelruntime.provider"] = scope.provider[:_MAX_NAME]
    if scope.model:
        attributes["modelruntime.model"] = scope.model[:_MAX_NAME]
    if scope.method in STREAMING_METHODS:
        attributes["modelruntime.messages"] = scope.chunks
    if usage is not None:
        attributes["gen_ai.usage.input_tokens"] = usage.input_tokens
        attributes["gen_ai.usage.output_tokens"] = usage.output_tokens
    return attributes


def _log(
    scope: RpcScope,
    failure: errors.ModelRuntimeError | None,
    code: str,
    reason: str,
    seconds: float,
    usage: _Usage | None,
    ttft: float | None,
) -> None:
    if not logger.isEnabledFor(logging.INFO):
        return
    outcome = "Cancelled" if scope.cancelled else type(failure).__name__ if failure else "OK"
    used = usage or _NO_USAGE
    fields: dict[str, Any] = {
        "method": scope.method,
        "provider": scope.provider[:_MAX_NAME],
        "model": scope.model[:_MAX_NAME],
        "code": code,
        "reason": reason,
        "outcome": outcome,
        "latency_ms": round(seconds * 1000, 1),
        "messages": scope.chunks,
        "input_tokens": used.input_tokens,
        "output_tokens": used.output_tokens,
        "request_id": scope.request_id,
        "retries": scope.retries,
    }
    if used.price:
        fields["price"] = used.price
        fields["currency"] = used.currency
    if ttft is not None:
        fields["time_to_first_token_ms"] = round(ttft * 1000, 1)
    if scope.span is not None:
        fields["trace_id"] = format(scope.span.get_span_context().trace_id, "032x")
    logger.info(
        "%s provider=%s model=%s outcome=%s chunks=%d latency_ms=%.1f request_id=%s code=%s "
        "reason=%s input_tokens=%d output_tokens=%d retries=%d",
        scope.method,
        fields["provider"] or "-",
        fields["model"] or "-",
        outcome,
        scope.chunks,
        seconds * 1000,
        scope.request_id,
        code,
        reason or "-",
        used.input_tokens,
        used.output_tokens,
        scope.retries,
        extra={"rpc": fields},
    )
