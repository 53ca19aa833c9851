"""Talking to an Xinference server: the connection the credentials describe, the launched
model's description (kept briefly), and Xinference's error answers. Failed calls are retried by
the server (`providers.sdk.retry`); the `max_retries` credential caps how often.

Xinference is an OpenAI-shaped REST API with its own habits (wire-protocol reference §3, §6):
errors are FastAPI's `{"detail": ...}` (a string, or a list for validation failures), uncaught
exceptions are `500 text/plain "Internal Server Error: ..."` even for invalid requests, a model
that is still loading answers 503 with `Retry-After`, an unknown model UID is 400 or 404 with a
detail that lists internal addresses or other UIDs, and an IP allow-list refuses with a
text/plain 403.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

from providers.sdk import http
from providers.sdk.entities.schema import ModelType
from providers.sdk.errors import (
    CredentialsValidateFailedError,
    FieldViolation,
    InvalidCredentialsError,
    InvokeAuthorizationError,
    InvokeBadRequestError,
    InvokeConnectionError,
    InvokeError,
    InvokeRateLimitError,
    InvokeServerUnavailableError,
)
from providers.sdk.protocols.openai_wire import auth_headers, error_message
from providers.sdk.retry import cap_retries

# A description is re-read after this long, so a model relaunched with other abilities is
# noticed soon, while a busy stream of calls reads it once per interval, not once per call.
DESCRIPTION_TTL = 30.0
_MAX_DESCRIPTIONS = 1024

# The most the `max_retries` credential may ask for; the server's `retries:` config caps it too.
_MAX_RETRIES = 10

_UID_FORBIDDEN = ("/", "?", "#")
_ADDRESS = re.compile(r"\b\d{1,3}(?:\.\d{1,3}){3}(?::\d{1,5})?\b")
_VALIDATION_FAILURE = re.compile(r"validation error|field required|invalid input", re.IGNORECASE)
_NOT_FOR_ENDPOINT = re.compile(r"\bis not for\b", re.IGNORECASE)
_UNKNOWN_MODEL = re.compile(r"model not found|not found in the model list", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Connection:
    """Where the model runs and how to reach it, from the model credentials."""

    server_url: str
    model_uid: str
    api_key: str
    invoke_timeout: float
    max_retries: int

    @classmethod
    def of(cls, credentials: Mapping[str, str]) -> Connection:
        violations: list[FieldViolation] = []
        server_url = credentials.get("server_url", "").strip().rstrip("/")
        # People paste the OpenAI base URL; the paths below add /v1 themselves.
        server_url = server_url.removesuffix("/v1")
        if not server_url.startswith(("http://", "https://")):
            violations.append(
                FieldViolation(
                    "credentials.server_url",
                    "should be the server's http:// or https:// address, e.g. http://10.0.0.5:9997",
                )
            )
        model_uid = credentials.get("model_uid", "").strip()
        if any(c in model_uid for c in _UID_FORBIDDEN):
            violations.append(
                FieldViolation("credentials.model_uid", "should not contain '/', '?' or '#'")
            )
        invoke_timeout = _number(credentials, "invoke_timeout", 60.0, violations)
        max_retries = _number(credentials, "max_retries", 3, violations)
        if not 0 < invoke_timeout < math.inf:
            violations.append(
                FieldViolation("credentials.invoke_timeout", "should be a number of seconds > 0")
            )
        if not 0 <= max_retries <= _MAX_RETRIES or max_retries != int(max_retries):
            violations.append(
                FieldViolation(
                    "credentials.max_retries", f"should be a whole number from 0 to {_MAX_RETRIES}"
                )
            )
        if violations:
            raise InvalidCredentialsError(violations)
        return cls(
            server_url=server_url,
            model_uid=model_uid,
            api_key=credentials.get("api_key", ""),
            invoke_timeout=float(invoke_timeout),
            max_retries=int(max_retries),
        )

    @property
    def headers(self) -> dict[str, str]:
        return auth_headers(self.api_key)

    @property
    def model_path(self) -> str:
        return f"/v1/models/{quote(self.model_uid, safe='')}"


def _number(
    credentials: Mapping[str, str], name: str, default: float, violations: list[FieldViolation]
) -> float:
    raw = credentials.get(name, "").strip()
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError:
        violations.append(FieldViolation(f"credentials.{name}", "should be a number"))
        return default


# ---- the launched model's description ----------------------------------------------------------


_LLM_MODES = ("chat", "generate")
_SPEECH2TEXT_ABILITIES = ("audio2text", "audio-to-text")
_TTS_ABILITY_PREFIXES = ("text2audio", "text-to-audio")


@dataclass(frozen=True, slots=True)
class ModelDescription:
    """What `GET /v1/models/{uid}` says about a launched model."""

    model_type: str  # Xinference's own words: LLM, embedding, rerank, audio, image, video
    abilities: frozenset[str]
    model_name: str
    model_family: str
    engine: str
    context_length: int | None
    max_tokens: int | None
    dimensions: int | None

    @classmethod
    def parse(cls, body: Any) -> ModelDescription:
        if not isinstance(body, dict) or not isinstance(body.get("model_type"), str):
            raise InvokeServerUnavailableError(
                "the Xinference server's model description has no model_type; "
                "is server_url an Xinference server?"
            )
        abilities = body.get("model_ability") or []
        if isinstance(abilities, str):
            abilities = [abilities]
        return cls(
            model_type=body["model_type"],
            abilities=frozenset(str(a).lower() for a in abilities),
            model_name=str(body.get("model_name") or ""),
            model_family=str(body.get("model_family") or body.get("model_name") or ""),
            engine=str(body.get("model_engine") or ""),
            context_length=_positive_int(body.get("context_length")),
            max_tokens=_positive_int(body.get("max_tokens")),
            dimensions=_positive_int(body.get("dimensions")),
        )

    @property
    def is_llm(self) -> bool:
        return self.model_type.lower() == "llm"

    @property
    def chats(self) -> bool:
        return self.is_llm and "chat" in self.abilities

    def serves(self, model_type: ModelType) -> bool:
        return model_type in self.runtime_types()

    def runtime_types(self) -> list[ModelType]:
        """The runtime's model types this model can be used as."""
        kind = self.model_type.lower()
        if kind == "llm":
            return [ModelType.LLM] if any(m in self.abilities for m in _LLM_MODES) else []
        if kind == "embedding":
            return [ModelType.TEXT_EMBEDDING]
        if kind == "rerank":
            return [ModelType.RERANK]
        if kind == "audio":
            # Old servers list no abilities for audio models: either use may be right.
            types = []
            if not self.abilities or any(a in self.abilities for a in _SPEECH2TEXT_ABILITIES):
                types.append(ModelType.SPEECH2TEXT)
            if not self.abilities or any(
                a.startswith(_TTS_ABILITY_PREFIXES) for a in self.abilities
            ):
                types.append(ModelType.TTS)
            return types
        return []

    def kind(self) -> str:
        """The model in words, for messages: `an LLM with abilities embed`."""
        kind = self.model_type.lower()
        abilities = ", ".join(sorted(self.abilities)) or "none listed"
        if kind == "llm":
            return f"an LLM with abilities {abilities}"
        if kind == "audio":
            return f"an audio model with abilities {abilities}"
        article = "an" if kind[:1] in "aeiou" else "a"
        return f"{article} {kind} model"


