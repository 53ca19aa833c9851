"""Requests that break a rule are refused with INVALID_ARGUMENT and a field violation naming
exactly the field at fault; values that follow the rules (0, "", defaults) are kept as given.
"""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from modelruntime import client as mr
from modelruntime.v1 import llm_pb2, value_pb2
from modelruntime.v1 import model_runtime_service_pb2 as pb
from modelruntime.v1 import model_runtime_service_pb2_grpc as pb_grpc

from ._support import (
    CALL_TIMEOUT,
    CREDS,
    PROBE_CREDS,
    SEED_CREDS,
    assert_error,
    violation_fields,
)

IMAGE = {"type": "image", "url": "https://example.invalid/cat.png", "mime_type": "image/png"}


def refused(
    client: mr.ModelRuntimeClient,
    parameters: dict[str, mr.ParameterInput],
    *,
    model: str = "fake-chat",
    credentials: dict[str, str] = CREDS,
    prompt: mr.PromptMessagesInput = "hi",
) -> mr.ModelRuntimeError:
    with pytest.raises(mr.ModelRuntimeError) as caught:
        client.invoke_llm("fake", model, credentials, prompt, model_parameters=parameters)
    return caught.value


def assert_invalid(
    exc: mr.ModelRuntimeError,
    error: type[mr.ModelRuntimeError],
    reason: str,
    fields: list[str],
    *,
    provider: str | None = "fake",
    model: str | None = "fake-chat",
) -> None:
    assert_error(
        exc, error, grpc.StatusCode.INVALID_ARGUMENT, reason, provider=provider, model=model
    )
    assert sorted(violation_fields(exc)) == sorted(fields)
    # The status message names each field too, for callers that only log the message.
    for field in fields:
        assert field in exc.message


# ---- model parameters ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("parameters", "field", "description"),
    [
        ({"temperature": 1.5}, "temperature", "should be less than or equal to 1"),
        ({"temperature": -0.1}, "temperature", "should be greater than or equal to 0"),
        ({"temperature": 0.123}, "temperature", "should be rounded to 2 decimal places"),
        ({"max_tokens": 8193}, "max_tokens", "should be less than or equal to 8192"),
        ({"max_tokens": 0}, "max_tokens", "should be greater than or equal to 1"),
        ({"max_tokens": "ten"}, "max_tokens", "should be int, got string"),
        ({"max_tokens": 1.5}, "max_tokens", "should be int, got float"),
        ({"max_tokens": True}, "max_tokens", "should be int, got bool"),
        ({"temperature": "hot"}, "temperature", "should be float, got string"),
        ({"reply": 42}, "reply", "should be string, got int"),
        (
            {"fail_with": "explode"},
            "fail_with",
            "should be one of connection, server_unavailable, rate_limit, authorization, "
            "bad_request, timeout, quota",
        ),
        ({"response_format": "YAML"}, "response_format", "should be one of JSON, XML"),
    ],
    ids=[
        "above-max",
        "below-min",
        "too-precise",
        "int-above-max",
        "int-below-min",
        "string-for-int",
        "float-for-int",
        "bool-for-int",
        "string-for-float",
        "int-for-text",
        "not-an-option",
        "not-a-template-option",
    ],
)
def test_bad_parameter_is_named_exactly(
    client: mr.ModelRuntimeClient,
    parameters: dict[str, mr.ParameterInput],
    field: str,
    description: str,
) -> None:
    exc = refused(client, parameters)

    assert_invalid(
        exc, mr.InvalidParameterError, "INVALID_PARAMETER", [f"model_parameters.{field}"]
    )
    assert exc.field_violations[0].description == description


def test_unknown_parameter_lists_the_allowed_names(client: mr.ModelRuntimeClient) -> None:
    exc = refused(client, {"frobnicate": 1}, model="fake-basic")

    assert_invalid(
        exc,
        mr.InvalidParameterError,
        "INVALID_PARAMETER",
        ["model_parameters.frobnicate"],
        model="fake-basic",
    )
    assert exc.field_violations[0].description == (
        "unknown parameter for this model; allowed: chunk_delay_ms, max_tokens, reply, temperature"
    )


