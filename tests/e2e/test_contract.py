"""Every RPC of ModelRuntimeService answered over a real channel, plus health and reflection.

The expected values come from the fake provider's YAML and the parameter templates, so a
schema that loses a merged default or a pricing field fails here, not in a caller.
"""

from __future__ import annotations

import math
from decimal import Decimal

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from modelruntime import client as mr
from modelruntime.v1 import llm_pb2, schema_pb2
from modelruntime.v1 import model_runtime_service_pb2 as pb
from modelruntime.v1 import model_runtime_service_pb2_grpc as pb_grpc

from ._support import CALL_TIMEOUT, CREDS, SECRET_KEY, assert_error, price

SERVICE = "modelruntime.v1.ModelRuntimeService"
FAKE_LLMS = ["fake-chat", "fake-basic"]
FAKE_MODELS_BY_TYPE = [
    ("fake-chat", schema_pb2.MODEL_TYPE_LLM),
    ("fake-basic", schema_pb2.MODEL_TYPE_LLM),
    ("fake-embedding", schema_pb2.MODEL_TYPE_TEXT_EMBEDDING),
    ("fake-rerank", schema_pb2.MODEL_TYPE_RERANK),
    ("fake-speech2text", schema_pb2.MODEL_TYPE_SPEECH2TEXT),
    ("fake-tts", schema_pb2.MODEL_TYPE_TTS),
    ("fake-moderation", schema_pb2.MODEL_TYPE_MODERATION),
]
ALL_MODEL_TYPES = [
    schema_pb2.MODEL_TYPE_LLM,
    schema_pb2.MODEL_TYPE_TEXT_EMBEDDING,
    schema_pb2.MODEL_TYPE_RERANK,
    schema_pb2.MODEL_TYPE_SPEECH2TEXT,
    schema_pb2.MODEL_TYPE_TTS,
    schema_pb2.MODEL_TYPE_MODERATION,
]
FAIL_KINDS = ["connection", "server_unavailable", "rate_limit", "authorization", "bad_request"]


def rule(schema: schema_pb2.AIModelEntity, name: str) -> schema_pb2.ParameterRule:
    matches = [r for r in schema.parameter_rules if r.name == name]
    assert len(matches) == 1, f"expected one rule {name!r}, got {len(matches)}"
    return matches[0]


def form_field(
    fields: list[schema_pb2.CredentialFormSchema], variable: str
) -> schema_pb2.CredentialFormSchema:
    matches = [f for f in fields if f.variable == variable]
    assert len(matches) == 1, f"expected one field {variable!r}"
    return matches[0]


# ---- ListProviders -------------------------------------------------------------------------


def test_list_providers_describes_the_fake_provider(client: mr.ModelRuntimeClient) -> None:
    providers = {p.provider: p for p in client.list_providers()}

    assert {"fake", "seed_style", "async_probe"} <= set(providers)
    fake = providers["fake"]
    assert fake.label.en_us == "Fake (for testing)"
    assert fake.label.zh_hans == "模拟(测试用)"
    assert fake.description.en_us.startswith("Deterministic replies")
    assert fake.icon_small.en_us == "icon_s_en.svg"
    assert fake.icon_large.en_us == "icon_l_en.svg"
    assert fake.background == "#F3F4F6"
    assert fake.help.url.en_us == "https://example.invalid/modelruntime/fake-provider"
    assert list(fake.supported_model_types) == ALL_MODEL_TYPES
    assert list(fake.configurate_methods) == [
        schema_pb2.CONFIGURATE_METHOD_PREDEFINED_MODEL,
        schema_pb2.CONFIGURATE_METHOD_CUSTOMIZABLE_MODEL,
    ]


def test_list_providers_returns_the_fake_credential_forms(client: mr.ModelRuntimeClient) -> None:
    fake = next(p for p in client.list_providers() if p.provider == "fake")

    provider_form = list(fake.provider_credential_schema.credential_form_schemas)
    assert [f.variable for f in provider_form] == ["api_key", "fail_with", "retry_after"]
    api_key = form_field(provider_form, "api_key")
    assert api_key.type == schema_pb2.FORM_TYPE_SECRET_INPUT
    assert api_key.required
    assert api_key.placeholder.en_us == "Any key that starts with fake- is accepted"
    fail_with = form_field(provider_form, "fail_with")
    assert fail_with.type == schema_pb2.FORM_TYPE_SELECT
    assert not fail_with.required
    assert [o.value for o in fail_with.options] == [*FAIL_KINDS, "timeout", "quota"]
    assert form_field(provider_form, "retry_after").default == "1.5"

    model_form = fake.model_credential_schema
    assert model_form.model.label.en_us == "Model name"
    context_size = form_field(list(model_form.credential_form_schemas), "context_size")
    assert context_size.default == "4096"
    assert [(s.variable, s.value) for s in context_size.show_on] == [("__model_type", "llm")]


