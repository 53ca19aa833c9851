"""The provider as a client discovers it (its credential form, customizable schemas built from
the credentials) and ValidateModelCredentials making the cheapest real call, with messages that
say what to fix."""

from __future__ import annotations

import socket
from typing import Any

import grpc
import pytest
from aiohttp import web

from modelruntime import client as mr
from modelruntime.v1 import schema_pb2

from ..fakes.openai_wire import (
    ChatStream,
    chat_completion,
    embeddings,
    error_reply,
    reply,
    text_completion,
)
from ..upstream import FakeUpstream, Recorded, json_response, write_stream
from .support import API_KEY, MODEL, PROVIDER, SERVED, creds

CHAT = "/v1/chat/completions"

# Variable names of Dify's official openai_api_compatible plugin, by the model type they show for
# (None: every type), so credentials stored by Dify carry over.
DIFY_VARIABLES = {
    None: {"display_name", "api_key", "endpoint_url", "endpoint_model_name"},
    "llm": {
        "mode",
        "context_size",
        "max_tokens_to_sample",
        "function_calling_type",
        "stream_function_calling",
        "vision_support",
        "audio_support",
        "document_support",
        "structured_output_support",
        "agent_thought_support",
        "compatibility_mode",
        "token_param_name",
        "user_identity_support",
        "stream_include_usage",
        "stream_mode_auth",
        "stream_mode_delimiter",
    },
    "text-embedding": {
        "context_size",
        "max_chunks",
        "encoding_format",
        "document_prefix",
        "query_prefix",
    },
    "rerank": {"context_size", "rerank_endpoint_url"},
    "speech2text": {"language", "initial_prompt"},
    "tts": {"voices"},
}


def provider(client: mr.ModelRuntimeClient) -> schema_pb2.ProviderEntity:
    (found,) = [p for p in client.list_providers() if p.provider == PROVIDER]
    return found


# ---- what a client discovers ---------------------------------------------------------------------


def test_the_credential_form_uses_difys_variable_names_per_model_type(
    client: mr.ModelRuntimeClient,
) -> None:
    entity = provider(client)
    assert list(entity.configurate_methods) == [schema_pb2.CONFIGURATE_METHOD_CUSTOMIZABLE_MODEL]
    assert set(entity.supported_model_types) == {
        schema_pb2.MODEL_TYPE_LLM,
        schema_pb2.MODEL_TYPE_TEXT_EMBEDDING,
        schema_pb2.MODEL_TYPE_RERANK,
        schema_pb2.MODEL_TYPE_SPEECH2TEXT,
        schema_pb2.MODEL_TYPE_TTS,
    }
    form = entity.model_credential_schema.credential_form_schemas
    shown: dict[str | None, set[str]] = {}
    for field in form:
        types = [c.value for c in field.show_on if c.variable == "__model_type"] or [None]
        for model_type in types:
            shown.setdefault(model_type, set()).add(field.variable)
    for model_type, variables in DIFY_VARIABLES.items():
        assert variables <= shown[model_type], model_type
    (api_key,) = [f for f in form if f.variable == "api_key"]
    assert api_key.type == schema_pb2.FORM_TYPE_SECRET_INPUT and not api_key.required
    (delimiter,) = [f for f in form if f.variable == "stream_mode_delimiter"]
    assert delimiter.default == "\\n\\n"
    assert entity.label.en_us and entity.label.zh_hans != entity.label.en_us


@pytest.mark.parametrize("model_type", ["llm", "text-embedding", "rerank", "speech2text", "tts"])
def test_there_are_no_predefined_models(client: mr.ModelRuntimeClient, model_type: str) -> None:
    assert client.list_models(PROVIDER, model_type) == []


