"""The `security:` and `limits:` sections of the server config (see docs/operating/security.md).

Secret values are never written in the config itself: a credential set's values and an API
key's hash may be `{env: NAME}` or `{file: PATH}` (a mounted Kubernetes secret), read once when
the config is loaded. What is read is kept as `SecretStr`, so printing the config shows stars.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

# Names that show up in logs and errors instead of secrets: API key names, credential set names.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


def _check_name(value: str, what: str) -> str:
    if not _NAME.fullmatch(value):
        raise ValueError(
            f"{what} {value[:80]!r} should be 1-64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return value


class SecretRef(BaseModel):
    """Where a secret comes from: an environment variable or a file. A file's trailing line
    break is dropped (editors and `kubectl create secret --from-file` often leave one)."""

    model_config = ConfigDict(extra="forbid")

    env: str | None = None
    file: Path | None = None

    @model_validator(mode="after")
    def _one_source(self) -> SecretRef:
        if (self.env is None) == (self.file is None):
            raise ValueError("give exactly one of env or file")
        return self

    def read(self) -> SecretStr:
        if self.env is not None:
            value = os.environ.get(self.env, "")
            if not value:
                raise ValueError(f"environment variable {self.env} is not set or is empty")
            return SecretStr(value)
        assert self.file is not None
        try:
            value = self.file.read_text(encoding="utf-8").rstrip("\r\n")
        except (OSError, UnicodeDecodeError) as exc:
            raise ValueError(f"cannot read {self.file}: {exc}") from None
        if not value:
            raise ValueError(f"{self.file} is empty")
        return SecretStr(value)


class TlsConfig(BaseModel):
    """TLS on the gRPC port. With `client_ca_file` it is mutual TLS: a client must present a
    certificate signed by that CA, or its handshake fails. Files are re-read when they change,
    so a renewed certificate (cert-manager, a rotated secret) takes effect on new connections."""

    model_config = ConfigDict(extra="forbid")

    cert_file: Path | None = None
    key_file: Path | None = None
    client_ca_file: Path | None = None

    @model_validator(mode="after")
    def _complete(self) -> TlsConfig:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file go together")
        if self.client_ca_file is not None and self.cert_file is None:
            raise ValueError("client_ca_file (mutual TLS) needs cert_file and key_file")
        for path in (self.cert_file, self.key_file, self.client_ca_file):
            if path is not None and not os.access(path, os.R_OK):
                raise ValueError(f"cannot read {path}")
        return self

    @property
    def enabled(self) -> bool:
        return self.cert_file is not None


class ApiKeyConfig(BaseModel):
    """One caller's API key, known by the SHA-256 of the key (never the key), with what it may
    use. A list left out allows everything; an empty list allows nothing."""

    model_config = ConfigDict(extra="forbid")

    # Shown in logs instead of the key.
    name: str
    # 64 lowercase hex digits, inline or from an env var or file.
    sha256: str | SecretRef
    providers: list[str] | None = None
    # `model` or `provider/model`, with shell-style wildcards (`gpt-4o*`, `openai/*`).
    models: list[str] | None = None
    credential_sets: list[str] | None = None

    _digest: bytes = PrivateAttr(default=b"")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return _check_name(value, "API key name")

    @model_validator(mode="after")
    def _hash(self) -> ApiKeyConfig:
        text = (
            self.sha256.read().get_secret_value()
            if isinstance(self.sha256, SecretRef)
            else self.sha256
        )
        # `sha256sum` prints the digest followed by the file name; keep the digest.
        text = (text.split() or [""])[0].lower()
        if not _SHA256_HEX.fullmatch(text):
            # Never echo the value: someone may have pasted the key itself.
            raise ValueError(
                f"API key {self.name!r}: sha256 should be the 64 hex digits of the key's SHA-256 "
                '(`printf %s "$KEY" | sha256sum`), not the key itself'
            )
        self._digest = bytes.fromhex(text)
        return self

    @property
    def digest(self) -> bytes:
        return self._digest


class AuthConfig(BaseModel):
    """Caller authentication: on as soon as keys are configured (inline or from a file)."""

    model_config = ConfigDict(extra="forbid")

    api_keys: list[ApiKeyConfig] = Field(default_factory=list)
    # A YAML list of entries like `api_keys`' (a mounted secret or config map). Setting it turns
    # authentication on even if the file lists no key, so an empty mount refuses every call
    # instead of opening the server.
    api_keys_file: Path | None = None

    _all: list[ApiKeyConfig] = PrivateAttr(default_factory=list)

    @model_validator(mode="after")
    def _load(self) -> AuthConfig:
        keys = list(self.api_keys)
        if self.api_keys_file is not None:
            keys.extend(_keys_from_file(self.api_keys_file))
        names = [k.name for k in keys]
        duplicate_names = sorted({n for n in names if names.count(n) > 1})
        if duplicate_names:
            raise ValueError(f"API key names must be unique: {', '.join(duplicate_names)}")
        digests = [k.digest for k in keys]
        if len(set(digests)) != len(digests):
            raise ValueError("two API keys have the same sha256")
        self._all = keys
        return self

    @property
    def enabled(self) -> bool:
        return bool(self.api_keys) or self.api_keys_file is not None

    @property
    def keys(self) -> list[ApiKeyConfig]:
        """The inline keys and the file's."""
        return self._all


