"""The OpenAI provider's schema as callers list it (every shipped model YAML, in `_position.yaml`
order), credential validation and its messages, and token counts of the real encodings."""

from __future__ import annotations

from pathlib import Path

import bpe_openai  # type: ignore[import-untyped]
import grpc
import pytest
import yaml

from modelruntime import client as mr
from modelruntime.v1 import schema_pb2

from ..fakes.openai_wire import error_reply, reply
from ..upstream import FakeUpstream
from ._support import KEY, PROVIDER, creds

MODELS_DIR = Path(__file__).resolve().parents[3] / "providers" / "openai" / "models"
MODEL_TYPES = {
    "llm": "llm",
    "text_embedding": "text-embedding",
    "moderation": "moderation",
    "speech2text": "speech2text",
    "tts": "tts",
}
DIFY_CREDENTIALS = ["openai_api_key", "openai_organization", "openai_api_base"]


def position(folder: str) -> list[str]:
    names: list[str] = yaml.safe_load((MODELS_DIR / folder / "_position.yaml").read_text())
    return names


# ---- schema ----------------------------------------------------------------------------------


def test_the_provider_is_listed_with_dify_credential_names(client: mr.ModelRuntimeClient) -> None:
    (provider,) = [p for p in client.list_providers() if p.provider == PROVIDER]

    assert provider.label.en_us == "OpenAI"
    assert provider.label.zh_hans == "OpenAI"
    fields = [f.variable for f in provider.provider_credential_schema.credential_form_schemas]
    assert fields[:3] == DIFY_CREDENTIALS
    key_field = provider.provider_credential_schema.credential_form_schemas[0]
    assert key_field.required
    assert schema_pb2.FormType.Name(key_field.type) == "FORM_TYPE_SECRET_INPUT"


@pytest.mark.parametrize("folder", list(MODEL_TYPES))
def test_every_shipped_model_is_listed_in_position_order(
    client: mr.ModelRuntimeClient, folder: str
) -> None:
    shipped = sorted(p.stem for p in (MODELS_DIR / folder).glob("*.yaml") if p.stem != "_position")
    order = position(folder)

    listed = [m.model for m in client.list_models(PROVIDER, MODEL_TYPES[folder])]

    assert sorted(order) == shipped
    assert listed == order


def test_the_required_models_are_shipped() -> None:
    assert set(position("llm")) >= {
        "gpt-5",
        "gpt-5-mini",
        "gpt-5-nano",
        "gpt-4.1",
        "gpt-4.1-mini",
        "gpt-4.1-nano",
        "gpt-4o",
        "gpt-4o-mini",
        "o3",
        "o4-mini",
        "o3-mini",
    }
    assert set(position("text_embedding")) == {
        "text-embedding-3-small",
        "text-embedding-3-large",
        "text-embedding-ada-002",
    }
    assert {"omni-moderation-latest", "text-moderation-latest"} <= set(position("moderation"))
    assert set(position("speech2text")) == {
        "whisper-1",
        "gpt-4o-transcribe",
        "gpt-4o-mini-transcribe",
    }
    assert set(position("tts")) == {"tts-1", "tts-1-hd", "gpt-4o-mini-tts"}


def test_a_reasoning_model_schema_has_its_own_rules_and_prices(
    client: mr.ModelRuntimeClient,
) -> None:
    schema = client.get_model_schema(PROVIDER, "llm", "gpt-5")

    rules = {r.name: r for r in schema.parameter_rules}
    assert set(rules) == {
        "max_tokens",
        "reasoning_effort",
        "verbosity",
        "response_format",
        "json_schema",
    }
    assert list(rules["reasoning_effort"].options) == ["minimal", "low", "medium", "high"]
    assert list(rules["response_format"].options) == ["text", "json_object", "json_schema"]
    assert (schema.pricing.input, schema.pricing.output, schema.pricing.unit) == (
        "1.25",
        "10.00",
        "0.000001",
    )