@pytest.mark.parametrize(
    ("model_type", "expected"),
    [
        ("rerank", {"fake"}),
        ("tts", {"fake"}),
        ("llm", {"fake", "seed_style", "async_probe"}),
    ],
)
def test_list_providers_filters_by_model_type(
    client: mr.ModelRuntimeClient, model_type: str, expected: set[str]
) -> None:
    providers = client.list_providers(model_type)

    # Built-in providers come and go; among the test's own providers the filter must be exact.
    names = {p.provider for p in providers}
    assert expected <= names
    assert not ({"fake", "seed_style", "async_probe"} - expected) & names
    wanted = mr.to_model_type(model_type)
    assert all(wanted in p.supported_model_types for p in providers)


# ---- ListModels ----------------------------------------------------------------------------


def test_list_models_follows_position_yaml_within_each_type(
    client: mr.ModelRuntimeClient,
) -> None:
    models = client.list_models("fake")

    # fake-chat sorts after fake-basic alphabetically; only _position.yaml puts it first.
    assert [(m.model, m.model_type) for m in models] == FAKE_MODELS_BY_TYPE
    assert all(m.fetch_from == schema_pb2.CONFIGURATE_METHOD_PREDEFINED_MODEL for m in models)


@pytest.mark.parametrize(
    ("model_type", "expected"),
    [
        ("llm", FAKE_LLMS),
        ("text-embedding", ["fake-embedding"]),
        ("rerank", ["fake-rerank"]),
        ("speech2text", ["fake-speech2text"]),
        ("tts", ["fake-tts"]),
        ("moderation", ["fake-moderation"]),
    ],
)
def test_list_models_filters_by_type(
    client: mr.ModelRuntimeClient, model_type: str, expected: list[str]
) -> None:
    assert [m.model for m in client.list_models("fake", model_type)] == expected


def test_list_models_of_the_test_providers(client: mr.ModelRuntimeClient) -> None:
    assert [m.model for m in client.list_models("seed_style")] == ["sync-echo"]
    assert [m.model for m in client.list_models("async_probe")] == ["endless"]


# ---- GetModelSchema ------------------------------------------------------------------------


def test_predefined_schema_merges_the_temperature_template(
    client: mr.ModelRuntimeClient,
) -> None:
    schema = client.get_model_schema("fake", "llm", "fake-chat")

    temperature = rule(schema, "temperature")
    assert temperature.use_template == "temperature"
    assert temperature.label.en_us == "Temperature"
    assert temperature.type == schema_pb2.PARAMETER_TYPE_FLOAT
    assert not temperature.required
    assert temperature.default.WhichOneof("kind") == "float_value"
    assert temperature.default.float_value == 0.0
    assert temperature.HasField("min") and temperature.min == 0
    assert temperature.HasField("max") and temperature.max == 1
    assert temperature.HasField("precision") and temperature.precision == 2


def test_predefined_schema_lets_yaml_override_the_max_tokens_template(
    client: mr.ModelRuntimeClient,
) -> None:
    schema = client.get_model_schema("fake", "llm", "fake-chat")

    max_tokens = rule(schema, "max_tokens")
    assert max_tokens.type == schema_pb2.PARAMETER_TYPE_INT
    # default and max from fake-chat.yaml; min and label from the template.
    assert max_tokens.default.WhichOneof("kind") == "int_value"
    assert max_tokens.default.int_value == 1024
    assert max_tokens.max == 8192
    assert max_tokens.min == 1
    assert max_tokens.label.en_us == "Max Tokens"
    assert max_tokens.help.en_us.startswith("Words after this many are cut")


