"""Request limits and the caps on concurrent calls.

Every limit fails the call before any provider sees it: INVALID_ARGUMENT with reason
LIMIT_EXCEEDED naming the limit, or RESOURCE_EXHAUSTED with reason OVERLOADED for the caps.

The message-size limit needs help from the transport: gRPC itself refuses a message over its
own limit with a bare RESOURCE_EXHAUSTED that names nothing. So the transport's limit is set
to twice the configured one, and `MessageSizeInterceptor` hands the servicer an `Oversized`
marker in place of any request between the two, which the admission turns into LIMIT_EXCEEDED.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import grpc

from providers.sdk.errors import LimitExceededError, OverloadedError
from server.security.auth import SERVICE_PREFIX
from server.security.config import LimitsConfig

# gRPC takes the limit as a C int.
_MAX_TRANSPORT_LIMIT = 2**31 - 1


def transport_receive_limit(max_message_bytes: int) -> int:
    """The limit to give gRPC so that a message somewhat over ours still reaches us."""
    return min(2 * max_message_bytes, _MAX_TRANSPORT_LIMIT)


class Oversized:
    """Stands in for a request message over `max_receive_message_bytes`, which is not parsed."""

    __slots__ = ("size",)

    def __init__(self, size: int) -> None:
        self.size = size


class MessageSizeInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]  # grpc is untyped
    """Replaces an oversized ModelRuntimeService request with `Oversized` before it is parsed."""

    def __init__(self, max_message_bytes: int) -> None:
        self._max = max_message_bytes
        # method -> (the handler gRPC gave, ours): built once per method, not per call.
        self._checked: dict[str, tuple[grpc.RpcMethodHandler, grpc.RpcMethodHandler]] = {}

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        handler = await continuation(handler_call_details)
        method: str = handler_call_details.method
        if handler is None or not method.startswith(SERVICE_PREFIX):
            return handler
        cached = self._checked.get(method)
        if cached is None or cached[0] is not handler:
            cached = (handler, self._size_checked(handler))
            self._checked[method] = cached
        return cached[1]

    def _size_checked(self, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        parse = handler.request_deserializer
        limit = self._max

        def checked(data: bytes) -> Any:
            return Oversized(len(data)) if len(data) > limit else parse(data)

        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                handler.unary_unary,
                request_deserializer=checked,
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                handler.unary_stream,
                request_deserializer=checked,
                response_serializer=handler.response_serializer,
            )
        return handler


class RequestLimits:
    """The size limits on one request's content."""

    def __init__(self, config: LimitsConfig, max_message_bytes: int) -> None:
        self.max_message_bytes = max_message_bytes
        # (request field, config key, limit); each request type checks the fields it has.
        self._limits = [
            (field, key, limit)
            for field, key, limit in (
                ("prompt_messages", "max_prompt_messages", config.max_prompt_messages),
                ("file", "max_audio_bytes", config.max_audio_bytes),
                ("texts", "max_embedding_texts", config.max_embedding_texts),
            )
            if limit is not None
        ]
        self._by_type: dict[type, list[tuple[str, str, int]]] = {}

    def check_size(self, request: object) -> None:
        if isinstance(request, Oversized):
            raise LimitExceededError(
                "message",
                "max_receive_message_bytes",
                self.max_message_bytes,
                request.size,
            )

    def check(self, request: object) -> None:
        checks = self._by_type.get(type(request))
        if checks is None:
            fields = getattr(getattr(request, "DESCRIPTOR", None), "fields_by_name", {})
            checks = self._by_type[type(request)] = [c for c in self._limits if c[0] in fields]
        for field, key, limit in checks:
            size = len(getattr(request, field))
            if size > limit:
                raise LimitExceededError(
                    field,
                    key,
                    limit,
                    size,
                    provider=getattr(request, "provider", "") or None,
                    model=getattr(request, "model", "") or None,
                )


class ConcurrencyLimiter:
    """Counts calls in progress, in total and per provider, and sheds those over a cap.

    Only the server's event loop touches the counts, so they need no lock."""

    def __init__(self, config: LimitsConfig) -> None:
        self._total_cap = config.max_concurrent_calls
        self._provider_cap = config.max_concurrent_calls_per_provider
        self._provider_caps = dict(config.provider_concurrency)
        self._retry_after = config.overloaded_retry_after_seconds
        self.total = 0
        self._by_provider: dict[str, int] = {}

    def acquire(self, provider: str) -> Callable[[], None]:
        """Counts one call in; returns the function that counts it out (once)."""
        if self._total_cap is not None and self.total >= self._total_cap:
            raise OverloadedError(
                f"this server is at its limit of {self._total_cap} concurrent calls; retry "
                "later or on another replica",
                retry_after=self._retry_after,
            )
        cap = self._provider_caps.get(provider, self._provider_cap) if provider else None
        if cap is not None and self._by_provider.get(provider, 0) >= cap:
            raise OverloadedError(
                f"this server is at its limit of {cap} concurrent calls to provider "
                f"{provider!r}; retry later or on another replica",
                provider=provider,
                retry_after=self._retry_after,
            )
        self.total += 1
        if provider:
            self._by_provider[provider] = self._by_provider.get(provider, 0) + 1
        released = False

        def release() -> None:
            nonlocal released
            if released:
                return
            released = True
            self.total -= 1
            if provider:
                left = self._by_provider[provider] - 1
                if left:
                    self._by_provider[provider] = left
                else:
                    # Names come from callers: keep only those with calls in progress.
                    del self._by_provider[provider]

        return release
