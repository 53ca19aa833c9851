"""Server-side credentials: named sets the config holds, which a request names in
`credential_set` instead of sending a key.

A set may hold several entries (keys). Calls take them in turn; an entry whose call meets a rate
limit, a spent quota or an authorization failure rests for the set's cooldown (or the
upstream's Retry-After, if longer), so traffic moves to the others, much as Dify's model manager
rotates load-balanced keys. When every entry rests, the one that is back soonest is used: its
upstream's answer (a rate limit with its own Retry-After, a refusal) tells the caller more than
a refusal of ours would.

The secret values never leave the server: they are scrubbed from error messages and from every
log record of the call, a validation answer echoes no credentials, and logs name an entry by
its position only.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import TypeVar

from modelruntime.v1 import model_runtime_service_pb2 as pb
from providers.sdk import ProviderRegistry
from providers.sdk.credentials import scrub
from providers.sdk.entities.schema import FormType
from providers.sdk.errors import (
    CredentialSetNotFoundError,
    CredentialsValidateFailedError,
    FieldViolation,
    InvalidRequestError,
    InvokeAuthorizationError,
    InvokeRateLimitError,
    ModelRuntimeError,
    PermissionDeniedError,
    ProviderNotFoundError,
)
from server.config import ConfigError
from server.observability.logs import hold_secrets
from server.security.config import CredentialSetConfig

logger = logging.getLogger("modelruntime.security")

T = TypeVar("T")

# Failures that say "this key, not the request": rest it and use the others.
_REST_AFTER = (InvokeRateLimitError, InvokeAuthorizationError, CredentialsValidateFailedError)
# Answers that would otherwise echo the credentials the call used.
_ECHOES_CREDENTIALS = (
    pb.ValidateProviderCredentialsResponse,
    pb.ValidateModelCredentialsResponse,
)


class _Entry:
    """One key of a set. Its repr shows no value."""

    __slots__ = ("index", "resting_until", "secret_variables", "secrets", "values")

    def __init__(self, index: int, values: dict[str, str], secret_variables: set[str]) -> None:
        self.index = index
        self.values = values
        self.secret_variables = frozenset(secret_variables)
        # The values read from env or files, longest first so that a secret containing
        # another is scrubbed whole.
        self.secrets = sorted((values[v] for v in secret_variables), key=len, reverse=True)
        self.resting_until = 0.0

    def __repr__(self) -> str:
        return f"<credential entry #{self.index}>"


class CredentialPool:
    """The entries of one set, taken in turn, skipping those that rest."""

    def __init__(
        self, name: str, config: CredentialSetConfig, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.name = name
        self.provider = config.provider
        self.cooldown = config.cooldown_seconds
        self._clock = clock
        self.entries = [
            _Entry(
                index,
                {variable: value.get_secret_value() for variable, value in values.items()},
                set(values) - config.plain_variables(index),
            )
            for index, values in enumerate(config.resolved())
        ]
        self._next = 0

    def pick(self) -> _Entry:
        now = self._clock()
        count = len(self.entries)
        for step in range(count):
            entry = self.entries[(self._next + step) % count]
            if entry.resting_until <= now:
                self._next = (entry.index + 1) % count
                return entry
        return min(self.entries, key=lambda e: e.resting_until)

    def any_ready(self) -> bool:
        """Whether some entry is not resting now (so `pick` returns one that is not)."""
        now = self._clock()
        return any(entry.resting_until <= now for entry in self.entries)

    def rest(self, entry: _Entry, failure: ModelRuntimeError) -> None:
        retry_after = getattr(failure, "retry_after", None) or 0.0
        seconds = max(self.cooldown, retry_after)
        entry.resting_until = max(entry.resting_until, self._clock() + seconds)
        logger.warning(
            "credential set %s: entry #%d rests for %gs after %s",
            self.name,
            entry.index,
            seconds,
            type(failure).__name__,
        )


class Lease:
    """The entry one attempt of a call uses; told the attempt's outcome when it ends."""

    __slots__ = ("_entry", "_pool", "_settled")

    def __init__(self, pool: CredentialPool, entry: _Entry) -> None:
        self._pool = pool
        self._entry = entry
        self._settled: ModelRuntimeError | None = None

    def answer(self, response: T) -> T:
        if isinstance(response, _ECHOES_CREDENTIALS):
            response.credentials.clear()
        return response

    def settle(self, failure: ModelRuntimeError | None) -> bool:
        """Scrubs the entry's secrets from `failure` and rests the entry if the failure was
        its own (once per failure). True when it rested the entry."""
        if failure is None or failure is self._settled:
            return False
        self._settled = failure
        failure.description = scrub(failure.description, self._entry.secrets)
        failure.args = (failure.description,)
        if isinstance(failure, _REST_AFTER):
            self._pool.rest(self._entry, failure)
            return True
        return False

    def others_ready(self) -> bool:
        """Whether the next pick would find an entry that is not resting."""
        return self._pool.any_ready()

    def next(self, request: object) -> Lease:
        """The lease of the call's next attempt: the set's next entry, put into `request`."""
        entry = self._pool.pick()
        _fill(request, entry)
        return Lease(self._pool, entry)