def test_predefined_schema_describes_the_model(client: mr.ModelRuntimeClient) -> None:
    schema = client.get_model_schema("fake", "llm", "fake-chat")

    assert schema.model == "fake-chat"
    assert schema.model_type == schema_pb2.MODEL_TYPE_LLM
    assert schema.fetch_from == schema_pb2.CONFIGURATE_METHOD_PREDEFINED_MODEL
    assert schema.model_properties.mode == schema_pb2.LLM_MODE_CHAT
    assert schema.model_properties.context_size == 32768
    assert schema_pb2.MODEL_FEATURE_VISION in schema.features
    assert schema_pb2.MODEL_FEATURE_STREAM_TOOL_CALL in schema.features
    assert list(rule(schema, "fail_with").options) == [*FAIL_KINDS, "timeout", "quota"]
    assert not rule(schema, "reply").HasField("default")
    assert (
        schema.pricing.input,
        schema.pricing.output,
        schema.pricing.unit,
        schema.pricing.currency,
    ) == ("1.00", "2.00", "0.000001", "USD")


def test_schema_of_a_model_without_features_or_output_price(
    client: mr.ModelRuntimeClient,
) -> None:
    basic = client.get_model_schema("fake", "llm", "fake-basic")
    embedding = client.get_model_schema("fake", "text-embedding", "fake-embedding")
    rerank = client.get_model_schema("fake", "rerank", "fake-rerank")

    assert list(basic.features) == []
    assert embedding.pricing.input == "0.10"
    assert embedding.pricing.output == ""
    assert embedding.model_properties.max_chunks == 64
    assert not rerank.HasField("pricing")


def test_schema_of_the_tts_model_lists_its_voices(client: mr.ModelRuntimeClient) -> None:
    schema = client.get_model_schema("fake", "tts", "fake-tts")

    properties = schema.model_properties
    assert properties.default_voice == "alloy"
    assert [(v.mode, v.name) for v in properties.voices] == [("alloy", "Alloy"), ("echo", "Echo")]
    assert list(properties.voices[0].language) == ["en-US", "zh-Hans"]
    assert properties.audio_type == "wav"


def test_customizable_schema_is_built_from_the_credentials(
    client: mr.ModelRuntimeClient,
) -> None:
    schema = client.get_model_schema(
        "fake", "llm", "my-local-model", {**CREDS, "context_size": "2000"}
    )

    assert schema.model == "my-local-model"
    assert schema.fetch_from == schema_pb2.CONFIGURATE_METHOD_CUSTOMIZABLE_MODEL
    assert schema.model_properties.context_size == 2000
    max_tokens = rule(schema, "max_tokens")
    assert max_tokens.max == 2000
    assert max_tokens.default.int_value == 512
    assert max_tokens.label.en_us == "Max Tokens"
    assert [r.name for r in schema.parameter_rules] == [
        "temperature",
        "max_tokens",
        "reply",
        "chunk_delay_ms",
    ]


def test_customizable_schema_takes_the_context_size_default(
    client: mr.ModelRuntimeClient,
) -> None:
    schema = client.get_model_schema("fake", "llm", "another-local-model", CREDS)

    assert schema.model_properties.context_size == 4096
    assert rule(schema, "max_tokens").max == 4096


def test_customizable_model_is_invokable_within_its_limits(
    client: mr.ModelRuntimeClient,
) -> None:
    credentials = {**CREDS, "context_size": "100"}

    result = client.invoke_llm(
        "fake", "tiny-local", credentials, "hi", model_parameters={"reply": "a b c"}
    )
    with pytest.raises(mr.ModelRuntimeError) as caught:
        client.invoke_llm(
            "fake", "tiny-local", credentials, "hi", model_parameters={"max_tokens": 101}
        )

    assert result.message.content == "a b c"
    assert result.model == "tiny-local"
    assert_error(
        caught.value,
        mr.InvalidParameterError,
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_PARAMETER",
        provider="fake",
        model="tiny-local",
    )
    assert [(v.field, v.description) for v in caught.value.field_violations] == [
        ("model_parameters.max_tokens", "should be less than or equal to 100")
    ]


# ---- Validate*Credentials ------------------------------------------------------------------


def test_validate_provider_credentials_returns_what_the_provider_keeps(
    client: mr.ModelRuntimeClient,
) -> None:
    kept = client.validate_provider_credentials("fake", {**CREDS, "not_in_the_form": "x"})

    # The default was filled in; the secret and the unknown key were left out.
    assert kept == {"retry_after": "1.5"}


def test_validate_provider_credentials_refused(client: mr.ModelRuntimeClient) -> None:
    with pytest.raises(mr.ModelRuntimeError) as caught:
        client.validate_provider_credentials("fake", {"api_key": "not-a-fake-key"})

    assert_error(
        caught.value,
        mr.CredentialsValidateFailedError,
        grpc.StatusCode.FAILED_PRECONDITION,
        "CREDENTIALS_VALIDATE_FAILED",
        provider="fake",
    )