def _positive_int(value: Any) -> int | None:
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if number > 0 else None


_descriptions: dict[tuple[str, str], tuple[float, ModelDescription]] = {}


async def describe(connection: Connection, *, fresh: bool = False) -> ModelDescription:
    """The launched model's description, from a copy at most DESCRIPTION_TTL old unless
    `fresh` (credential validation must prove the server and key work now)."""
    key = (connection.server_url, connection.model_uid)
    now = time.monotonic()
    cached = _descriptions.get(key)
    if cached is not None and not fresh and cached[0] > now:
        return cached[1]
    body = await request_json(connection, "GET", connection.model_path, describing=True)
    description = ModelDescription.parse(body)
    if len(_descriptions) >= _MAX_DESCRIPTIONS:
        for stale in [k for k, (expires, _) in _descriptions.items() if expires <= now]:
            del _descriptions[stale]
        while len(_descriptions) >= _MAX_DESCRIPTIONS:
            del _descriptions[next(iter(_descriptions))]
    _descriptions[key] = (now + DESCRIPTION_TTL, description)
    return description


def forget_description(connection: Connection) -> None:
    """Drops the kept description (the server said the model is gone or is something else)."""
    _descriptions.pop((connection.server_url, connection.model_uid), None)


async def describe_as(connection: Connection, model_type: ModelType) -> ModelDescription:
    """The description, refusing a model that cannot serve as `model_type` with words that say
    what it is and how to add it instead."""
    description = await describe(connection)
    if not description.serves(model_type):
        raise wrong_type(connection, description, model_type)
    return description


def wrong_type(
    connection: Connection, description: ModelDescription, model_type: ModelType
) -> InvokeBadRequestError:
    usable = description.runtime_types()
    hint = (
        f"; add it as a {' or '.join(t.value for t in usable)} model instead"
        if usable
        else "; the runtime cannot use it"
    )
    return InvokeBadRequestError(
        f"model uid {connection.model_uid!r} on the Xinference server is "
        f"{description.kind()}, not usable as {model_type.value}{hint}"
    )


