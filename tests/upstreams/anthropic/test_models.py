"""The provider as the server lists it (YAML loaded, models in `_position.yaml` order, Dify's
credential names) and credential validation against the fake API."""

from __future__ import annotations

import socket
from decimal import Decimal
from pathlib import Path

import grpc
import pytest
import yaml

from modelruntime import client as mr
from modelruntime.v1 import schema_pb2
from providers.sdk.entities.schema import ModelType
from providers.sdk.loader import load_model_yaml

from .fake_anthropic import TEST_KEY, Failure, FakeAnthropic

PROVIDER = "anthropic"
MODELS_DIR = Path(__file__).resolve().parents[3] / "providers" / "anthropic" / "models" / "llm"
POSITION = yaml.safe_load((MODELS_DIR / "_position.yaml").read_text())
HAIKU = "claude-haiku-4-5-20251001"
SONNET = "claude-sonnet-4-5-20250929"

# model: (context size, max_tokens default and maximum, $ per million in, out, thinking)
CATALOGUE = {
    "claude-haiku-4-5-20251001": (200000, 64000, 64000, "1.00", "5.00", True),
    "claude-sonnet-4-5-20250929": (200000, 64000, 64000, "3.00", "15.00", True),
    "claude-opus-4-1-20250805": (200000, 32000, 32000, "15.00", "75.00", True),
    "claude-opus-4-20250514": (200000, 32000, 32000, "15.00", "75.00", True),
    "claude-sonnet-4-20250514": (200000, 64000, 64000, "3.00", "15.00", True),
    "claude-3-7-sonnet-20250219": (200000, 64000, 128000, "3.00", "15.00", True),
    "claude-3-5-haiku-20241022": (200000, 8192, 8192, "0.80", "4.00", False),
}


def test_every_model_yaml_loads_and_is_placed_in_position_yaml() -> None:
    files = sorted(p for p in MODELS_DIR.glob("*.yaml") if not p.name.startswith("_"))
    names = [load_model_yaml(path, ModelType.LLM).model for path in files]

    assert sorted(names) == sorted(POSITION) == sorted(CATALOGUE)


def test_models_are_listed_in_position_order_with_their_rules_and_prices(
    client: mr.ModelRuntimeClient,
) -> None:
    models = client.list_models(PROVIDER, "llm")

    assert [m.model for m in models] == POSITION
    for model in models:
        context, default, maximum, price_in, price_out, thinking = CATALOGUE[model.model]
        assert model.model_properties.context_size == context
        assert model.model_properties.mode == schema_pb2.LLM_MODE_CHAT
        assert (Decimal(model.pricing.input), Decimal(model.pricing.output)) == (
            Decimal(price_in),
            Decimal(price_out),
        )
        assert (model.pricing.unit, model.pricing.currency) == ("0.000001", "USD")
        rules = {rule.name: rule for rule in model.parameter_rules}
        max_tokens = rules["max_tokens"]
        assert max_tokens.required
        assert (max_tokens.default.int_value, max_tokens.max) == (default, maximum)
        assert ("thinking" in rules) is thinking
        assert schema_pb2.MODEL_FEATURE_TOOL_CALL in model.features
        # Sampling parameters have no default: unset, they are not sent at all.
        for name in ("temperature", "top_p", "top_k"):
            assert not rules[name].HasField("default"), (model.model, name)


def test_the_provider_uses_difys_credential_names(client: mr.ModelRuntimeClient) -> None:
    (provider,) = [p for p in client.list_providers("llm") if p.provider == PROVIDER]

    assert (provider.label.en_us, provider.label.zh_hans) == ("Anthropic", "Anthropic")
    assert provider.description.zh_hans
    for form in (
        provider.provider_credential_schema.credential_form_schemas,
        provider.model_credential_schema.credential_form_schemas,
    ):
        assert [(f.variable, f.type, f.required) for f in form] == [
            ("anthropic_api_key", schema_pb2.FORM_TYPE_SECRET_INPUT, True),
            ("anthropic_api_url", schema_pb2.FORM_TYPE_TEXT_INPUT, False),
        ]
        assert all(f.label.zh_hans for f in form)
    assert list(provider.configurate_methods) == [
        schema_pb2.CONFIGURATE_METHOD_PREDEFINED_MODEL,
        schema_pb2.CONFIGURATE_METHOD_CUSTOMIZABLE_MODEL,
    ]


# ---- credential validation -----------------------------------------------------------------


