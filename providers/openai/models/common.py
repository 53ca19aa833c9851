"""What every OpenAI model type shares: where the API is, the request headers, how its errors
read, and the credential check.

The base URL follows Dify's plugin: `openai_api_base` holds the server without the version
(its placeholder is `https://api.openai.com`) and `/v1` is appended, so credentials stored by
Dify work unchanged. A base that already ends in a version segment (`.../v1`, as users often
paste it, or a gateway's `.../openai/v1`) is used as it is rather than doubled.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from contextlib import AbstractAsyncContextManager
from typing import Any
from urllib.parse import urlsplit

import httpx

from providers.sdk.errors import (
    CredentialsValidateFailedError,
    FieldViolation,
    InvalidCredentialsError,
    InvokeAuthorizationError,
    InvokeBadRequestError,
    InvokeConnectionError,
)
from providers.sdk.http import ErrorCheck, client_for, open_stream, request_json
from providers.sdk.model_types.ai_model import Credentials
from providers.sdk.protocols import openai_wire

DEFAULT_API_BASE = "https://api.openai.com/v1"
_VERSIONED = re.compile(r"/v\d+(?:beta\d*)?$")

# Reads OpenAI's `{"error": {message, type, param, code}}` (and the shapes proxies send);
# `insufficient_quota` becomes a spent quota, not a rate limit.
check: ErrorCheck = openai_wire.error_check()


def api_base(credentials: Mapping[str, str]) -> str:
    configured = (credentials.get("openai_api_base") or "").strip().rstrip("/")
    if not configured:
        return DEFAULT_API_BASE
    parts = urlsplit(configured)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InvalidCredentialsError(
            [
                FieldViolation(
                    "credentials.openai_api_base",
                    "should be an http:// or https:// URL, e.g. https://api.openai.com",
                )
            ]
        )
    return configured if _VERSIONED.search(parts.path) else configured + "/v1"


class OpenAIApi:
    """The upstream as one call sees it: the pooled client of the base URL and the headers
    carrying the key (and organization). Paths are relative to the base (`/chat/completions`)."""

    def __init__(self, credentials: Mapping[str, str]) -> None:
        self.base_url = api_base(credentials)
        self.client = client_for(self.base_url)
        self.headers = openai_wire.auth_headers(
            credentials.get("openai_api_key"),
            organization=(credentials.get("openai_organization") or "").strip() or None,
        )

    async def get_json(self, path: str) -> Any:
        return await request_json(self.client, "GET", path, headers=self.headers, check=check)

    async def post_json(self, path: str, body: Mapping[str, Any]) -> Any:
        return await request_json(
            self.client, "POST", path, json=body, headers=self.headers, check=check
        )

    async def post_form_json(
        self, path: str, data: Mapping[str, str], files: Mapping[str, Any]
    ) -> Any:
        """A multipart POST (form fields and files) answered with JSON."""
        return await request_json(
            self.client, "POST", path, data=data, files=files, headers=self.headers, check=check
        )

    def stream(
        self, path: str, body: Mapping[str, Any]
    ) -> AbstractAsyncContextManager[httpx.Response]:
        """A streamed POST; leaving the block closes the upstream connection."""
        return open_stream(self.client, "POST", path, json=body, headers=self.headers, check=check)


async def check_credentials(credentials: Credentials, model: str | None) -> None:
    """The cheapest call that proves the key, organization and base URL work: reading the
    model's card (`GET /models/{model}`), or the model list when no model is named. It costs no
    tokens, and a 404 also tells that the key cannot use that model."""
    api = OpenAIApi(credentials)
    path = f"/models/{model}" if model else "/models"
    try:
        await api.get_json(path)
    except InvokeAuthorizationError as exc:
        raise CredentialsValidateFailedError(
            f"OpenAI at {api.base_url} refused the credentials ({exc.description}); check "
            "openai_api_key, and openai_organization if you set one"
        ) from exc
    except InvokeBadRequestError as exc:
        subject = f"model {model!r} is not available" if model else "the model list is missing"
        raise CredentialsValidateFailedError(
            f"{subject} at {api.base_url} ({exc.description}); check the model name, that the "
            "key's project may use it, and that openai_api_base points at an OpenAI API"
        ) from exc
    except InvokeConnectionError as exc:
        raise InvokeConnectionError(
            f"could not reach {api.base_url} ({exc.description}); check openai_api_base and "
            "the network between this service and OpenAI"
        ) from exc


class OpenAICredentialCheck:
    """`validate_credentials` for every OpenAI model type."""

    async def validate_credentials(self, model: str, credentials: Credentials) -> None:
        await check_credentials(credentials, model)
