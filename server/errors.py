"""The one table from runtime errors to gRPC statuses, and the rich status built from it.

Every status carries a `google.rpc.ErrorInfo` (domain `modelruntime.v1`, reason from the
proto's ErrorReason, metadata `provider` and `model`), plus `RetryInfo` when the upstream gave a
delay and `BadRequest` when fields of the request were at fault.
"""

from __future__ import annotations

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from modelruntime.v1 import error_reason_pb2
from providers.sdk import errors

DOMAIN = "modelruntime.v1"
_PREFIX = "ERROR_REASON_"

# Looked up along the exception's MRO, so the most specific entry wins.
_STATUS_BY_ERROR: dict[
    type[errors.ModelRuntimeError], tuple[grpc.StatusCode, error_reason_pb2.ErrorReason.ValueType]
] = {
    errors.InvokeConnectionError: (
        grpc.StatusCode.UNAVAILABLE,
        error_reason_pb2.ERROR_REASON_INVOKE_CONNECTION_ERROR,
    ),
    errors.InvokeServerUnavailableError: (
        grpc.StatusCode.UNAVAILABLE,
        error_reason_pb2.ERROR_REASON_INVOKE_SERVER_UNAVAILABLE,
    ),
    errors.InvokeRateLimitError: (
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        error_reason_pb2.ERROR_REASON_INVOKE_RATE_LIMIT,
    ),
    errors.InvokeQuotaExceededError: (
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        error_reason_pb2.ERROR_REASON_INVOKE_QUOTA_EXCEEDED,
    ),
    errors.InvokeAuthorizationError: (
        grpc.StatusCode.PERMISSION_DENIED,
        error_reason_pb2.ERROR_REASON_INVOKE_AUTHORIZATION,
    ),
    errors.InvokeBadRequestError: (
        grpc.StatusCode.INVALID_ARGUMENT,
        error_reason_pb2.ERROR_REASON_INVOKE_BAD_REQUEST,
    ),
    errors.InvokeTimeoutError: (
        grpc.StatusCode.DEADLINE_EXCEEDED,
        error_reason_pb2.ERROR_REASON_INVOKE_TIMEOUT,
    ),
    errors.CredentialsValidateFailedError: (
        grpc.StatusCode.FAILED_PRECONDITION,
        error_reason_pb2.ERROR_REASON_CREDENTIALS_VALIDATE_FAILED,
    ),
    errors.ProviderNotFoundError: (
        grpc.StatusCode.NOT_FOUND,
        error_reason_pb2.ERROR_REASON_PROVIDER_NOT_FOUND,
    ),
    errors.ModelNotFoundError: (
        grpc.StatusCode.NOT_FOUND,
        error_reason_pb2.ERROR_REASON_MODEL_NOT_FOUND,
    ),
    errors.ModelTypeNotSupportedError: (
        grpc.StatusCode.NOT_FOUND,
        error_reason_pb2.ERROR_REASON_MODEL_TYPE_NOT_SUPPORTED,
    ),
    errors.InvalidParameterError: (
        grpc.StatusCode.INVALID_ARGUMENT,
        error_reason_pb2.ERROR_REASON_INVALID_PARAMETER,
    ),
    errors.InvalidCredentialsError: (
        grpc.StatusCode.INVALID_ARGUMENT,
        error_reason_pb2.ERROR_REASON_INVALID_CREDENTIALS,
    ),
    errors.InvalidRequestError: (
        grpc.StatusCode.INVALID_ARGUMENT,
        error_reason_pb2.ERROR_REASON_INVALID_REQUEST,
    ),
    errors.LimitExceededError: (
        grpc.StatusCode.INVALID_ARGUMENT,
        error_reason_pb2.ERROR_REASON_LIMIT_EXCEEDED,
    ),
    errors.CredentialSetNotFoundError: (
        grpc.StatusCode.NOT_FOUND,
        error_reason_pb2.ERROR_REASON_CREDENTIAL_SET_NOT_FOUND,
    ),
    errors.UpstreamAddressForbiddenError: (
        grpc.StatusCode.PERMISSION_DENIED,
        error_reason_pb2.ERROR_REASON_UPSTREAM_ADDRESS_FORBIDDEN,
    ),
    errors.UnauthenticatedError: (
        grpc.StatusCode.UNAUTHENTICATED,
        error_reason_pb2.ERROR_REASON_UNAUTHENTICATED,
    ),
    errors.PermissionDeniedError: (
        grpc.StatusCode.PERMISSION_DENIED,
        error_reason_pb2.ERROR_REASON_PERMISSION_DENIED,
    ),
    errors.OverloadedError: (
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        error_reason_pb2.ERROR_REASON_OVERLOADED,
    ),
    errors.ShuttingDownError: (
        grpc.StatusCode.UNAVAILABLE,
        error_reason_pb2.ERROR_REASON_SHUTTING_DOWN,
    ),
    errors.ModelRuntimeError: (grpc.StatusCode.INTERNAL, error_reason_pb2.ERROR_REASON_INTERNAL),
}


def code_and_reason(exc: errors.ModelRuntimeError) -> tuple[grpc.StatusCode, str]:
    """The gRPC code and the ErrorInfo reason (`INVOKE_RATE_LIMIT`) of `exc`, as the status
    says them; logs, metrics and traces report these."""
    code, reason = next(
        _STATUS_BY_ERROR[cls] for cls in type(exc).__mro__ if cls in _STATUS_BY_ERROR
    )
    return code, error_reason_pb2.ErrorReason.Name(reason).removeprefix(_PREFIX)


def status_for(exc: errors.ModelRuntimeError) -> grpc.Status:
    """The gRPC status, with details in the `grpc-status-details-bin` trailer, for `exc`."""
    code, reason = code_and_reason(exc)
    metadata = {
        key: value for key, value in (("provider", exc.provider), ("model", exc.model)) if value
    }
    metadata.update(_reason_metadata(exc))
    details = [
        error_details_pb2.ErrorInfo(
            reason=reason,
            domain=DOMAIN,
            metadata=metadata,
        )
    ]
    retry_after = getattr(exc, "retry_after", None)
    # A spent quota is not cured by waiting, whatever the upstream's Retry-After said.
    if (
        retry_after is not None
        and retry_after > 0
        and not isinstance(exc, errors.InvokeQuotaExceededError)
    ):
        delay = duration_pb2.Duration()
        delay.FromNanoseconds(int(retry_after * 1e9))
        details.append(error_details_pb2.RetryInfo(retry_delay=delay))
    if isinstance(exc, errors.ValidationError) and exc.violations:
        details.append(
            error_details_pb2.BadRequest(
                field_violations=[
                    error_details_pb2.BadRequest.FieldViolation(
                        field=v.field, description=v.description
                    )
                    for v in exc.violations
                ]
            )
        )
    packed = []
    for detail in details:
        container = any_pb2.Any()
        container.Pack(detail)
        packed.append(container)
    status = status_pb2.Status(
        code=getattr(code_pb2, code.name), message=exc.description, details=packed
    )
    return rpc_status.to_status(status)


def _reason_metadata(exc: errors.ModelRuntimeError) -> dict[str, str]:
    """The ErrorInfo metadata some reasons add to `provider` and `model` (see the proto)."""
    if isinstance(exc, errors.LimitExceededError):
        return {"limit": exc.limit, "limit_value": str(exc.limit_value)}
    if isinstance(exc, errors.CredentialSetNotFoundError):
        return {"credential_set": exc.credential_set}
    return {}