def _keys_from_file(path: Path) -> list[ApiKeyConfig]:
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ValueError(f"api_keys_file {path}: {exc}") from None
    if loaded is None:
        return []
    if not isinstance(loaded, list):
        raise ValueError(f"api_keys_file {path}: expected a list of API keys")
    keys = []
    for index, entry in enumerate(loaded):
        try:
            keys.append(ApiKeyConfig.model_validate(entry))
        except ValidationError as exc:
            problems = "; ".join(e["msg"] for e in exc.errors())
            raise ValueError(f"api_keys_file {path}: entry {index}: {problems}") from None
    return keys


class CredentialSetConfig(BaseModel):
    """Credentials the server holds for one provider, which callers name instead of sending.
    With several entries, calls spread over them, and one that meets a rate limit, a spent
    quota or an authorization failure rests for `cooldown_seconds` (longer if the upstream's
    Retry-After says so) while the others carry the traffic."""

    model_config = ConfigDict(extra="forbid")

    provider: str
    # Each entry maps the provider's credential form variables to a value: plain text for what
    # is not secret (an endpoint, an API version), `{env: ...}` or `{file: ...}` for the rest.
    credentials: list[dict[str, str | SecretRef]] = Field(min_length=1)
    cooldown_seconds: float = Field(default=60.0, ge=0)

    _resolved: list[dict[str, SecretStr]] = PrivateAttr(default_factory=list)
    _from_secrets: list[frozenset[str]] = PrivateAttr(default_factory=list)

    @model_validator(mode="after")
    def _read(self) -> CredentialSetConfig:
        for entry in self.credentials:
            self._resolved.append(
                {
                    variable: value.read() if isinstance(value, SecretRef) else SecretStr(value)
                    for variable, value in entry.items()
                }
            )
            self._from_secrets.append(
                frozenset(v for v, value in entry.items() if isinstance(value, SecretRef))
            )
        return self

    def resolved(self) -> list[dict[str, SecretStr]]:
        """Each entry's values, secrets read."""
        return self._resolved

    def plain_variables(self, index: int) -> set[str]:
        """The variables of entry `index` written in the config as plain text."""
        return set(self.credentials[index]) - self._from_secrets[index]


class SecurityConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tls: TlsConfig = Field(default_factory=TlsConfig)
    auth: AuthConfig = Field(default_factory=AuthConfig)
    credential_sets: dict[str, CredentialSetConfig] = Field(default_factory=dict)
    # Whether a request may carry its own `credentials`; false makes credential sets the only
    # way to reach a provider.
    allow_inline_credentials: bool = True

    @field_validator("credential_sets")
    @classmethod
    def _set_names(cls, value: dict[str, Any]) -> dict[str, Any]:
        for name in value:
            _check_name(name, "credential set name")
        return value

    @model_validator(mode="after")
    def _known_sets(self) -> SecurityConfig:
        for key in self.auth.keys:
            unknown = sorted(set(key.credential_sets or ()) - set(self.credential_sets))
            if unknown:
                raise ValueError(
                    f"API key {key.name!r} names credential sets that are not configured: "
                    + ", ".join(unknown)
                )
        return self


class LimitsConfig(BaseModel):
    """What one request may ask for, and how many calls run at once. `null` lifts a limit.
    The request-size limit itself is the top-level `max_receive_message_bytes`."""

    model_config = ConfigDict(extra="forbid")

    max_prompt_messages: int | None = Field(default=1000, ge=1)
    # Speech-to-text uploads; 25 MiB is the most the big hosted APIs accept.
    max_audio_bytes: int | None = Field(default=25 * 1024 * 1024, ge=1)
    # Texts in one embedding (or embedding token count) call; OpenAI accepts 2048.
    max_embedding_texts: int | None = Field(default=2048, ge=1)
    # Calls in progress (a stream counts until it ends); over the cap a call fails at once with
    # OVERLOADED rather than wait in a queue that has no bound.
    max_concurrent_calls: int | None = Field(default=4096, ge=1)
    # The same, for each provider (`provider_concurrency` overrides it for one provider).
    max_concurrent_calls_per_provider: int | None = Field(default=None, ge=1)
    provider_concurrency: dict[str, int] = Field(default_factory=dict)
    # The RetryInfo an OVERLOADED status carries.
    overloaded_retry_after_seconds: float = Field(default=1.0, gt=0)

    @field_validator("provider_concurrency")
    @classmethod
    def _positive(cls, value: dict[str, int]) -> dict[str, int]:
        for provider, cap in value.items():
            if cap < 1:
                raise ValueError(f"provider_concurrency.{provider} should be at least 1")
        return value
