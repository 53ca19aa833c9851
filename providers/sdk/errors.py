"""The errors a provider or the runtime raises; the server turns each into a typed gRPC status.

    ModelRuntimeError
    ├── InvokeError                     the upstream failed (raised by providers)
    │   ├── InvokeConnectionError           could not reach it / connection broke
    │   ├── InvokeServerUnavailableError    5xx, overloaded, loading (may carry retry_after)
    │   ├── InvokeRateLimitError            429 (may carry retry_after)
    │   │   └── InvokeQuotaExceededError        429 for a spent quota or budget: not retryable
    │   ├── InvokeAuthorizationError        the upstream refused the credentials
    │   ├── InvokeBadRequestError           the upstream refused the request
    │   └── InvokeTimeoutError              the caller's deadline ran out upstream
    ├── CredentialsValidateFailedError  credentials checked upstream and found not to work
    ├── NotFoundError                   unknown provider / model / model type
    │   ├── ProviderNotFoundError
    │   ├── ModelNotFoundError
    │   ├── ModelTypeNotSupportedError
    │   └── CredentialSetNotFoundError      no server-side credential set of that name
    ├── ValidationError                 the caller's request broke a rule (has field violations)
    │   ├── InvalidParameterError           model_parameters vs. parameter rules
    │   ├── InvalidCredentialsError         credentials vs. the credential form
    │   ├── InvalidRequestError             anything else malformed
    │   └── LimitExceededError              over a limit of the server's config (names it)
    ├── UpstreamAddressForbiddenError   the outbound allow-list refuses the upstream's address
    ├── UnauthenticatedError            the caller's own API key is missing or wrong
    ├── PermissionDeniedError           the caller's key may not use this provider/model/set
    ├── OverloadedError                 the server's cap on concurrent calls is reached
    ├── ShuttingDownError               the server is draining and takes no new calls
    └── InternalError                   a bug in the runtime or a provider

The names of the first six are the seed's, so a provider written for Dify raises the same ones.
Messages must never contain secrets: `AIModel` scrubs secret credential values from every
message before it leaves the provider.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FieldViolation:
    """One field of the request at fault, named by its path (`model_parameters.temperature`)."""

    field: str
    description: str


class ModelRuntimeError(Exception):
    """Base of every error the runtime reports to a caller."""

    default_description = "Error"

    def __init__(
        self,
        description: str | None = None,
        *,
        provider: str | None = None,
        model: str | None = None,
    ) -> None:
        self.description = description or self.default_description
        self.provider = provider
        self.model = model
        super().__init__(self.description)

    def __str__(self) -> str:
        return self.description


class InvokeError(ModelRuntimeError):
    """The upstream failed. Providers raise a subclass; a bare InvokeError is treated as a bug."""

    default_description = "Invoke error"
    # Whether another attempt may succeed. None: the error's type decides (connection failures,
    # unavailable servers and rate limits may; see providers.sdk.retry). A provider sets False
    # on an error of a retryable type that will not heal by itself, such as a failed TLS
    # handshake.
    retryable: bool | None = None

    def __init__(
        self,
        description: str | None = None,
        *,
        provider: str | None = None,
        model: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(description, provider=provider, model=model)
        # Seconds the upstream asked us to wait (Retry-After), when it said.
        self.retry_after = retry_after


class InvokeConnectionError(InvokeError):
    default_description = "Connection error"


class InvokeServerUnavailableError(InvokeError):
    default_description = "Server unavailable"


class InvokeRateLimitError(InvokeError):
    default_description = "Rate limit reached"


class InvokeQuotaExceededError(InvokeRateLimitError):
    """The credentials' quota, credit or spend limit is used up: waiting will not help, only a
    bigger budget or other credentials will. Never carries a retry delay."""

    default_description = "The credentials' quota is exhausted; retrying will not help"


class InvokeAuthorizationError(InvokeError):
    default_description = "Incorrect model credentials provided, please check and try again"


class InvokeBadRequestError(InvokeError):
    default_description = "Bad request"


class InvokeTimeoutError(InvokeError):
    default_description = "The upstream did not answer within the deadline"


class CredentialsValidateFailedError(ModelRuntimeError):
    default_description = "Credentials validation failed"


class NotFoundError(ModelRuntimeError):
    default_description = "Not found"


class ProviderNotFoundError(NotFoundError):
    default_description = "Provider not found"


class ModelNotFoundError(NotFoundError):
    default_description = "Model not found"


class ModelTypeNotSupportedError(NotFoundError):
    default_description = "Model type not supported by the provider"


class ValidationError(ModelRuntimeError):
    """The request broke a rule; `violations` names every offending field."""

    default_description = "Invalid request"

    def __init__(
        self,
        violations: list[FieldViolation],
        *,
        provider: str | None = None,
        model: str | None = None,
    ) -> None:
        self.violations = violations
        super().__init__(
            "; ".join(f"{v.field}: {v.description}" for v in violations) or None,
            provider=provider,
            model=model,
        )


class InvalidParameterError(ValidationError):
    default_description = "Invalid model parameters"


class InvalidCredentialsError(ValidationError):
    default_description = "Invalid credentials"


class InvalidRequestError(ValidationError):
    default_description = "Invalid request"


class UpstreamAddressForbiddenError(ModelRuntimeError):
    """An upstream URL (often one a caller supplied, such as a customizable model's
    `server_url`) resolves to an address the outbound allow-list forbids; nothing was sent."""

    default_description = "The upstream address is not allowed by the outbound allow-list"


class CredentialSetNotFoundError(NotFoundError):
    """The request named a server-side credential set the server's config does not have."""

    default_description = "No credential set of that name"

    def __init__(
        self,
        credential_set: str,
        *,
        provider: str | None = None,
        model: str | None = None,
    ) -> None:
        self.credential_set = credential_set
        super().__init__(
            f"no credential set named {credential_set!r} on this server",
            provider=provider,
            model=model,
        )


