"""The fake provider's simulated upstream: its key check and its failures on request."""

from __future__ import annotations

from collections.abc import Mapping

from providers.sdk.errors import (
    FieldViolation,
    InvalidCredentialsError,
    InvokeAuthorizationError,
    InvokeBadRequestError,
    InvokeConnectionError,
    InvokeError,
    InvokeQuotaExceededError,
    InvokeRateLimitError,
    InvokeServerUnavailableError,
    InvokeTimeoutError,
)

ACCEPTED_KEY_PREFIX = "fake-"


def failure(kind: str, retry_after: float | None) -> InvokeError:
    """The error a real upstream failure of that kind would be mapped to."""
    if kind == "connection":
        return InvokeConnectionError("simulated connection reset by the fake upstream")
    if kind == "server_unavailable":
        return InvokeServerUnavailableError(
            "simulated 503: the fake upstream is overloaded", retry_after=retry_after
        )
    if kind == "rate_limit":
        return InvokeRateLimitError(
            "simulated 429: rate limit reached for the fake upstream", retry_after=retry_after
        )
    if kind == "quota":
        # A spent quota has no Retry-After worth waiting for, whatever the caller configured.
        return InvokeQuotaExceededError(
            "simulated 429: the fake upstream's quota for this key is used up"
        )
    if kind == "authorization":
        return InvokeAuthorizationError("simulated 401: the fake upstream refused the key")
    if kind == "bad_request":
        return InvokeBadRequestError("simulated 400: the fake upstream rejected the request")
    if kind == "timeout":
        return InvokeTimeoutError("simulated timeout: the fake upstream did not answer in time")
    raise ValueError(f"unknown failure kind {kind!r}")


def check_call(credentials: Mapping[str, str]) -> None:
    """What the fake upstream does before answering: check the key, then fail if asked to."""
    api_key = credentials.get("api_key", "")
    if not api_key.startswith(ACCEPTED_KEY_PREFIX):
        # Real upstreams echo the key they refused; the runtime must scrub it.
        raise InvokeAuthorizationError(
            f"Incorrect API key provided: {api_key}. Keys for the fake provider start with "
            f"{ACCEPTED_KEY_PREFIX!r}."
        )
    kind = credentials.get("fail_with")
    if kind:
        raise failure(kind, number_credential(credentials, "retry_after") or None)


def number_credential(credentials: Mapping[str, str], variable: str) -> float | None:
    """A text-input credential that must hold a number; a caller's typo is the caller's fault."""
    value = credentials.get(variable)
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        raise InvalidCredentialsError(
            [FieldViolation(f"credentials.{variable}", "should be a number")]
        ) from None