def test_several_bad_parameters_are_all_reported(client: mr.ModelRuntimeClient) -> None:
    exc = refused(
        client, {"temperature": 1.5, "max_tokens": "ten", "frobnicate": True, "top_p": 0.5}
    )

    assert_invalid(
        exc,
        mr.InvalidParameterError,
        "INVALID_PARAMETER",
        [
            "model_parameters.temperature",
            "model_parameters.max_tokens",
            "model_parameters.frobnicate",
        ],
    )


def test_missing_required_parameter(client: mr.ModelRuntimeClient) -> None:
    with pytest.raises(mr.ModelRuntimeError) as caught:
        list(client.stream_llm("async_probe", "endless", PROBE_CREDS, "hi"))

    assert_invalid(
        caught.value,
        mr.InvalidParameterError,
        "INVALID_PARAMETER",
        ["model_parameters.tag"],
        provider="async_probe",
        model="endless",
    )
    assert caught.value.field_violations[0].description == "is required"


def test_parameter_value_with_nothing_set_is_an_invalid_request(
    stub: pb_grpc.ModelRuntimeServiceStub,
) -> None:
    request = pb.InvokeLLMRequest(
        provider="fake",
        model="fake-chat",
        credentials=CREDS,
        prompt_messages=mr.to_prompt_messages("hi"),
        model_parameters={"temperature": value_pb2.ParameterValue()},
    )

    with pytest.raises(grpc.RpcError) as caught:
        stub.InvokeLLM(request, timeout=CALL_TIMEOUT)

    assert_invalid(
        mr.from_rpc_error(caught.value),
        mr.InvalidRequestError,
        "INVALID_REQUEST",
        ["model_parameters.temperature"],
    )


# ---- values that follow the rules are kept ------------------------------------------------


@pytest.mark.parametrize(
    "parameters",
    [
        {"temperature": 0.0},
        {"temperature": 0},  # an int for a float rule, as value.proto allows
        {"temperature": 1.0, "top_p": 0.0},
        {"chunk_delay_ms": 0},
        {"fail_after_chunks": 0},
        {"max_tokens": 8192},
        {"max_tokens": 1},
        {"retry_after": 0.0},
    ],
    ids=[
        "temperature-0.0",
        "temperature-int-0",
        "bounds",
        "delay-0",
        "fail-after-0",
        "max",
        "min",
        "retry-0",
    ],
)
def test_boundary_and_zero_values_are_accepted(
    client: mr.ModelRuntimeClient, parameters: dict[str, mr.ParameterInput]
) -> None:
    result = client.invoke_llm("fake", "fake-chat", CREDS, "fine", parameters)

    assert result.message.content == "fine"
    assert result.finish_reason == "stop"


def test_explicit_empty_reply_is_kept_instead_of_the_default(
    client: mr.ModelRuntimeClient,
) -> None:
    # Without `reply` the fake echoes the last user message; an explicit "" must not be
    # mistaken for "not given".
    echoed = client.invoke_llm("fake", "fake-chat", CREDS, "echo me")
    silent = client.invoke_llm("fake", "fake-chat", CREDS, "echo me", {"reply": ""})

    assert echoed.message.content == "echo me"
    assert silent.message.content == ""


def test_explicit_zero_top_n_and_threshold_are_kept(client: mr.ModelRuntimeClient) -> None:
    docs = ["apple", "pear", "apple pear"]

    none = client.invoke_rerank("fake", "fake-rerank", CREDS, "apple", docs, top_n=0)
    all_docs = client.invoke_rerank(
        "fake", "fake-rerank", CREDS, "apple", docs, score_threshold=0.0
    )

    assert list(none.docs) == []
    assert len(all_docs.docs) == 3
    assert all_docs.docs[-1].score == 0.0


def test_default_applies_to_an_optional_parameter_left_out(
    client: mr.ModelRuntimeClient,
) -> None:
    # sync-echo's `words` defaults to 5.
    chunks = list(client.stream_llm("seed_style", "sync-echo", SEED_CREDS, "hi"))

    content = [c.delta.message.content for c in chunks if c.delta.message.content]
    assert content == ["w0 ", "w1 ", "w2 ", "w3 ", "w4 "]