class LimitExceededError(ValidationError):
    """The request is over a limit of the server's config; nothing was sent upstream.

    `limit` is the limit's config key (`max_prompt_messages`), `limit_value` its value, and the
    one field violation names the request field at fault."""

    default_description = "The request exceeds a limit of this server"

    def __init__(
        self,
        field: str,
        limit: str,
        limit_value: int,
        actual: int,
        *,
        provider: str | None = None,
        model: str | None = None,
    ) -> None:
        self.limit = limit
        self.limit_value = limit_value
        super().__init__(
            [FieldViolation(field, f"{actual} is over this server's {limit} of {limit_value}")],
            provider=provider,
            model=model,
        )


class UnauthenticatedError(ModelRuntimeError):
    """The caller's own API key to this service is missing or not one the server knows."""

    default_description = "Missing or unknown API key; send 'authorization: Bearer <key>'"


class PermissionDeniedError(ModelRuntimeError):
    """The caller's API key is valid but may not use this provider, model or credential set."""

    default_description = "This API key may not make this call"


class OverloadedError(ModelRuntimeError):
    """The server is at its cap of concurrent calls and sheds this one at once."""

    default_description = "The server is at its limit of concurrent calls; retry later"

    def __init__(
        self,
        description: str | None = None,
        *,
        provider: str | None = None,
        model: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(description, provider=provider, model=model)
        # A hint for the caller (RetryInfo), not a promise: the server keeps no queue.
        self.retry_after = retry_after


class ShuttingDownError(ModelRuntimeError):
    """The server is draining before it stops: it takes no new calls, and cuts the calls that
    outlive the grace period. Another replica can serve the call."""

    default_description = "The server is shutting down; retry on another replica"


class InternalError(ModelRuntimeError):
    default_description = "Internal error"


class SchemaError(Exception):
    """A provider or model YAML file is malformed; the message names the file and the key."""