class CredentialSets:
    """Resolves a request's `credential_set` into credentials, and enforces whether a request
    may carry its own."""

    def __init__(
        self,
        configs: Mapping[str, CredentialSetConfig],
        allow_inline_credentials: bool,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.pools = {name: CredentialPool(name, config, clock) for name, config in configs.items()}
        self.allow_inline = allow_inline_credentials

    def check_against(self, registry: ProviderRegistry) -> None:
        """Fails at startup when a set names a provider that is not loaded, or writes a secret
        field of the provider's forms in plain text instead of taking it from env or a file."""
        for name, pool in self.pools.items():
            try:
                provider = registry.provider(pool.provider)
            except ProviderNotFoundError:
                raise ConfigError(
                    f"credential set {name!r}: provider {pool.provider!r} is not loaded"
                ) from None
            schema = provider.schema
            forms = [
                form.credential_form_schemas
                for form in (schema.provider_credential_schema, schema.model_credential_schema)
                if form is not None
            ]
            secret_fields = {
                field.variable
                for fields in forms
                for field in fields
                if field.type is FormType.SECRET_INPUT
            }
            for entry in pool.entries:
                in_plain = sorted(secret_fields & (set(entry.values) - entry.secret_variables))
                if in_plain:
                    raise ConfigError(
                        f"credential set {name!r}, entry #{entry.index}: "
                        f"{', '.join(in_plain)} should come from {{env: ...}} or {{file: ...}}, "
                        "not be written in the config"
                    )

    def resolve(self, request: object) -> Lease | None:
        """Puts the named set's credentials into the request (every RPC reads its credentials
        from there). Returns None for a request that names no set."""
        name: str = getattr(request, "credential_set", "")
        inline = getattr(request, "credentials", None)
        if not name:
            if inline and not self.allow_inline:
                raise PermissionDeniedError(
                    "this server does not accept credentials in requests; name one of its "
                    "credential sets in credential_set instead"
                )
            return None
        if inline:
            raise InvalidRequestError(
                [FieldViolation("credential_set", "send credentials or credential_set, not both")]
            )
        pool = self.pools.get(name)
        if pool is None:
            raise CredentialSetNotFoundError(name)
        provider: str = getattr(request, "provider", "")
        if provider != pool.provider:
            raise InvalidRequestError(
                [
                    FieldViolation(
                        "credential_set",
                        f"credential set {name!r} is for provider {pool.provider!r}, "
                        f"not {provider!r}",
                    )
                ]
            )
        entry = pool.pick()
        _fill(request, entry)
        return Lease(pool, entry)


def _fill(request: object, entry: _Entry) -> None:
    """Puts `entry`'s values into the request's credentials, in place of any earlier entry's
    (a request that names a set brings no credentials of its own)."""
    credentials = getattr(request, "credentials", None)
    assert credentials is not None  # every request with credential_set has credentials
    credentials.clear()
    credentials.update(entry.values)
    # The log redaction learnt the call's secrets from the request before they were here.
    hold_secrets(entry.secrets)