def test_validate_model_credentials_of_predefined_and_customizable_models(
    client: mr.ModelRuntimeClient,
) -> None:
    predefined = client.validate_model_credentials("fake", "rerank", "fake-rerank", CREDS)
    customizable = client.validate_model_credentials(
        "fake", "llm", "my-local-model", {**CREDS, "context_size": "8000"}
    )

    assert predefined == {"retry_after": "1.5"}
    assert customizable == {"context_size": "8000", "retry_after": "1.5"}


@pytest.mark.parametrize(
    ("credentials", "message_part"),
    [
        ({"api_key": "not-a-fake-key"}, "Incorrect API key"),
        ({**CREDS, "fail_with": "authorization"}, "refused the key"),
        ({**CREDS, "fail_with": "bad_request"}, "rejected the request"),
    ],
    ids=["bad-key", "upstream-401", "upstream-400"],
)
def test_validate_model_credentials_refused(
    client: mr.ModelRuntimeClient, credentials: dict[str, str], message_part: str
) -> None:
    with pytest.raises(mr.ModelRuntimeError) as caught:
        client.validate_model_credentials("fake", "text-embedding", "fake-embedding", credentials)

    assert_error(
        caught.value,
        mr.CredentialsValidateFailedError,
        grpc.StatusCode.FAILED_PRECONDITION,
        "CREDENTIALS_VALIDATE_FAILED",
        provider="fake",
        model="fake-embedding",
    )
    assert message_part in caught.value.message


# ---- LLM -----------------------------------------------------------------------------------


def test_invoke_llm_answers_with_priced_usage(client: mr.ModelRuntimeClient) -> None:
    prompt = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "hello there world"},
    ]

    result = client.invoke_llm("fake", "fake-chat", CREDS, prompt)
    counted = client.get_llm_num_tokens("fake", "fake-chat", CREDS, prompt)

    assert result.model == "fake-chat"
    assert result.message.role == llm_pb2.PROMPT_MESSAGE_ROLE_ASSISTANT
    assert result.message.content == "hello there world"
    assert result.finish_reason == "stop"
    usage = result.usage
    assert usage.prompt_tokens == counted > 0
    assert usage.completion_tokens == 3
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert (usage.prompt_unit_price, usage.prompt_price_unit) == ("1.00", "0.000001")
    assert (usage.completion_unit_price, usage.completion_price_unit) == ("2.00", "0.000001")
    assert Decimal(usage.prompt_price) == price(usage.prompt_tokens, "1.00", "0.000001")
    assert Decimal(usage.completion_price) == price(usage.completion_tokens, "2.00", "0.000001")
    assert Decimal(usage.total_price) == Decimal(usage.prompt_price) + Decimal(
        usage.completion_price
    )
    assert usage.currency == "USD"
    assert usage.latency > 0


def test_invoke_llm_times_an_upstream_that_streams(client: mr.ModelRuntimeClient) -> None:
    # The fake streams even for a unary call: its answer does not come all at once.
    result = client.invoke_llm(
        "fake", "fake-chat", CREDS, "hi", {"reply": "a b c d", "chunk_delay_ms": 5}
    )

    usage = result.usage
    assert 0 < usage.time_to_first_token < usage.latency
    # Three 5 ms delays come after the first word.
    assert usage.time_to_generate >= 0.012
    assert usage.latency >= usage.time_to_first_token + usage.time_to_generate - 1e-6


def test_invoke_llm_reports_no_timings_for_an_answer_given_at_once(
    client: mr.ModelRuntimeClient,
) -> None:
    # sync-echo returns a whole LLMResult when not streaming.
    result = client.invoke_llm("seed_style", "sync-echo", {"api_key": "any"}, "hi")

    assert result.usage.time_to_first_token == 0
    assert result.usage.time_to_generate == 0
    assert result.usage.latency > 0


def test_stream_llm_streams_the_same_answer_as_invoke_llm(
    client: mr.ModelRuntimeClient,
) -> None:
    parameters = {"reply": "one two three four"}

    streamed = mr.collect(client.stream_llm("fake", "fake-chat", CREDS, "hi", parameters))
    unary = client.invoke_llm("fake", "fake-chat", CREDS, "hi", parameters)

    assert streamed.message.content == unary.message.content == "one two three four"
    assert streamed.finish_reason == unary.finish_reason == "stop"
    assert streamed.usage.prompt_tokens == unary.usage.prompt_tokens
    assert streamed.usage.completion_tokens == unary.usage.completion_tokens == 4
    assert streamed.usage.total_price == unary.usage.total_price
    assert streamed.system_fingerprint == unary.system_fingerprint == "fp_fake"