def test_max_tokens_default_cuts_a_long_reply(client: mr.ModelRuntimeClient) -> None:
    reply = " ".join(f"w{i}" for i in range(1100))

    result = client.invoke_llm("fake", "fake-chat", CREDS, "hi", {"reply": reply})

    # fake-chat.yaml sets max_tokens' default to 1024 (the template's is 64).
    assert result.finish_reason == "length"
    assert result.usage.completion_tokens == 1024
    assert result.message.content.split() == reply.split()[:1024]


# ---- credentials ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("credentials", "fields"),
    [
        ({}, ["credentials.api_key"]),
        ({"api_key": ""}, ["credentials.api_key"]),
        ({**CREDS, "fail_with": "explode"}, ["credentials.fail_with"]),
        ({"fail_with": "explode"}, ["credentials.api_key", "credentials.fail_with"]),
    ],
    ids=["missing-key", "empty-key", "not-an-option", "both"],
)
def test_credentials_breaking_the_form(
    client: mr.ModelRuntimeClient, credentials: dict[str, str], fields: list[str]
) -> None:
    exc = refused(client, {}, credentials=credentials)

    assert_invalid(exc, mr.InvalidCredentialsError, "INVALID_CREDENTIALS", fields)


@pytest.mark.parametrize(
    ("call", "model"),
    [
        (lambda c: c.validate_provider_credentials("fake", {}), None),
        (lambda c: c.invoke_text_embedding("fake", "fake-embedding", {}, ["x"]), "fake-embedding"),
        (lambda c: c.invoke_moderation("fake", "fake-moderation", {}, "x"), "fake-moderation"),
        (lambda c: list(c.stream_llm("seed_style", "sync-echo", {}, "x")), "sync-echo"),
    ],
    ids=["validate-provider", "embedding", "moderation", "seed-style"],
)
def test_missing_api_key_for_other_calls(
    client: mr.ModelRuntimeClient, call: Any, model: str | None
) -> None:
    with pytest.raises(mr.ModelRuntimeError) as caught:
        call(client)

    provider = "seed_style" if model == "sync-echo" else "fake"
    assert_invalid(
        caught.value,
        mr.InvalidCredentialsError,
        "INVALID_CREDENTIALS",
        ["credentials.api_key"],
        provider=provider,
        model=model,
    )


def test_credentials_are_checked_before_parameters(client: mr.ModelRuntimeClient) -> None:
    exc = refused(client, {"temperature": 5.0}, credentials={})

    assert_invalid(exc, mr.InvalidCredentialsError, "INVALID_CREDENTIALS", ["credentials.api_key"])


# ---- prompt messages and other request fields -------------------------------------------------


def test_image_content_is_refused_by_a_model_without_vision(
    client: mr.ModelRuntimeClient,
) -> None:
    prompt = [
        {"role": "system", "content": "Describe images."},
        {"role": "user", "content": ["What is this?", IMAGE]},
    ]

    exc = refused(client, {}, model="fake-basic", prompt=prompt)

    assert_invalid(
        exc,
        mr.InvalidRequestError,
        "INVALID_REQUEST",
        ["prompt_messages[1].content_parts[1]"],
        model="fake-basic",
    )
    assert "vision" in exc.field_violations[0].description


def test_image_content_is_accepted_by_a_model_with_vision(client: mr.ModelRuntimeClient) -> None:
    prompt = [{"role": "user", "content": ["What is this?", IMAGE]}]

    result = client.invoke_llm("fake", "fake-chat", CREDS, prompt)

    assert result.message.content == "What is this?"