def test_an_llm_schema_is_built_from_its_credentials(
    client: mr.ModelRuntimeClient, upstream: FakeUpstream
) -> None:
    credentials = creds(
        upstream,
        display_name="Qwen 3 (8B)",
        context_size="32768",
        max_tokens_to_sample="8192",
        function_calling_type="tool_call",
        stream_function_calling="supported",
        vision_support="support",
        structured_output_support="supported",
        agent_thought_support="supported",
    )

    schema = client.get_model_schema(PROVIDER, "llm", MODEL, credentials)

    assert schema.label.en_us == "Qwen 3 (8B)"
    assert schema.fetch_from == schema_pb2.CONFIGURATE_METHOD_CUSTOMIZABLE_MODEL
    assert schema.model_properties.context_size == 32768
    assert schema.model_properties.mode == schema_pb2.LLM_MODE_CHAT
    assert list(schema.features) == [
        schema_pb2.MODEL_FEATURE_TOOL_CALL,
        schema_pb2.MODEL_FEATURE_MULTI_TOOL_CALL,
        schema_pb2.MODEL_FEATURE_STREAM_TOOL_CALL,
        schema_pb2.MODEL_FEATURE_VISION,
        schema_pb2.MODEL_FEATURE_AGENT_THOUGHT,
        schema_pb2.MODEL_FEATURE_STRUCTURED_OUTPUT,
    ]
    rules = {r.name: r for r in schema.parameter_rules}
    assert list(rules) == [
        "temperature",
        "top_p",
        "presence_penalty",
        "frequency_penalty",
        "max_tokens",
        "response_format",
        "json_schema",
        "enable_thinking",
        "reasoning_effort",
    ]
    assert (rules["temperature"].min, rules["temperature"].max) == (0, 2)
    assert (rules["presence_penalty"].min, rules["presence_penalty"].max) == (-2, 2)
    assert (rules["max_tokens"].min, rules["max_tokens"].max) == (1, 8192)
    assert rules["temperature"].label.zh_hans == "温度"
    # No defaults: what the caller leaves out is left to the server.
    assert not any(r.HasField("default") for r in schema.parameter_rules)
    assert list(rules["response_format"].options) == ["text", "json_object", "json_schema"]
    assert pricing_is_absent(schema)


def pricing_is_absent(schema: schema_pb2.AIModelEntity) -> bool:
    return not schema.HasField("pricing")


def test_a_plain_completion_model_has_no_features(
    client: mr.ModelRuntimeClient, upstream: FakeUpstream
) -> None:
    schema = client.get_model_schema(
        PROVIDER,
        "llm",
        MODEL,
        creds(upstream, mode="completion", function_calling_type="tool_call"),
    )

    assert list(schema.features) == []
    assert schema.model_properties.mode == schema_pb2.LLM_MODE_COMPLETION
    assert schema.model_properties.context_size == 4096


def test_schemas_of_the_other_model_types(
    client: mr.ModelRuntimeClient, upstream: FakeUpstream
) -> None:
    embedding = client.get_model_schema(
        PROVIDER, "text-embedding", MODEL, creds(upstream, context_size="8192", max_chunks="32")
    )
    assert (embedding.model_properties.context_size, embedding.model_properties.max_chunks) == (
        8192,
        32,
    )
    rerank = client.get_model_schema(PROVIDER, "rerank", MODEL, creds(upstream))
    assert rerank.model_properties.context_size == 4096
    speech2text = client.get_model_schema(PROVIDER, "speech2text", MODEL, creds(upstream))
    assert "wav" in speech2text.model_properties.supported_file_extensions
    tts = client.get_model_schema(PROVIDER, "tts", MODEL, creds(upstream, voices=" nova, echo ,"))
    assert [v.mode for v in tts.model_properties.voices] == ["nova", "echo"]
    assert tts.model_properties.default_voice == "nova"
    assert tts.model_properties.audio_type == "mp3"


@pytest.mark.parametrize("value", ["lots", "0", "-5"])
def test_a_context_size_that_is_not_a_number_is_a_credential_error(
    client: mr.ModelRuntimeClient, upstream: FakeUpstream, value: str
) -> None:
    with pytest.raises(mr.InvalidCredentialsError) as caught:
        client.get_model_schema(PROVIDER, "llm", MODEL, creds(upstream, context_size=value))
    assert [v.field for v in caught.value.field_violations] == ["credentials.context_size"]


def test_a_missing_endpoint_url_is_named(client: mr.ModelRuntimeClient) -> None:
    with pytest.raises(mr.InvalidCredentialsError) as caught:
        client.invoke_llm(PROVIDER, MODEL, {"api_key": API_KEY}, "hi")
    assert [v.field for v in caught.value.field_violations] == ["credentials.endpoint_url"]


# ---- validating llm credentials ------------------------------------------------------------------


