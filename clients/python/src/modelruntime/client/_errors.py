"""Typed exceptions for every failure the modelruntime service reports.

The tree follows the `ErrorReason` enum of the contract; the Invoke* names are Dify's:

    ModelRuntimeError
    ├── InvokeError                        the upstream model call failed
    │   ├── InvokeConnectionError          UNAVAILABLE         retryable
    │   ├── InvokeServerUnavailableError   UNAVAILABLE         retryable
    │   ├── InvokeRateLimitError           RESOURCE_EXHAUSTED  retryable (see retry_after)
    │   │   └── InvokeQuotaExceededError   RESOURCE_EXHAUSTED  the quota is spent: NOT retryable
    │   ├── InvokeAuthorizationError       PERMISSION_DENIED
    │   ├── InvokeBadRequestError          INVALID_ARGUMENT
    │   └── InvokeTimeoutError             DEADLINE_EXCEEDED
    ├── CredentialsValidateFailedError     FAILED_PRECONDITION
    ├── NotFoundError                      NOT_FOUND
    │   ├── ProviderNotFoundError
    │   ├── ModelNotFoundError
    │   ├── ModelTypeNotSupportedError
    │   └── CredentialSetNotFoundError     no server-side credential set of that name
    ├── InvalidArgumentError               INVALID_ARGUMENT    (see field_violations)
    │   ├── InvalidParameterError
    │   ├── InvalidCredentialsError
    │   ├── InvalidRequestError
    │   └── LimitExceededError             over a limit of the server (see limit, limit_value)
    ├── InternalError                      INTERNAL
    ├── UnauthenticatedError               UNAUTHENTICATED     the runtime refused *your* API key
    ├── PermissionDeniedError              PERMISSION_DENIED   your key may not make this call
    │   └── UpstreamAddressForbiddenError  the server may not reach the upstream URL you gave
    ├── OverloadedError                    RESOURCE_EXHAUSTED  retryable: the server sheds load
    ├── ShuttingDownError                  UNAVAILABLE         retryable on another replica
    ├── CallCancelledError                 CANCELLED
    └── UnexpectedStatusError              any other status

A status whose `ErrorInfo` reason this client does not know (a newer server), or that carries no
details at all (the grpc library itself, a proxy, a dead server), is classified by its gRPC code,
as the contract asks:

    UNAVAILABLE                  -> InvokeConnectionError  (the runtime or a proxy could not be
                                    reached; retrying is as safe as for an upstream failure)
    DEADLINE_EXCEEDED            -> InvokeTimeoutError     (your deadline passed, whoever noticed)
    NOT_FOUND                    -> NotFoundError
    INVALID_ARGUMENT             -> InvalidArgumentError
    INTERNAL, UNKNOWN, DATA_LOSS -> InternalError
    UNAUTHENTICATED              -> UnauthenticatedError
    PERMISSION_DENIED            -> PermissionDeniedError  (the mesh's authorization policy, too)
    CANCELLED                    -> CallCancelledError
    anything else                -> UnexpectedStatusError

RESOURCE_EXHAUSTED without details is deliberately *not* a rate limit: grpc raises it for a
message over the size limit, which no retry will fix. `reason` is "" for every status without an
`ErrorInfo`.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, Final

import grpc
from google.protobuf.message import DecodeError
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from modelruntime.v1 import error_reason_pb2

ERROR_DOMAIN: Final = "modelruntime.v1"
_REASON_PREFIX: Final = "ERROR_REASON_"


@dataclasses.dataclass(frozen=True)
class FieldViolation:
    """One field of the request at fault, from the status's `google.rpc.BadRequest` detail."""

    field: str
    description: str