async def validate(connection: Connection, model_type: ModelType) -> ModelDescription:
    """Proves the server answers, the key works and the UID is a launched model usable as
    `model_type`, saying which of these failed."""
    try:
        auth = await request_json(connection, "GET", "/v1/cluster/auth")
    except InvokeConnectionError as exc:
        raise InvokeConnectionError(
            f"the Xinference server at {connection.server_url} is not reachable: {exc}"
        ) from exc
    except InvokeBadRequestError:
        auth = None  # servers before the auth system have no /v1/cluster/auth
    if isinstance(auth, dict) and auth.get("auth") is True and not connection.api_key:
        raise CredentialsValidateFailedError(
            "the Xinference server has authentication on; set api_key to one of its API keys"
        )
    description = await describe(connection, fresh=True)
    if not description.serves(model_type):
        raise CredentialsValidateFailedError(
            wrong_type(connection, description, model_type).description
        )
    return description


# ---- requests --------------------------------------------------------------------------------


async def request_json(
    connection: Connection, method: str, path: str, *, describing: bool = False, **kwargs: Any
) -> Any:
    """A complete request, its JSON body returned."""
    cap_retries(connection.max_retries)

    async def check(response: httpx.Response) -> None:
        await raise_for_answer(connection, response, describing=describing)

    return await http.request_json(
        http.client_for(connection.server_url),
        method,
        path,
        check=check,
        headers=connection.headers,
        read_timeout=connection.invoke_timeout,
        **kwargs,
    )


@asynccontextmanager
async def open_stream(
    connection: Connection, method: str, path: str, **kwargs: Any
) -> AsyncIterator[httpx.Response]:
    """A streamed request whose status was checked."""
    cap_retries(connection.max_retries)

    async def check(response: httpx.Response) -> None:
        await raise_for_answer(connection, response)

    async with http.open_stream(
        http.client_for(connection.server_url),
        method,
        path,
        check=check,
        headers=connection.headers,
        read_timeout=connection.invoke_timeout,
        **kwargs,
    ) as response:
        yield response


def _names_a_missing_model(body: Any) -> bool:
    """Whether a 404 body is Xinference's own (FastAPI's `{"detail": ...}`) about a model,
    rather than the `Not Found` of a path nothing serves, or another server's page."""
    detail = body.get("detail") if isinstance(body, dict) else None
    return isinstance(detail, str) and detail.strip().lower() != "not found"


def scrub_addresses(error: InvokeError) -> None:
    """Removes internal addresses (`10.0.0.7:41235`) from an error's message, in place."""
    error.description = _ADDRESS.sub("<address>", error.description)
    error.args = (error.description,)


# ---- Xinference's error answers --------------------------------------------------------------


async def raise_for_answer(
    connection: Connection, response: httpx.Response, *, describing: bool = False
) -> None:
    """Raises the InvokeError a non-2xx Xinference answer means, with words that say what to
    fix. Internal addresses in the server's text are never passed on."""
    body, text = await http.read_error_body(response)
    message = _ADDRESS.sub("<address>", error_message(body, text))
    status = response.status_code
    uid = connection.model_uid
    unknown_model = _UNKNOWN_MODEL.search(message) is not None
    if status == 404 and not _names_a_missing_model(body):
        # Not Xinference saying the model is missing: nothing serves this path at all.
        raise InvokeBadRequestError(
            f"the server at server_url has no Xinference API at {response.request.url.path} "
            "(HTTP 404); check server_url"
        )
    if status == 404 or (status == 400 and (describing or unknown_model)):
        forget_description(connection)
        # The server's detail lists internal addresses or other UIDs: it is not quoted.
        raise InvokeBadRequestError(
            f"model uid {uid!r} is not running on the Xinference server; launch it there "
            "(xinference launch ...) or correct model_uid"
        )
    if status == 401:
        if not connection.api_key:
            raise InvokeAuthorizationError(
                "the Xinference server requires an API key (HTTP 401); set api_key"
            )
        raise InvokeAuthorizationError(
            f"the Xinference server refused the API key (HTTP 401: {message}); check api_key"
        )
    if status == 403:
        if not isinstance(body, dict):
            raise InvokeAuthorizationError(
                "the Xinference server's IP allow-list refuses this service's address (HTTP 403)"
            )
        needs = "the models:list scope to read model descriptions" if describing else "access"
        raise InvokeAuthorizationError(
            f"the API key lacks {needs} for model uid {uid!r} on the Xinference server "
            f"(HTTP 403: {message})"
        )
    if status >= 500 and _NOT_FOR_ENDPOINT.search(message):
        # The UID now names a model of another kind than the kept description said: the next
        # call reads the description again and says what the model is.
        forget_description(connection)
    if status >= 500 and _VALIDATION_FAILURE.search(message):
        # Xinference answers invalid requests with 500 text/plain: the request is at fault.
        raise InvokeBadRequestError(f"the Xinference server refused the request: {message}")
    if status != 429 and "rate limit reached" in message.lower():
        raise InvokeRateLimitError(
            f"the Xinference server answered HTTP {status}: {message}",
            retry_after=http.retry_after(response.headers),
        )
    if status == 503 and http.retry_after(response.headers) is not None:
        message = f"{message} (the model may still be loading)".lstrip()
    raise http.error_for_status(status, message, response.headers)