def test_validation_asks_for_one_token(
    client: mr.ModelRuntimeClient, upstream: FakeUpstream
) -> None:
    upstream.route("POST", CHAT, reply(chat_completion("p")))

    kept = client.validate_model_credentials(PROVIDER, "llm", MODEL, creds(upstream))

    body = upstream.last(CHAT).json()
    assert body == {
        "model": SERVED,
        "messages": [{"role": "user", "content": "ping"}],
        "max_tokens": 1,
    }
    assert "api_key" not in kept
    assert kept["endpoint_model_name"] == SERVED and kept["mode"] == "chat"


def test_validation_in_completion_mode(
    client: mr.ModelRuntimeClient, upstream: FakeUpstream
) -> None:
    upstream.route("POST", "/v1/completions", reply(text_completion("p")))

    client.validate_model_credentials(PROVIDER, "llm", MODEL, creds(upstream, mode="completion"))

    assert upstream.last("/v1/completions").json()["prompt"] == "ping"


def test_validation_of_a_server_that_only_streams(
    client: mr.ModelRuntimeClient, upstream: FakeUpstream
) -> None:
    upstream.route("POST", CHAT, ChatStream.text("p", "o", "n", "g").handler())

    client.validate_model_credentials(
        PROVIDER, "llm", MODEL, creds(upstream, stream_mode_auth="use")
    )

    assert upstream.last(CHAT).json()["stream"] is True


def assert_validation_failed(exc: BaseException, *phrases: str) -> None:
    assert type(exc) is mr.CredentialsValidateFailedError, repr(exc)
    assert exc.code == grpc.StatusCode.FAILED_PRECONDITION
    assert exc.reason == "CREDENTIALS_VALIDATE_FAILED"
    for phrase in phrases:
        assert phrase in exc.message, exc.message
    assert API_KEY not in str(exc)


def test_a_refused_key_says_to_check_the_key(
    client: mr.ModelRuntimeClient, upstream: FakeUpstream
) -> None:
    upstream.route(
        "POST", CHAT, error_reply(401, f"Invalid API key {API_KEY}", code="invalid_api_key")
    )

    with pytest.raises(mr.ModelRuntimeError) as caught:
        client.validate_model_credentials(PROVIDER, "llm", MODEL, creds(upstream))

    assert_validation_failed(caught.value, "HTTP 401", "check api_key")


def test_a_missing_path_says_to_try_v1(
    client: mr.ModelRuntimeClient, upstream: FakeUpstream
) -> None:
    # The server serves /v1/chat/completions; the user left /v1 out.
    credentials = {**creds(upstream), "endpoint_url": upstream.url}

    with pytest.raises(mr.ModelRuntimeError) as caught:
        client.validate_model_credentials(PROVIDER, "llm", MODEL, credentials)

    assert_validation_failed(caught.value, "HTTP 404", "end endpoint_url with /v1")


def test_a_model_the_server_does_not_serve_says_to_check_its_name(
    client: mr.ModelRuntimeClient, upstream: FakeUpstream
) -> None:
    upstream.route(
        "POST",
        CHAT,
        error_reply(404, f"The model `{SERVED}` does not exist.", shape="flat"),
    )

    with pytest.raises(mr.ModelRuntimeError) as caught:
        client.validate_model_credentials(PROVIDER, "llm", MODEL, creds(upstream))

    assert_validation_failed(caught.value, "does not exist", "check endpoint_model_name")


def test_a_wrong_mode_says_to_check_the_mode(
    client: mr.ModelRuntimeClient, upstream: FakeUpstream
) -> None:
    # A completion-only server answering the chat path with a text completion.
    upstream.route("POST", CHAT, reply(text_completion("p")))

    with pytest.raises(mr.ModelRuntimeError) as caught:
        client.validate_model_credentials(PROVIDER, "llm", MODEL, creds(upstream))

    assert_validation_failed(caught.value, "not with a chat completion", "mode")


def test_a_server_that_is_not_an_openai_api_says_so(
    client: mr.ModelRuntimeClient, upstream: FakeUpstream
) -> None:
    async def html(request: web.Request, recorded: Recorded) -> web.StreamResponse:
        return web.Response(text="<html>router login</html>", content_type="text/html")

    upstream.route("POST", CHAT, html)

    with pytest.raises(mr.ModelRuntimeError) as caught:
        client.validate_model_credentials(PROVIDER, "llm", MODEL, creds(upstream))

    assert_validation_failed(caught.value, "OpenAI-compatible API")