class ModelRuntimeError(Exception):
    """A call to the modelruntime service failed.

    Catch this to handle every failure; catch a subclass to act on one cause:

        try:
            result = client.invoke_llm(...)
        except InvokeRateLimitError as exc:
            time.sleep(exc.retry_after or 1.0)
        except ModelRuntimeError as exc:
            log.warning("model call failed: %s", exc)
    """

    retryable: ClassVar[bool] = False
    """Whether the same call may succeed if sent again later, unchanged."""

    def __init__(
        self,
        message: str = "",
        *,
        code: grpc.StatusCode = grpc.StatusCode.UNKNOWN,
        reason: str = "",
        domain: str = "",
        provider: str | None = None,
        model: str | None = None,
        retry_after: float | None = None,
        field_violations: list[FieldViolation] | None = None,
        metadata: dict[str, str] | None = None,
        status: status_pb2.Status | None = None,
    ) -> None:
        # Only `message` goes to args, so the default pickling (cls(*args) + __dict__) works.
        super().__init__(message)
        self.message = message
        self.code = code
        self.reason = reason
        self.domain = domain
        self.provider = provider
        self.model = model
        self.retry_after = retry_after
        self.field_violations = field_violations if field_violations is not None else []
        self.metadata = metadata if metadata is not None else {}
        self.status = status

    def __str__(self) -> str:
        code_name: str = self.code.name
        text = f"{self.reason} ({code_name})" if self.reason else code_name
        target = "/".join(part for part in (self.provider, self.model) if part)
        if target:
            text += f" [{target}]"
        text += f": {self.message}"
        # Servers often spell the violations out in the message already; don't repeat them.
        unmentioned = [v for v in self.field_violations if v.field not in self.message]
        if unmentioned:
            text += " (" + "; ".join(f"{v.field}: {v.description}" for v in unmentioned) + ")"
        if self.retry_after is not None:
            text += f" (retry after {self.retry_after:g}s)"
        return text

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(code={self.code.name}, reason={self.reason!r}, "
            f"message={self.message!r})"
        )


class InvokeError(ModelRuntimeError):
    """The upstream model call failed."""


class InvokeConnectionError(InvokeError):
    """The upstream, or the runtime itself, could not be reached."""

    retryable = True


class InvokeServerUnavailableError(InvokeError):
    """The upstream answered that it cannot serve now."""

    retryable = True


class InvokeRateLimitError(InvokeError):
    """The upstream rate-limited the credentials; wait `retry_after` seconds when it is set."""

    retryable = True


class InvokeQuotaExceededError(InvokeRateLimitError):
    """The credentials' quota, credit or spend limit at the upstream is used up.

    A subclass of `InvokeRateLimitError`, so code written before this reason existed still
    catches it, but waiting will not help: only a bigger budget or other credentials will.
    It never carries `retry_after`.
    """

    retryable = False


class InvokeAuthorizationError(InvokeError):
    """The upstream refused the credentials; retrying with the same ones fails again."""


class InvokeBadRequestError(InvokeError):
    """The upstream rejected the request; change it before retrying."""


class InvokeTimeoutError(InvokeError):
    """The call did not finish within its deadline."""


class CredentialsValidateFailedError(ModelRuntimeError):
    """The credentials were checked against the upstream and do not work."""


class NotFoundError(ModelRuntimeError):
    """The provider, model or model type does not exist."""


class ProviderNotFoundError(NotFoundError):
    """No provider of that name is loaded."""


class ModelNotFoundError(NotFoundError):
    """The provider has no such model of the requested type."""


class ModelTypeNotSupportedError(NotFoundError):
    """The provider does not offer the requested model type."""


class CredentialSetNotFoundError(NotFoundError):
    """The request named a server-side credential set the server does not have."""

    @property
    def credential_set(self) -> str:
        """The name asked for."""
        return self.metadata.get("credential_set", "")


class InvalidArgumentError(ModelRuntimeError):
    """The request broke a rule; `field_violations` names the fields at fault."""


class InvalidParameterError(InvalidArgumentError):
    """A model parameter broke the model's parameter rules."""


class InvalidCredentialsError(InvalidArgumentError):
    """The credentials do not fit the provider's credential form."""


class InvalidRequestError(InvalidArgumentError):
    """The request is malformed before any provider sees it."""


class LimitExceededError(InvalidArgumentError):
    """The request is over a limit the server is configured with; nothing was sent upstream.

    `field_violations` names the field; `limit` and `limit_value` name the limit.
    """

    @property
    def limit(self) -> str:
        """The limit's config name, for example `max_prompt_messages`."""
        return self.metadata.get("limit", "")

    @property
    def limit_value(self) -> int | None:
        """The limit's value, when the server said."""
        value = self.metadata.get("limit_value", "")
        return int(value) if value.isdigit() else None


