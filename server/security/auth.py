"""Caller authentication: an API key per calling service, sent as `authorization: Bearer <key>`.

The server knows each key only by its SHA-256. A fast hash is enough here, unlike for
passwords: an API key is a long random string (`openssl rand -hex 32`), so its hash cannot be
reversed by guessing, and a slow hash (bcrypt, argon2) would cost milliseconds on every call.
What the hash buys is that a leaked config file or secret does not leak the keys.

`AuthInterceptor` checks the key of every ModelRuntimeService call before its request is even
parsed; health checks and reflection stay open for probes. A call it lets through carries the
caller's `ApiKey` in `current_caller`, and the servicer's admission (`guard.py`) checks what the
key may use once the request names a provider, model and credential set.
"""

from __future__ import annotations

import contextvars
import fnmatch
import hashlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import grpc

from providers.sdk.errors import PermissionDeniedError, UnauthenticatedError
from server.errors import status_for
from server.security.config import ApiKeyConfig

logger = logging.getLogger("modelruntime.security")

SERVICE_PREFIX = "/modelruntime.v1.ModelRuntimeService/"

# The key the current RPC was authenticated with; None when authentication is off. Set by the
# interceptor in the RPC's own task, which gRPC then runs the servicer method in.
current_caller: contextvars.ContextVar[ApiKey | None] = contextvars.ContextVar(
    "modelruntime_caller", default=None
)


@dataclass(frozen=True, slots=True)
class ApiKey:
    """What one authenticated caller may use; None means anything."""

    name: str
    providers: frozenset[str] | None
    models: tuple[str, ...] | None
    credential_sets: frozenset[str] | None

    @classmethod
    def from_config(cls, config: ApiKeyConfig) -> ApiKey:
        return cls(
            name=config.name,
            providers=None if config.providers is None else frozenset(config.providers),
            models=None if config.models is None else tuple(config.models),
            credential_sets=(
                None if config.credential_sets is None else frozenset(config.credential_sets)
            ),
        )

    def check(self, provider: str, model: str, credential_set: str) -> None:
        """Raises PermissionDeniedError unless this key may use what the request names."""
        if provider and self.providers is not None and provider not in self.providers:
            raise PermissionDeniedError(
                f"API key {self.name!r} may not use provider {provider!r}", provider=provider
            )
        if model and self.models is not None and not self._allows_model(provider, model):
            raise PermissionDeniedError(
                f"API key {self.name!r} may not use model {model!r} of provider {provider!r}",
                provider=provider,
                model=model,
            )
        if (
            credential_set
            and self.credential_sets is not None
            and credential_set not in self.credential_sets
        ):
            raise PermissionDeniedError(
                f"API key {self.name!r} may not use credential set {credential_set!r}",
                provider=provider or None,
                model=model or None,
            )

    def _allows_model(self, provider: str, model: str) -> bool:
        assert self.models is not None
        qualified = f"{provider}/{model}"
        return any(
            fnmatch.fnmatchcase(qualified if "/" in pattern else model, pattern)
            for pattern in self.models
        )


class ApiKeys:
    """The configured keys, looked up by the SHA-256 of what the caller sent."""

    def __init__(self, configs: Sequence[ApiKeyConfig]) -> None:
        self._by_digest = {config.digest: ApiKey.from_config(config) for config in configs}

    def authenticate(self, metadata: Sequence[tuple[str, str | bytes]] | None) -> ApiKey:
        header = next((value for key, value in metadata or () if key == "authorization"), None)
        if header is None:
            raise UnauthenticatedError(
                "this server requires an API key: send the metadata 'authorization: Bearer <key>'"
            )
        text = header.decode("utf-8", "replace") if isinstance(header, bytes) else header
        scheme, _, token = text.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise UnauthenticatedError("the authorization metadata should be 'Bearer <key>'")
        key = self._by_digest.get(hashlib.sha256(token.encode()).digest())
        if key is None:
            # Never echo what was sent: it may be a real key of something else.
            raise UnauthenticatedError("unknown API key")
        return key


class AuthInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]  # grpc is untyped
    """Refuses ModelRuntimeService calls without a known API key (UNAUTHENTICATED); lets
    every other service through (health, reflection)."""

    def __init__(self, keys: ApiKeys) -> None:
        self._keys = keys

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        handler = await continuation(handler_call_details)
        method: str = handler_call_details.method
        if handler is None or not method.startswith(SERVICE_PREFIX):
            return handler
        try:
            current_caller.set(self._keys.authenticate(handler_call_details.invocation_metadata))
        except UnauthenticatedError as refusal:
            logger.info("refused %s: %s", method.removeprefix(SERVICE_PREFIX), refusal)
            return _refusing(handler, refusal)
        return handler


def _refusing(handler: grpc.RpcMethodHandler, refusal: UnauthenticatedError) -> Any:
    """A handler of the same shape that fails the call with `refusal`'s status, without
    parsing the request a stranger sent."""
    status = status_for(refusal)

    async def refuse(request: object, context: grpc.aio.ServicerContext) -> Any:
        await context.abort(status.code, status.details, status.trailing_metadata)

    async def refuse_stream(
        request: object, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[Any]:
        await refuse(request, context)
        yield  # never reached; makes this the async generator gRPC expects of a stream

    if handler.unary_stream is not None:
        return grpc.unary_stream_rpc_method_handler(
            refuse_stream,
            request_deserializer=_ignore,
            response_serializer=handler.response_serializer,
        )
    return grpc.unary_unary_rpc_method_handler(
        refuse, request_deserializer=_ignore, response_serializer=handler.response_serializer
    )


def _ignore(data: bytes) -> None:
    return None
