"""What every model type of the provider shares: where the server is, how to reach it, which
name it knows the model by, how it reports errors, and the credentials that describe a model.

The endpoint URL is used the way Dify's plugin uses it: it is the base the API paths are
appended to (`{endpoint_url}/chat/completions`), with or without a trailing `/`. Nothing is
guessed about `/v1`: vLLM, LM Studio and Ollama serve the API under `/v1`, DeepSeek and several
gateways at the root, OpenRouter under `/api/v1`, so the user's URL is taken as given. When the
server then answers 404, validation says so and tells the user to try adding `/v1`. A URL pasted
with an endpoint path on it (`.../v1/chat/completions`) is cut back to its base.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit

import httpx

from providers.sdk.entities.schema import I18nObject
from providers.sdk.errors import FieldViolation, InvalidCredentialsError, InvokeError
from providers.sdk.http import ErrorCheck, client_for
from providers.sdk.protocols import openai_wire

# Endpoint paths users paste onto the base URL by mistake; the longer one of a pair first.
_ENDPOINT_PATHS = (
    "/chat/completions",
    "/completions",
    "/embeddings",
    "/rerank",
    "/audio/transcriptions",
    "/audio/speech",
)

# Reads every error body shape of this family of servers (see openai_wire.parse_error).
check: ErrorCheck = openai_wire.error_check()


def base_url(credentials: Mapping[str, str]) -> str:
    """The API base URL from `endpoint_url`, without a trailing `/` or a pasted endpoint path."""
    url = credentials.get("endpoint_url", "").strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InvalidCredentialsError(
            [
                FieldViolation(
                    "credentials.endpoint_url",
                    "should be an http:// or https:// URL, e.g. http://localhost:8000/v1",
                )
            ]
        )
    for path in _ENDPOINT_PATHS:
        if url.endswith(path):
            return url[: -len(path)]
    return url


def client(credentials: Mapping[str, str]) -> httpx.AsyncClient:
    """The pooled client of this model's server; request paths are relative to the base URL."""
    return client_for(base_url(credentials))


def headers(credentials: Mapping[str, str]) -> dict[str, str]:
    return openai_wire.auth_headers(credentials.get("api_key"))


def upstream_model(model: str, credentials: Mapping[str, str]) -> str:
    """The name the server knows the model by: `endpoint_model_name`, else the model's name."""
    return credentials.get("endpoint_model_name") or model


def label(model: str, credentials: Mapping[str, str]) -> I18nObject:
    name = credentials.get("display_name") or model
    return I18nObject(en_US=name, zh_Hans=name)


def int_credential(credentials: Mapping[str, str], variable: str, default: int) -> int:
    """A text-input credential that holds a positive whole number (a context size, a limit)."""
    value = (credentials.get(variable) or "").strip()
    if not value:
        return default
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise InvalidCredentialsError(
            [FieldViolation(f"credentials.{variable}", "should be a positive whole number")]
        )
    return number


def explained(check: ErrorCheck, credentials: Mapping[str, str], path: str) -> ErrorCheck:
    """`check`, with advice for the user appended to the error when validating credentials:
    what a 401, 404 or 400 from this server most likely means they should change."""

    async def check_and_explain(response: httpx.Response) -> None:
        try:
            await check(response)
        except InvokeError as exc:
            advice = _advice(response.status_code, credentials, path)
            if advice:
                exc.description = f"{exc.description}. {advice}"
                exc.args = (exc.description,)
            raise

    return check_and_explain


def _advice(status: int, credentials: Mapping[str, str], path: str) -> str:
    if status in (401, 403):
        return "The server refused the API key: check api_key"
    if status == 404:
        where = f"{base_url(credentials)}/{path}"
        return (
            f"Either {where} does not exist (many servers, such as vLLM, LM Studio and Ollama, "
            "serve the API under /v1: end endpoint_url with /v1) or the server does not serve "
            "a model by that name (check endpoint_model_name)"
        )
    if status in (400, 422):
        return (
            "Check endpoint_model_name, and that mode (chat or completion) is one the model "
            "supports"
        )
    return ""