# ---- credential validation ---------------------------------------------------------------------

MODEL_CARD = {"id": "gpt-4o-mini", "object": "model", "created": 1721172741, "owned_by": "system"}


def test_model_credentials_are_checked_by_reading_the_model_card(
    client: mr.ModelRuntimeClient, upstream: FakeUpstream
) -> None:
    upstream.route("GET", "/v1/models/gpt-4o-mini", reply(MODEL_CARD))

    kept = client.validate_model_credentials(PROVIDER, "llm", "gpt-4o-mini", creds(upstream))

    assert "openai_api_key" not in kept
    assert kept["openai_api_base"] == upstream.url
    assert upstream.last().headers["authorization"] == f"Bearer {KEY}"


def test_provider_credentials_are_checked_on_the_model_list_or_the_validate_model(
    client: mr.ModelRuntimeClient, upstream: FakeUpstream
) -> None:
    upstream.route("GET", "/v1/models", reply({"object": "list", "data": [MODEL_CARD]}))
    upstream.route("GET", "/v1/models/gpt-4o", reply({**MODEL_CARD, "id": "gpt-4o"}))

    client.validate_provider_credentials(PROVIDER, creds(upstream))
    client.validate_provider_credentials(PROVIDER, creds(upstream, validate_model="gpt-4o"))

    assert [r.path for r in upstream.requests] == ["/v1/models", "/v1/models/gpt-4o"]


@pytest.mark.parametrize(
    ("status", "message", "says"),
    [
        (401, f"Incorrect API key provided: {KEY}.", "check openai_api_key"),
        (403, "You are not allowed to sample from this model", "check openai_api_key"),
        (404, "The model `gpt-4o-mini` does not exist", "model 'gpt-4o-mini' is not available"),
    ],
)
def test_refused_credentials_fail_validation_with_an_actionable_message(
    client: mr.ModelRuntimeClient, upstream: FakeUpstream, status: int, message: str, says: str
) -> None:
    upstream.route("GET", "/v1/models/gpt-4o-mini", error_reply(status, message))

    with pytest.raises(mr.CredentialsValidateFailedError) as caught:
        client.validate_model_credentials(PROVIDER, "llm", "gpt-4o-mini", creds(upstream))

    exc = caught.value
    assert exc.code == grpc.StatusCode.FAILED_PRECONDITION
    assert exc.reason == "CREDENTIALS_VALIDATE_FAILED"
    assert says in exc.message
    assert upstream.url in exc.message
    assert KEY not in str(exc)


def test_an_unreachable_base_url_says_which_setting_to_check(
    client: mr.ModelRuntimeClient, upstream: FakeUpstream
) -> None:
    credentials = creds(upstream)
    credentials["openai_api_base"] = "http://127.0.0.1:9"

    with pytest.raises(mr.InvokeConnectionError) as caught:
        client.validate_model_credentials(PROVIDER, "llm", "gpt-4o-mini", credentials)

    assert caught.value.reason == "INVOKE_CONNECTION_ERROR"
    assert "check openai_api_base" in caught.value.message


@pytest.mark.parametrize(
    ("credentials", "field"),
    [
        ({"openai_api_base": "http://127.0.0.1:9"}, "credentials.openai_api_key"),
        (
            {"openai_api_key": KEY, "openai_api_base": "ftp://example.com"},
            "credentials.openai_api_base",
        ),
    ],
)
def test_malformed_credentials_are_refused_before_any_request(
    client: mr.ModelRuntimeClient, upstream: FakeUpstream, credentials: dict[str, str], field: str
) -> None:
    with pytest.raises(mr.InvalidCredentialsError) as caught:
        client.invoke_llm(PROVIDER, "gpt-4o-mini", credentials, "hi")

    assert caught.value.reason == "INVALID_CREDENTIALS"
    assert [v.field for v in caught.value.field_violations] == [field]
    assert upstream.requests == []


# ---- token counting ----------------------------------------------------------------------------

