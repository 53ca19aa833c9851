"""The `security:` and `limits:` config sections: safe defaults, and mistakes caught at load with
messages that name the key and never a secret."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
import yaml

from server.config import ConfigError, ServerConfig, load_config

SECRET = "sk-test-config-secret-not-real"


def load(
    tmp_path: Path, data: dict[str, Any], environ: dict[str, str] | None = None
) -> ServerConfig:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data))
    return load_config(path, environ=environ or {})


def refused(tmp_path: Path, data: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, data)
    return str(caught.value)


def test_the_defaults_are_open_on_loopback_and_limited() -> None:
    config = ServerConfig()
    assert config.address.startswith("127.0.0.1:")
    assert not config.security.tls.enabled
    assert not config.security.auth.enabled
    assert config.security.allow_inline_credentials
    assert config.security.credential_sets == {}
    assert config.limits.max_prompt_messages == 1000
    assert config.limits.max_audio_bytes == 25 * 1024 * 1024
    assert config.limits.max_embedding_texts == 2048
    assert config.limits.max_concurrent_calls == 4096


def test_a_full_config_loads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("server.crt", "server.key", "ca.crt"):
        (tmp_path / name).write_text("pem")
    monkeypatch.setenv("CONFIG_TEST_KEY", SECRET)
    config = load(
        tmp_path,
        {
            "security": {
                "tls": {
                    "cert_file": str(tmp_path / "server.crt"),
                    "key_file": str(tmp_path / "server.key"),
                    "client_ca_file": str(tmp_path / "ca.crt"),
                },
                "auth": {"api_keys": [{"name": "a", "sha256": "AB" * 32, "models": ["x/*"]}]},
                "credential_sets": {
                    "s": {
                        "provider": "fake",
                        "credentials": [{"api_key": {"env": "CONFIG_TEST_KEY"}}],
                    }
                },
                "allow_inline_credentials": False,
            },
            "limits": {"max_prompt_messages": None, "provider_concurrency": {"fake": 3}},
        },
    )
    assert config.security.tls.enabled and config.security.auth.enabled
    assert config.security.auth.keys[0].digest == bytes.fromhex("ab" * 32)
    assert config.limits.max_prompt_messages is None
    # What was read from a secret does not show when the config is printed.
    assert SECRET not in repr(config) and SECRET not in str(config.model_dump())


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"security": {"tls": {"cert_file": "/nope.crt"}}}, "cert_file and key_file go together"),
        (
            {"security": {"tls": {"cert_file": "/nope.crt", "key_file": "/nope.key"}}},
            "cannot read /nope.crt",
        ),
        (
            {
                "security": {
                    "auth": {"api_keys": [{"name": "a", "sha256": {"env": "X", "file": "/y"}}]}
                }
            },
            "give exactly one of env or file",
        ),
        (
            {"security": {"auth": {"api_keys": [{"name": "has space", "sha256": "ab" * 32}]}}},
            "API key name 'has space'",
        ),
        (
            {
                "security": {
                    "auth": {
                        "api_keys": [
                            {"name": "a", "sha256": "ab" * 32},
                            {"name": "b", "sha256": "ab" * 32},
                        ]
                    }
                }
            },
            "two API keys have the same sha256",
        ),
        (
            {
                "security": {
                    "auth": {
                        "api_keys": [{"name": "a", "sha256": "ab" * 32, "credential_sets": ["s"]}]
                    }
                }
            },
            "names credential sets that are not configured: s",
        ),
        (
            {"security": {"auth": {"api_keys_file": "/nope/keys.yaml"}}},
            "api_keys_file /nope/keys.yaml",
        ),
        (
            {"security": {"credential_sets": {"s": {"provider": "fake", "credentials": []}}}},
            "security.credential_sets.s.credentials",
        ),
        ({"limits": {"max_prompt_messages": 0}}, "limits.max_prompt_messages"),
        ({"limits": {"provider_concurrency": {"fake": 0}}}, "provider_concurrency.fake"),
        ({"limits": {"max_concurrent_callz": 3}}, "limits.max_concurrent_callz"),
    ],
    ids=[
        "cert-without-key",
        "unreadable-cert",
        "secret-from-two-places",
        "bad-key-name",
        "same-key-twice",
        "unknown-set-for-a-key",
        "missing-key-file",
        "set-without-credentials",
        "zero-limit",
        "zero-provider-cap",
        "unknown-limit",
    ],
)
def test_mistakes_are_caught_at_load(tmp_path: Path, data: dict[str, Any], message: str) -> None:
    assert message in refused(tmp_path, data)


def test_a_key_file_entry_is_checked_like_an_inline_one(tmp_path: Path) -> None:
    keys = tmp_path / "keys.yaml"
    keys.write_text(
        yaml.safe_dump([{"name": "ok", "sha256": "ab" * 32}, {"name": "oops", "sha256": SECRET}])
    )
    message = refused(tmp_path, {"security": {"auth": {"api_keys_file": str(keys)}}})
    assert "entry 1" in message and "64 hex digits" in message
    assert SECRET not in message


def test_a_secret_file_must_not_be_empty(tmp_path: Path) -> None:
    empty = tmp_path / "key"
    empty.write_text("\n")
    sets = {"s": {"provider": "fake", "credentials": [{"api_key": {"file": str(empty)}}]}}
    assert f"{empty} is empty" in refused(tmp_path, {"security": {"credential_sets": sets}})


def test_a_hash_file_may_hold_sha256sum_output(tmp_path: Path) -> None:
    digest = hashlib.sha256(b"mrk-test-not-a-real-key").hexdigest()
    hash_file = tmp_path / "key.sha256"
    hash_file.write_text(f"{digest}  -\n")
    config = load(
        tmp_path,
        {"security": {"auth": {"api_keys": [{"name": "a", "sha256": {"file": str(hash_file)}}]}}},
    )
    assert config.security.auth.keys[0].digest.hex() == digest
