"""What the runtime says about Xinference models: the provider's forms, and each model's
schema as built from the server's description of it (through GetModelSchema)."""

from __future__ import annotations

from modelruntime import client as mr
from modelruntime.v1 import schema_pb2

from .fake_xinference import (
    CHAT,
    CHATTTS,
    EMBEDDING,
    GENERATE,
    GLM_CHAT,
    HYBRID,
    RERANK,
    TTS,
    WHISPER,
    FakeXinference,
)

F = schema_pb2


def rules(schema: schema_pb2.AIModelEntity) -> dict[str, schema_pb2.ParameterRule]:
    return {rule.name: rule for rule in schema.parameter_rules}


def test_the_provider_offers_customizable_models_with_difys_credential_names(
    client: mr.ModelRuntimeClient,
) -> None:
    (provider,) = [p for p in client.list_providers() if p.provider == "xinference"]

    assert provider.label.en_us == "Xorbits Inference"
    assert provider.label.zh_hans
    assert list(provider.configurate_methods) == [F.CONFIGURATE_METHOD_CUSTOMIZABLE_MODEL]
    assert list(provider.supported_model_types) == [
        F.MODEL_TYPE_LLM,
        F.MODEL_TYPE_TEXT_EMBEDDING,
        F.MODEL_TYPE_RERANK,
        F.MODEL_TYPE_SPEECH2TEXT,
        F.MODEL_TYPE_TTS,
    ]
    form = {f.variable: f for f in provider.model_credential_schema.credential_form_schemas}
    assert list(form) == ["server_url", "model_uid", "api_key", "invoke_timeout", "max_retries"]
    assert form["server_url"].required and form["model_uid"].required
    assert form["api_key"].type == F.FORM_TYPE_SECRET_INPUT and not form["api_key"].required
    assert (form["invoke_timeout"].default, form["max_retries"].default) == ("60", "3")
    assert all(f.label.en_us and f.label.zh_hans for f in form.values())
    assert client.list_models("xinference") == []


def test_a_chat_model_schema_comes_from_its_description(
    client: mr.ModelRuntimeClient, xinference: FakeXinference
) -> None:
    schema = client.get_model_schema("xinference", "llm", "my-qwen", xinference.credentials(CHAT))

    assert schema.model == "my-qwen"
    assert schema.fetch_from == F.CONFIGURATE_METHOD_CUSTOMIZABLE_MODEL
    assert schema.model_properties.mode == F.LLM_MODE_CHAT
    assert schema.model_properties.context_size == 32768
    assert list(schema.features) == [
        F.MODEL_FEATURE_TOOL_CALL,
        F.MODEL_FEATURE_MULTI_TOOL_CALL,
        F.MODEL_FEATURE_STREAM_TOOL_CALL,
        F.MODEL_FEATURE_VISION,
    ]
    by_name = rules(schema)
    # The transformers engine takes top_k and repetition_penalty, not the OpenAI penalties.
    assert list(by_name) == ["temperature", "top_p", "max_tokens", "top_k", "repetition_penalty"]
    assert by_name["max_tokens"].max == 32768
    assert by_name["temperature"].max == 2.0
    # No defaults: what the caller leaves out is left to the model's own generation config.
    assert not any(rule.HasField("default") for rule in by_name.values())


def test_a_generate_model_is_a_completion_model_with_its_engines_parameters(
    client: mr.ModelRuntimeClient, xinference: FakeXinference
) -> None:
    schema = client.get_model_schema("xinference", "llm", "base", xinference.credentials(GENERATE))

    assert schema.model_properties.mode == F.LLM_MODE_COMPLETION
    assert schema.model_properties.context_size == 4096
    assert list(schema.features) == []
    by_name = rules(schema)
    assert list(by_name) == [
        "temperature",
        "top_p",
        "max_tokens",
        "top_k",
        "presence_penalty",
        "frequency_penalty",
    ]
    assert by_name["max_tokens"].max == 4096
    assert (by_name["presence_penalty"].min, by_name["presence_penalty"].max) == (-2.0, 2.0)


def test_a_hybrid_reasoning_model_gets_a_think_switch(
    client: mr.ModelRuntimeClient, xinference: FakeXinference
) -> None:
    schema = client.get_model_schema("xinference", "llm", "qwen3", xinference.credentials(HYBRID))

    by_name = rules(schema)
    assert by_name["think"].type == F.PARAMETER_TYPE_BOOLEAN
    assert "repetition_penalty" in by_name and "frequency_penalty" in by_name  # vLLM
    assert F.MODEL_FEATURE_AGENT_THOUGHT in schema.features
    assert F.MODEL_FEATURE_VISION not in schema.features


def test_tool_calls_of_families_without_tagged_text_are_not_streamed_as_deltas(
    client: mr.ModelRuntimeClient, xinference: FakeXinference
) -> None:
    schema = client.get_model_schema("xinference", "llm", "glm", xinference.credentials(GLM_CHAT))

    assert list(schema.features) == [F.MODEL_FEATURE_TOOL_CALL, F.MODEL_FEATURE_MULTI_TOOL_CALL]


def test_the_other_model_types_schemas(
    client: mr.ModelRuntimeClient, xinference: FakeXinference
) -> None:
    embedding = client.get_model_schema(
        "xinference", "text-embedding", "bge", xinference.credentials(EMBEDDING)
    )
    rerank = client.get_model_schema("xinference", "rerank", "rr", xinference.credentials(RERANK))
    speech2text = client.get_model_schema(
        "xinference", "speech2text", "stt", xinference.credentials(WHISPER)
    )
    tts = client.get_model_schema("xinference", "tts", "cosy", xinference.credentials(TTS))
    chattts = client.get_model_schema("xinference", "tts", "chat", xinference.credentials(CHATTTS))

    assert embedding.model_type == F.MODEL_TYPE_TEXT_EMBEDDING
    assert embedding.model_properties.context_size == 8192
    assert embedding.model_properties.max_chunks == 32
    assert rerank.model_type == F.MODEL_TYPE_RERANK
    assert list(rerank.parameter_rules) == []
    assert speech2text.model_type == F.MODEL_TYPE_SPEECH2TEXT
    assert "wav" in speech2text.model_properties.supported_file_extensions
    assert tts.model_properties.default_voice == "中文女"
    assert [v.mode for v in tts.model_properties.voices][:2] == ["中文女", "中文男"]
    assert tts.model_properties.audio_type == "mp3"
    # ChatTTS takes any voice (a seed): no fixed list to choose from.
    assert list(chattts.model_properties.voices) == []


def test_a_model_of_another_type_is_refused_with_what_it_is(
    client: mr.ModelRuntimeClient, xinference: FakeXinference
) -> None:
    try:
        client.get_model_schema("xinference", "llm", "bge", xinference.credentials(EMBEDDING))
    except mr.InvokeBadRequestError as exc:
        assert exc.reason == "INVOKE_BAD_REQUEST"
        assert "is an embedding model, not usable as llm" in str(exc)
        assert "add it as a text-embedding model instead" in str(exc)
    else:
        raise AssertionError("an embedding model passed for an LLM")


def test_the_description_is_read_once_for_many_calls(
    client: mr.ModelRuntimeClient, xinference: FakeXinference
) -> None:
    credentials = xinference.credentials(RERANK)
    for _ in range(3):
        client.get_model_schema("xinference", "rerank", "rr", credentials)
        client.invoke_rerank("xinference", "rr", credentials, "query", ["a doc"])

    described = [r for r in xinference.upstream.requests if r.path == f"/v1/models/{RERANK}"]
    assert len(described) <= 1