# Token ids published in OpenAI's cookbook ("How to count tokens with tiktoken").
KNOWN_CL100K = {
    "tiktoken is great!": [83, 1609, 5963, 374, 2294, 0],
    "antidisestablishmentarianism": [519, 85342, 34500, 479, 8997, 2191],
    "2 + 2 = 4": [17, 489, 220, 17, 284, 220, 19],
    "お誕生日おめでとう": [33334, 45918, 243, 21990, 9080, 33334, 62004, 16556, 78699],
}
KNOWN_O200K = {
    "tiktoken is great!": [83, 8251, 2488, 382, 2212, 0],
    "antidisestablishmentarianism": [493, 129901, 376, 160388, 21203, 2367],
    "2 + 2 = 4": [17, 659, 220, 17, 314, 220, 19],
    "お誕生日おめでとう": [8930, 9697, 243, 128225, 8930, 17693, 4344, 48669],
}


def test_the_bundled_encodings_are_openais() -> None:
    cl100k = bpe_openai.get_encoding("cl100k_base")
    o200k = bpe_openai.get_encoding("o200k_base")
    assert {t: cl100k.encode(t) for t in KNOWN_CL100K} == KNOWN_CL100K
    assert {t: o200k.encode(t) for t in KNOWN_O200K} == KNOWN_O200K


def test_embedding_models_count_with_cl100k(
    client: mr.ModelRuntimeClient, upstream: FakeUpstream
) -> None:
    counts = client.get_text_embedding_num_tokens(
        PROVIDER, "text-embedding-3-small", creds(upstream), list(KNOWN_CL100K)
    )

    assert counts == [len(ids) for ids in KNOWN_CL100K.values()]
    assert upstream.requests == []


@pytest.mark.parametrize("model", ["gpt-4o", "gpt-4.1-mini", "gpt-5-nano", "o3"])
def test_chat_prompts_count_with_o200k_and_the_cookbooks_message_framing(
    client: mr.ModelRuntimeClient, upstream: FakeUpstream, model: str
) -> None:
    text = "お誕生日おめでとう"
    single = client.get_llm_num_tokens(PROVIDER, model, creds(upstream), [mr.user_message(text)])
    named = client.get_llm_num_tokens(
        PROVIDER,
        model,
        creds(upstream),
        [mr.system_message("2 + 2 = 4"), mr.user_message(text, name="tiktoken is great!")],
    )

    # 3 framing + "user" (1) + the content, and 3 that prime the reply.
    assert single == 3 + 1 + 8 + 3
    # Each message's framing, role and content; a name adds 1 and its own tokens.
    assert named == (3 + 1 + 7) + (3 + 1 + 8 + 1 + 6) + 3
    assert upstream.requests == []


def test_tool_definitions_are_counted(
    client: mr.ModelRuntimeClient, upstream: FakeUpstream
) -> None:
    o200k = bpe_openai.get_encoding("o200k_base")
    tool = {
        "name": "get_weather",
        "description": "Weather for a city.",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "description": "The city"},
                "unit": {"type": "string", "enum": ["C", "F"]},
            },
        },
    }
    prompt = [mr.user_message("Weather?")]

    without = client.get_llm_num_tokens(PROVIDER, "gpt-4o", creds(upstream), prompt)
    with_tool = client.get_llm_num_tokens(PROVIDER, "gpt-4o", creds(upstream), prompt, tools=[tool])

    def n(text: str) -> int:
        return len(o200k.encode(text))

    # Per function 7 and its "name:description"; 3 for the properties; per property 3 and its
    # "name:type:description"; an enum -3 and 3 plus the tokens of each item; 12 at the end.
    expected = (
        7
        + n("get_weather:Weather for a city")
        + 3
        + (3 + n("city:string:The city"))
        + (3 + n("unit:string:") - 3 + (3 + n("C")) + (3 + n("F")))
        + 12
    )
    assert with_tool - without == expected