def test_an_unreachable_server_stays_a_connection_error(
    client: mr.ModelRuntimeClient, upstream: FakeUpstream
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    credentials = {**creds(upstream), "endpoint_url": f"http://127.0.0.1:{port}/v1"}

    with pytest.raises(mr.InvokeConnectionError) as caught:
        client.validate_model_credentials(PROVIDER, "llm", MODEL, credentials)

    assert caught.value.reason == "INVOKE_CONNECTION_ERROR"
    assert "could not connect" in caught.value.message


# ---- validating the other model types -----------------------------------------------------------


def test_embedding_validation_embeds_one_word(
    client: mr.ModelRuntimeClient, upstream: FakeUpstream
) -> None:
    upstream.route("POST", "/v1/embeddings", reply(embeddings([[0.1, 0.2]])))

    client.validate_model_credentials(PROVIDER, "text-embedding", MODEL, creds(upstream))

    assert upstream.last("/v1/embeddings").json()["input"] == ["ping"]


def test_embedding_validation_of_a_chat_model_fails(
    client: mr.ModelRuntimeClient, upstream: FakeUpstream
) -> None:
    upstream.route("POST", "/v1/embeddings", reply(embeddings([])))

    with pytest.raises(mr.ModelRuntimeError) as caught:
        client.validate_model_credentials(PROVIDER, "text-embedding", MODEL, creds(upstream))

    assert_validation_failed(caught.value, "embedding model")


def test_rerank_validation(client: mr.ModelRuntimeClient, upstream: FakeUpstream) -> None:
    answer = {
        "results": [{"index": 0, "relevance_score": 0.9}, {"index": 1, "relevance_score": 0.1}]
    }
    upstream.route("POST", "/v1/rerank", reply(answer))

    client.validate_model_credentials(PROVIDER, "rerank", MODEL, creds(upstream))

    assert len(upstream.last("/v1/rerank").json()["documents"]) == 2


def test_rerank_validation_against_a_server_without_rerank(
    client: mr.ModelRuntimeClient, upstream: FakeUpstream
) -> None:
    with pytest.raises(mr.ModelRuntimeError) as caught:
        client.validate_model_credentials(PROVIDER, "rerank", MODEL, creds(upstream))

    assert_validation_failed(caught.value, "HTTP 404", "/v1/rerank")


def test_speech2text_validation_sends_a_short_wav(
    client: mr.ModelRuntimeClient, upstream: FakeUpstream
) -> None:
    upstream.route("POST", "/v1/audio/transcriptions", reply({"text": ""}))

    client.validate_model_credentials(PROVIDER, "speech2text", MODEL, creds(upstream))

    upload = upstream.last("/v1/audio/transcriptions").form["file"]
    assert upload["filename"] == "validation.wav"
    assert upload["data"][:4] == b"RIFF"


def test_tts_validation_reads_only_the_first_audio(
    client: mr.ModelRuntimeClient, upstream: FakeUpstream
) -> None:
    async def speak(request: web.Request, recorded: Recorded) -> web.StreamResponse:
        pieces: list[Any] = [b"\xff\xfb" * 100]
        return await write_stream(request, pieces, content_type="audio/mpeg")

    upstream.route("POST", "/v1/audio/speech", speak)

    client.validate_model_credentials(PROVIDER, "tts", MODEL, creds(upstream, voices="shimmer"))

    assert upstream.last("/v1/audio/speech").json()["voice"] == "shimmer"


def test_tts_validation_with_a_refused_key(
    client: mr.ModelRuntimeClient, upstream: FakeUpstream
) -> None:
    async def refuse(request: web.Request, recorded: Recorded) -> web.StreamResponse:
        return json_response(401, {"error": {"message": "bad key", "type": "auth"}})

    upstream.route("POST", "/v1/audio/speech", refuse)

    with pytest.raises(mr.ModelRuntimeError) as caught:
        client.validate_model_credentials(PROVIDER, "tts", MODEL, creds(upstream))

    assert_validation_failed(caught.value, "bad key", "check api_key")