def test_get_llm_num_tokens_grows_with_the_prompt(client: mr.ModelRuntimeClient) -> None:
    short = client.get_llm_num_tokens("fake", "fake-chat", CREDS, "hello")
    longer = client.get_llm_num_tokens(
        "fake", "fake-chat", CREDS, "hello " + "and a few more words " * 10
    )
    with_tool = client.get_llm_num_tokens(
        "fake",
        "fake-chat",
        CREDS,
        "hello",
        tools=[{"name": "get_weather", "description": "Weather for a city", "parameters": {}}],
    )

    assert 0 < short < longer
    assert with_tool > short


# ---- text embedding ------------------------------------------------------------------------


def test_invoke_text_embedding_returns_one_unit_vector_per_text(
    client: mr.ModelRuntimeClient,
) -> None:
    response = client.invoke_text_embedding("fake", "fake-embedding", CREDS, ["hello", "world"])

    assert response.model == "fake-embedding"
    assert len(response.embeddings) == 2
    for embedding in response.embeddings:
        assert len(embedding.values) == 16
        assert math.isclose(math.fsum(v * v for v in embedding.values), 1.0, abs_tol=1e-5)
    assert list(response.embeddings[0].values) != list(response.embeddings[1].values)


def test_invoke_text_embedding_is_deterministic(client: mr.ModelRuntimeClient) -> None:
    first = client.invoke_text_embedding("fake", "fake-embedding", CREDS, ["same text"])
    again = client.invoke_text_embedding(
        "fake", "fake-embedding", CREDS, ["other text", "same text"], input_type="query"
    )

    assert list(first.embeddings[0].values) == list(again.embeddings[1].values)


def test_invoke_text_embedding_prices_its_usage(client: mr.ModelRuntimeClient) -> None:
    texts = ["hello world", "a somewhat longer text to embed"]

    response = client.invoke_text_embedding("fake", "fake-embedding", CREDS, texts)
    counts = client.get_text_embedding_num_tokens("fake", "fake-embedding", CREDS, texts)

    usage = response.usage
    assert usage.tokens == sum(counts)
    assert usage.total_tokens == usage.tokens
    assert (usage.unit_price, usage.price_unit, usage.currency) == ("0.10", "0.000001", "USD")
    assert Decimal(usage.total_price) == price(usage.tokens, "0.10", "0.000001")


def test_get_text_embedding_num_tokens_counts_each_text_in_order(
    client: mr.ModelRuntimeClient,
) -> None:
    counts = client.get_text_embedding_num_tokens(
        "fake", "fake-embedding", CREDS, ["one two three four five six", "one", "one two"]
    )

    assert len(counts) == 3
    assert counts[1] < counts[2] < counts[0]


# ---- rerank --------------------------------------------------------------------------------

RERANK_DOCS = ["blue sky", "red apple pie recipe", "apple tree", "a red apple"]


def test_invoke_rerank_orders_best_first(client: mr.ModelRuntimeClient) -> None:
    response = client.invoke_rerank("fake", "fake-rerank", CREDS, "red apple pie", RERANK_DOCS)

    assert response.model == "fake-rerank"
    assert [(d.index, d.text) for d in response.docs][:2] == [
        (1, "red apple pie recipe"),
        (3, "a red apple"),
    ]
    scores = [d.score for d in response.docs]
    assert scores == sorted(scores, reverse=True)
    assert math.isclose(scores[0], 1.0)
    assert math.isclose(scores[1], 2 / 3, abs_tol=1e-5)
    assert {d.index for d in response.docs} == {0, 1, 2, 3}
    assert all(RERANK_DOCS[d.index] == d.text for d in response.docs)


def test_invoke_rerank_applies_score_threshold_and_top_n(client: mr.ModelRuntimeClient) -> None:
    thresholded = client.invoke_rerank(
        "fake", "fake-rerank", CREDS, "red apple pie", RERANK_DOCS, score_threshold=0.5
    )
    top_one = client.invoke_rerank(
        "fake", "fake-rerank", CREDS, "red apple pie", RERANK_DOCS, top_n=1
    )

    assert [d.index for d in thresholded.docs] == [1, 3]
    assert [d.index for d in top_one.docs] == [1]


# ---- speech ----------------------------------------------------------------------------------