def test_valid_credentials_are_proved_by_the_free_models_endpoint(
    client: mr.ModelRuntimeClient, anthropic: FakeAnthropic, credentials: dict[str, str]
) -> None:
    anthropic.list_model(SONNET)

    kept = client.validate_model_credentials(PROVIDER, "llm", SONNET, credentials)

    # The secret is not handed back.
    assert kept == {"anthropic_api_url": anthropic.url}
    recorded = anthropic.upstream.last()
    assert (recorded.method, recorded.path) == ("GET", f"/v1/models/{SONNET}")
    assert anthropic.messages_requests() == []


def test_provider_credentials_are_proved_on_the_cheapest_model(
    client: mr.ModelRuntimeClient, anthropic: FakeAnthropic, credentials: dict[str, str]
) -> None:
    anthropic.list_model(HAIKU)

    client.validate_provider_credentials(PROVIDER, credentials)

    assert anthropic.upstream.last().path == f"/v1/models/{HAIKU}"


def test_a_base_url_ending_in_v1_is_accepted(
    client: mr.ModelRuntimeClient, anthropic: FakeAnthropic, credentials: dict[str, str]
) -> None:
    anthropic.list_model(SONNET)

    client.validate_model_credentials(
        PROVIDER, "llm", SONNET, {**credentials, "anthropic_api_url": anthropic.url + "/v1/"}
    )

    assert anthropic.upstream.last().path == f"/v1/models/{SONNET}"


def test_a_model_missing_from_the_models_list_is_proved_by_a_one_token_question(
    client: mr.ModelRuntimeClient, anthropic: FakeAnthropic, credentials: dict[str, str]
) -> None:
    # No models route: the fake answers 404, as a gateway without the list would.
    client.validate_model_credentials(PROVIDER, "llm", "claude-via-gateway", credentials)

    body = anthropic.last_body()
    assert body == {
        "model": "claude-via-gateway",
        "max_tokens": 1,
        "messages": [{"role": "user", "content": "ping"}],
    }


def test_a_wrong_key_fails_validation_with_advice_and_without_the_key(
    client: mr.ModelRuntimeClient, anthropic: FakeAnthropic, credentials: dict[str, str]
) -> None:
    anthropic.list_model(SONNET)
    wrong = "sk-ant-wrong-fake-key-0000"

    with pytest.raises(mr.CredentialsValidateFailedError) as caught:
        client.validate_model_credentials(
            PROVIDER, "llm", SONNET, {**credentials, "anthropic_api_key": wrong}
        )

    exc = caught.value
    assert (exc.code, exc.reason) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "CREDENTIALS_VALIDATE_FAILED",
    )
    assert "Anthropic refused the API key" in str(exc)
    assert "anthropic_api_key" in str(exc)
    assert wrong not in str(exc) and TEST_KEY not in str(exc)


def test_an_unknown_model_fails_validation_naming_the_model(
    client: mr.ModelRuntimeClient, anthropic: FakeAnthropic, credentials: dict[str, str]
) -> None:
    anthropic.failure = Failure(404, "not_found_error", "model: claude-nope")

    with pytest.raises(mr.CredentialsValidateFailedError) as caught:
        client.validate_model_credentials(PROVIDER, "llm", "claude-nope", credentials)

    assert caught.value.reason == "CREDENTIALS_VALIDATE_FAILED"
    assert "one-token request to claude-nope" in str(caught.value)
    assert "check the model name and anthropic_api_url" in str(caught.value)


def test_an_unreachable_url_stays_a_connection_error_naming_the_setting(
    client: mr.ModelRuntimeClient,
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    credentials = {"anthropic_api_key": TEST_KEY, "anthropic_api_url": f"http://127.0.0.1:{port}"}

    with pytest.raises(mr.InvokeConnectionError) as caught:
        client.validate_model_credentials(PROVIDER, "llm", SONNET, credentials)

    assert caught.value.reason == "INVOKE_CONNECTION_ERROR"
    assert f"could not reach the Anthropic API at http://127.0.0.1:{port}" in str(caught.value)
    assert "check anthropic_api_url" in str(caught.value)


def test_a_missing_key_is_refused_by_the_form_before_any_call(
    client: mr.ModelRuntimeClient, anthropic: FakeAnthropic
) -> None:
    with pytest.raises(mr.InvalidCredentialsError) as caught:
        client.validate_model_credentials(
            PROVIDER, "llm", SONNET, {"anthropic_api_url": anthropic.url}
        )

    assert [v.field for v in caught.value.field_violations] == ["credentials.anthropic_api_key"]
    assert anthropic.upstream.requests == []
