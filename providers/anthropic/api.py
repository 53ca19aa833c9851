"""Where and how to talk to Anthropic's API: base URL, headers, and what its errors mean.

Anthropic answers errors with `{"type": "error", "error": {"type", "message"}, "request_id"}`.
Before the first byte of an answer the HTTP status decides the error (the shared table in
`providers.sdk.http`); once a stream has started with 200, an `event: error` can still arrive,
and then only `error.type` says what went wrong.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import httpx

from providers.sdk.errors import (
    InvokeAuthorizationError,
    InvokeBadRequestError,
    InvokeError,
    InvokeQuotaExceededError,
    InvokeRateLimitError,
    InvokeServerUnavailableError,
)
from providers.sdk.http import client_for, error_for_status, read_error_body

API_KEY = "anthropic_api_key"
API_URL = "anthropic_api_url"
DEFAULT_BASE_URL = "https://api.anthropic.com"
API_VERSION = "2023-06-01"

MESSAGES_PATH = "/v1/messages"
COUNT_TOKENS_PATH = "/v1/messages/count_tokens"
MODELS_PATH = "/v1/models"

# A 429 with this code is an organisation's spend limit: waiting does not lift it.
SPEND_LIMIT_CODE = "enforced_spend_limit_reached"
# A spent prepaid balance comes back as a 400 invalid_request_error with this text.
CREDIT_BALANCE_TEXT = "credit balance is too low"

# `error.type` of an in-band (mid-stream) error -> the runtime's error.
_ERROR_BY_TYPE: dict[str, type[InvokeError]] = {
    "invalid_request_error": InvokeBadRequestError,
    "not_found_error": InvokeBadRequestError,
    "request_too_large": InvokeBadRequestError,
    "authentication_error": InvokeAuthorizationError,
    "permission_error": InvokeAuthorizationError,
    "billing_error": InvokeQuotaExceededError,
    "rate_limit_error": InvokeRateLimitError,
    "api_error": InvokeServerUnavailableError,
    "overloaded_error": InvokeServerUnavailableError,
    "timeout_error": InvokeServerUnavailableError,
}


def base_url(credentials: Mapping[str, str]) -> str:
    """The API's base URL. Anthropic's SDKs add `/v1` themselves, so a URL copied with `/v1`
    at its end (a common mistake) would double it; it is taken off."""
    url = (credentials.get(API_URL) or DEFAULT_BASE_URL).strip().rstrip("/")
    return url.removesuffix("/v1")


class Connection:
    """One set of credentials' pooled client and request headers."""

    __slots__ = ("base_url", "client", "headers")

    def __init__(self, credentials: Mapping[str, str], betas: Iterable[str] = ()) -> None:
        self.base_url = base_url(credentials)
        self.client: httpx.AsyncClient = client_for(self.base_url)
        self.headers = {"x-api-key": credentials[API_KEY], "anthropic-version": API_VERSION}
        beta = ",".join(betas)
        if beta:
            self.headers["anthropic-beta"] = beta


async def check_response(response: httpx.Response) -> None:
    """Raises the runtime's error for a non-2xx answer, quoting Anthropic's own message."""
    body, text = await read_error_body(response)
    error = body.get("error") if isinstance(body, dict) else None
    status = response.status_code
    if isinstance(error, dict):
        kind = str(error.get("type") or "error")
        message = f"{kind}: {error.get('message') or ''}{_request_id(body)}"
        quota = _is_quota(kind, error)
    else:
        # 413 comes from the CDN in front of the API, as an HTML page nobody wants quoted.
        message = (
            "request_too_large: the request is larger than the API accepts (32 MB for Messages)"
            if status == 413
            else text
        )
        quota = False
    raise error_for_status(status, message, response.headers, quota=quota)


def error_from_event(payload: Mapping[str, Any]) -> InvokeError:
    """The error an in-band `error` event (or a 200 answer whose body is an error) reports,
    classified by its `error.type`: the status of such a response is 200 and means nothing."""
    error = payload.get("error")
    if not isinstance(error, dict):
        error = {}
    kind = str(error.get("type") or "error")
    text = (
        f"the upstream reported {kind} in its answer: "
        f"{error.get('message') or 'no message'}{_request_id(payload)}"
    )
    if _is_quota(kind, error):
        return InvokeQuotaExceededError(text)
    return _ERROR_BY_TYPE.get(kind, InvokeServerUnavailableError)(text)


def _is_quota(kind: str, error: Mapping[str, Any]) -> bool:
    details = error.get("details")
    spend_limit = isinstance(details, dict) and details.get("error_code") == SPEND_LIMIT_CODE
    no_credit = CREDIT_BALANCE_TEXT in str(error.get("message") or "").lower()
    return kind == "billing_error" or spend_limit or no_credit


def _request_id(body: Mapping[str, Any]) -> str:
    request_id = body.get("request_id")
    return f" (request {request_id})" if isinstance(request_id, str) and request_id else ""