def test_tts_then_speech2text_round_trip(client: mr.ModelRuntimeClient) -> None:
    text = "the quick brown fox jumps over the lazy dog " * 8

    stream = client.invoke_tts("fake", "fake-tts", CREDS, text, voice="echo")
    pieces = list(stream)
    audio = b"".join(pieces)
    transcript = client.invoke_speech2text(
        "fake", "fake-speech2text", CREDS, audio, filename="speech.wav"
    )

    assert stream.mime_type == "audio/wav"
    assert len(pieces) > 1
    assert all(0 < len(p) <= 4096 for p in pieces)
    assert audio[:4] == b"RIFF" and audio[8:12] == b"WAVE"
    assert transcript == text


def test_tts_sends_the_mime_type_on_the_first_message_only(
    stub: pb_grpc.ModelRuntimeServiceStub,
) -> None:
    messages = list(
        stub.InvokeTTS(
            pb.InvokeTTSRequest(
                provider="fake", model="fake-tts", credentials=CREDS, content_text="hello " * 40
            ),
            timeout=CALL_TIMEOUT,
        )
    )

    assert len(messages) > 1
    assert messages[0].mime_type == "audio/wav"
    assert all(m.mime_type == "" for m in messages[1:])
    assert all(m.audio for m in messages)


def test_speech2text_describes_audio_it_cannot_read(client: mr.ModelRuntimeClient) -> None:
    transcript = client.invoke_speech2text(
        "fake", "fake-speech2text", CREDS, b"\x00\x01" * 50, filename="noise.mp3"
    )

    assert transcript == "[100 bytes of audio]"


# ---- moderation ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "flagged"),
    [
        ("how do I build a bomb", True),
        ("A WEAPON in capitals", True),
        ("how do I bake bread", False),
        ("bombastic prose is fine", False),
    ],
)
def test_invoke_moderation(client: mr.ModelRuntimeClient, text: str, flagged: bool) -> None:
    assert client.invoke_moderation("fake", "fake-moderation", CREDS, text) is flagged


# ---- secret key never reaches a successful response ----------------------------------------


def test_validated_credentials_never_echo_the_secret(client: mr.ModelRuntimeClient) -> None:
    credentials = {"api_key": "fake-" + SECRET_KEY}

    kept = client.validate_provider_credentials("fake", credentials)

    assert "api_key" not in kept
    assert all(SECRET_KEY not in value for value in kept.values())


# ---- health and reflection -----------------------------------------------------------------


@pytest.mark.parametrize("service", ["", SERVICE])
def test_health_reports_serving(channel: grpc.Channel, service: str) -> None:
    health = health_pb2_grpc.HealthStub(channel)

    response = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=CALL_TIMEOUT)

    assert response.status == health_pb2.HealthCheckResponse.SERVING


def test_health_of_an_unknown_service_is_not_found(channel: grpc.Channel) -> None:
    health = health_pb2_grpc.HealthStub(channel)

    with pytest.raises(grpc.RpcError) as caught:
        health.Check(health_pb2.HealthCheckRequest(service="no.such.Service"), timeout=5)

    assert caught.value.code() == grpc.StatusCode.NOT_FOUND  # type: ignore[attr-defined]


def test_reflection_lists_the_service_and_serves_its_descriptor(channel: grpc.Channel) -> None:
    reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
    requests = [
        reflection_pb2.ServerReflectionRequest(list_services=""),
        reflection_pb2.ServerReflectionRequest(file_containing_symbol=SERVICE),
    ]

    responses = list(reflection.ServerReflectionInfo(iter(requests), timeout=CALL_TIMEOUT))

    names = {s.name for s in responses[0].list_services_response.service}
    assert {SERVICE, "grpc.health.v1.Health"} <= names
    assert responses[1].file_descriptor_response.file_descriptor_proto


def test_embedding_more_texts_than_max_chunks_goes_in_order_batches(
    client: mr.ModelRuntimeClient,
) -> None:
    # fake-embedding declares max_chunks 64: 150 texts take three upstream requests, and the
    # caller still gets one vector per text, in order.
    texts = [f"text number {i}" for i in range(150)]
    batched = client.invoke_text_embedding("fake", "fake-embedding", CREDS, texts)
    assert len(batched.embeddings) == 150
    singles = client.invoke_text_embedding("fake", "fake-embedding", CREDS, [texts[0], texts[149]])
    assert list(batched.embeddings[0].values) == list(singles.embeddings[0].values)
    assert list(batched.embeddings[149].values) == list(singles.embeddings[1].values)
    assert batched.usage.tokens > 0