class InternalError(ModelRuntimeError):
    """A fault inside the runtime or a provider implementation; please report it."""


class UnauthenticatedError(ModelRuntimeError):
    """The runtime (or the mesh in front of it) did not accept the caller's own authentication:
    the `authorization: Bearer <key>` metadata is missing or holds an unknown key."""


class PermissionDeniedError(ModelRuntimeError):
    """The caller's own API key may not make this call (this provider, model or credential set),
    or the mesh's authorization policy refused it. Not the upstream's refusal of the provider
    credentials: that is `InvokeAuthorizationError`."""


class UpstreamAddressForbiddenError(PermissionDeniedError):
    """An upstream URL the caller supplied (a customizable model's `server_url`) resolves to an
    address the server's outbound allow-list forbids; nothing was sent."""


class OverloadedError(ModelRuntimeError):
    """The server is at its cap of concurrent calls and refused this one at once; retry after
    `retry_after`, or on another replica."""

    retryable = True


class ShuttingDownError(ModelRuntimeError):
    """The server is draining before it stops; another replica can take the call."""

    retryable = True


class CallCancelledError(ModelRuntimeError):
    """The call was cancelled before it finished, by this process or by the server."""


class UnexpectedStatusError(ModelRuntimeError):
    """A status the contract does not describe; act on `code`."""


_CLASS_BY_REASON_VALUE: Final[
    dict[error_reason_pb2.ErrorReason.ValueType, type[ModelRuntimeError]]
] = {
    error_reason_pb2.ERROR_REASON_INVOKE_CONNECTION_ERROR: InvokeConnectionError,
    error_reason_pb2.ERROR_REASON_INVOKE_SERVER_UNAVAILABLE: InvokeServerUnavailableError,
    error_reason_pb2.ERROR_REASON_INVOKE_RATE_LIMIT: InvokeRateLimitError,
    error_reason_pb2.ERROR_REASON_INVOKE_AUTHORIZATION: InvokeAuthorizationError,
    error_reason_pb2.ERROR_REASON_INVOKE_BAD_REQUEST: InvokeBadRequestError,
    error_reason_pb2.ERROR_REASON_INVOKE_TIMEOUT: InvokeTimeoutError,
    error_reason_pb2.ERROR_REASON_CREDENTIALS_VALIDATE_FAILED: CredentialsValidateFailedError,
    error_reason_pb2.ERROR_REASON_PROVIDER_NOT_FOUND: ProviderNotFoundError,
    error_reason_pb2.ERROR_REASON_MODEL_NOT_FOUND: ModelNotFoundError,
    error_reason_pb2.ERROR_REASON_MODEL_TYPE_NOT_SUPPORTED: ModelTypeNotSupportedError,
    error_reason_pb2.ERROR_REASON_INVALID_PARAMETER: InvalidParameterError,
    error_reason_pb2.ERROR_REASON_INVALID_CREDENTIALS: InvalidCredentialsError,
    error_reason_pb2.ERROR_REASON_INVALID_REQUEST: InvalidRequestError,
    error_reason_pb2.ERROR_REASON_INTERNAL: InternalError,
    error_reason_pb2.ERROR_REASON_INVOKE_QUOTA_EXCEEDED: InvokeQuotaExceededError,
    error_reason_pb2.ERROR_REASON_UNAUTHENTICATED: UnauthenticatedError,
    error_reason_pb2.ERROR_REASON_PERMISSION_DENIED: PermissionDeniedError,
    error_reason_pb2.ERROR_REASON_LIMIT_EXCEEDED: LimitExceededError,
    error_reason_pb2.ERROR_REASON_OVERLOADED: OverloadedError,
    error_reason_pb2.ERROR_REASON_UPSTREAM_ADDRESS_FORBIDDEN: UpstreamAddressForbiddenError,
    error_reason_pb2.ERROR_REASON_CREDENTIAL_SET_NOT_FOUND: CredentialSetNotFoundError,
    error_reason_pb2.ERROR_REASON_SHUTTING_DOWN: ShuttingDownError,
}