@pytest.mark.parametrize(
    ("prompt", "field"),
    [
        ([], "prompt_messages"),
        ([llm_pb2.PromptMessage(content="no role")], "prompt_messages[0].role"),
        (
            [{"role": "user", "content": "x"}, {"role": "tool", "content": "42"}],
            "prompt_messages[1].tool_call_id",
        ),
        (
            [
                llm_pb2.PromptMessage(
                    role=llm_pb2.PROMPT_MESSAGE_ROLE_USER,
                    content="x",
                    content_parts=[llm_pb2.PromptMessageContent(text="y")],
                )
            ],
            "prompt_messages[0]",
        ),
        (
            [{"role": "user", "content": ["x", {"type": "image", "url": "https://a.invalid/i"}]}],
            "prompt_messages[0].content_parts[1].image.mime_type",
        ),
    ],
    ids=["empty", "role-unset", "tool-without-id", "content-and-parts", "media-without-mime"],
)
def test_malformed_prompt_is_an_invalid_request(
    client: mr.ModelRuntimeClient, prompt: Any, field: str
) -> None:
    exc = refused(client, {}, prompt=prompt)

    assert_invalid(exc, mr.InvalidRequestError, "INVALID_REQUEST", [field])


def test_nameless_tool_is_an_invalid_request(client: mr.ModelRuntimeClient) -> None:
    with pytest.raises(mr.ModelRuntimeError) as caught:
        client.invoke_llm("fake", "fake-chat", CREDS, "hi", tools=[{"description": "no name"}])

    assert_invalid(caught.value, mr.InvalidRequestError, "INVALID_REQUEST", ["tools[0].name"])


@pytest.mark.parametrize(
    ("model", "field", "call"),
    [
        (
            "fake-embedding",
            "texts",
            lambda c: c.invoke_text_embedding("fake", "fake-embedding", CREDS, []),
        ),
        ("fake-tts", "content_text", lambda c: c.invoke_tts("fake", "fake-tts", CREDS, "")),
        (
            "fake-tts",
            "voice",
            lambda c: c.invoke_tts("fake", "fake-tts", CREDS, "hi", voice="nova"),
        ),
        (
            "fake-rerank",
            "query",
            lambda c: c.invoke_rerank("fake", "fake-rerank", CREDS, "", ["d"]),
        ),
        (
            "fake-speech2text",
            "file",
            lambda c: c.invoke_speech2text("fake", "fake-speech2text", CREDS, b"", "a.wav"),
        ),
        (
            "fake-chat",
            "prompt_messages",
            lambda c: c.get_llm_num_tokens("fake", "fake-chat", CREDS, []),
        ),
    ],
    ids=["no-texts", "no-text-to-speak", "unknown-voice", "no-query", "empty-audio", "no-prompt"],
)
def test_empty_or_unknown_request_field_is_an_invalid_request(
    client: mr.ModelRuntimeClient, model: str, field: str, call: Any
) -> None:
    with pytest.raises(mr.ModelRuntimeError) as caught:
        call(client)

    assert_invalid(caught.value, mr.InvalidRequestError, "INVALID_REQUEST", [field], model=model)


@pytest.mark.parametrize(
    ("method", "request_message", "field", "target"),
    [
        ("ListProviders", pb.ListProvidersRequest(model_type=99), "model_type", (None, None)),
        ("ListModels", pb.ListModelsRequest(), "provider", (None, None)),
        (
            "GetModelSchema",
            pb.GetModelSchemaRequest(provider="fake", model="fake-chat"),
            "model_type",
            ("fake", "fake-chat"),
        ),
        (
            "InvokeTextEmbedding",
            pb.InvokeTextEmbeddingRequest(
                provider="fake",
                model="fake-embedding",
                credentials=CREDS,
                texts=["x"],
                input_type=99,  # type: ignore[arg-type]
            ),
            "input_type",
            ("fake", "fake-embedding"),
        ),
    ],
    ids=["unknown-model-type", "no-provider", "unset-model-type", "unknown-input-type"],
)
def test_malformed_enum_or_missing_name_is_an_invalid_request(
    stub: pb_grpc.ModelRuntimeServiceStub,
    method: str,
    request_message: Any,
    field: str,
    target: tuple[str | None, str | None],
) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        getattr(stub, method)(request_message, timeout=CALL_TIMEOUT)

    provider, model = target
    assert_invalid(
        mr.from_rpc_error(caught.value),
        mr.InvalidRequestError,
        "INVALID_REQUEST",
        [field],
        provider=provider,
        model=model,
    )