def reason_name(value: error_reason_pb2.ErrorReason.ValueType) -> str:
    """The `ErrorInfo.reason` string the server sends for an `ErrorReason` value."""
    return error_reason_pb2.ErrorReason.Name(value).removeprefix(_REASON_PREFIX)


_CLASS_BY_REASON: Final[dict[str, type[ModelRuntimeError]]] = {
    reason_name(value): cls for value, cls in _CLASS_BY_REASON_VALUE.items()
}

_CLASS_BY_CODE: Final[dict[grpc.StatusCode, type[ModelRuntimeError]]] = {
    grpc.StatusCode.UNAVAILABLE: InvokeConnectionError,
    grpc.StatusCode.DEADLINE_EXCEEDED: InvokeTimeoutError,
    grpc.StatusCode.NOT_FOUND: NotFoundError,
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgumentError,
    grpc.StatusCode.INTERNAL: InternalError,
    grpc.StatusCode.UNKNOWN: InternalError,
    grpc.StatusCode.DATA_LOSS: InternalError,
    grpc.StatusCode.UNAUTHENTICATED: UnauthenticatedError,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDeniedError,
    grpc.StatusCode.CANCELLED: CallCancelledError,
}


def from_rpc_error(error: grpc.RpcError) -> ModelRuntimeError:
    """Translate a `grpc.RpcError` (sync or `grpc.aio.AioRpcError`) into its typed exception.

    The exception is returned, not raised; raise it `from error` to keep the gRPC error as
    `__cause__`, as the clients do. Works for errors from the raw generated stubs too.
    """
    code = _call_attribute(error, "code")
    if not isinstance(code, grpc.StatusCode):
        code = grpc.StatusCode.UNKNOWN
    details = _call_attribute(error, "details")
    message = details if isinstance(details, str) else ""
    status = _rich_status(error)

    error_info: error_details_pb2.ErrorInfo | None = None
    retry_after: float | None = None
    violations: list[FieldViolation] = []
    if status is not None:
        for detail in status.details:
            if error_info is None and detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                error_info = error_details_pb2.ErrorInfo()
                detail.Unpack(error_info)
            elif detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
                retry_info = error_details_pb2.RetryInfo()
                detail.Unpack(retry_info)
                delay = retry_info.retry_delay
                retry_after = delay.seconds + delay.nanos / 1e9
            elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                bad_request = error_details_pb2.BadRequest()
                detail.Unpack(bad_request)
                violations.extend(
                    FieldViolation(v.field, v.description) for v in bad_request.field_violations
                )

    reason = error_info.reason if error_info is not None else ""
    domain = error_info.domain if error_info is not None else ""
    metadata = dict(error_info.metadata) if error_info is not None else {}
    cls = (_CLASS_BY_REASON.get(reason) if domain == ERROR_DOMAIN else None) or _CLASS_BY_CODE.get(
        code, UnexpectedStatusError
    )
    return cls(
        message,
        code=code,
        reason=reason,
        domain=domain,
        provider=metadata.get("provider") or None,
        model=metadata.get("model") or None,
        retry_after=retry_after,
        field_violations=violations,
        metadata=metadata,
        status=status,
    )


def _call_attribute(error: grpc.RpcError, name: str) -> Any:
    # Not every RpcError is a grpc.Call (for example one raised by an interceptor).
    method = getattr(error, name, None)
    return method() if callable(method) else None


def _rich_status(error: grpc.RpcError) -> status_pb2.Status | None:
    # AioRpcError's code/details/trailing_metadata are plain methods, so the sync from_call
    # decodes both kinds. A status whose details contradict its code or message (something
    # between us and the server rewrote it) or do not parse is treated as having no details:
    # they no longer describe the error we got.
    if _call_attribute(error, "trailing_metadata") is None:
        return None
    try:
        status: status_pb2.Status | None = rpc_status.from_call(error)
    except (ValueError, DecodeError):
        return None
    return status
