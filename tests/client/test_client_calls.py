"""Every unary method, sync and async: the request the server receives and what the caller gets."""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import grpc
import pytest
from google.protobuf.message import Message

import modelruntime.client as mr
from modelruntime.v1 import llm_pb2, schema_pb2, value_pb2
from modelruntime.v1 import model_runtime_service_pb2 as pb

from ._stub import ClientTestStubServicer

CREDENTIALS = {"api_key": "fake-key"}
ANSWER = llm_pb2.LLMResult(
    model="fake-chat",
    message=llm_pb2.PromptMessage(role=llm_pb2.PROMPT_MESSAGE_ROLE_ASSISTANT, content="hello"),
    finish_reason="stop",
)


@dataclass
class Case:
    method: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    rpc: str
    response: Message
    expected_request: Message
    check: Callable[[Any], bool]

    def __str__(self) -> str:
        return self.method


CASES = [
    Case(
        "list_providers",
        ("llm",),
        {},
        "ListProviders",
        pb.ListProvidersResponse(providers=[schema_pb2.ProviderEntity(provider="fake")]),
        pb.ListProvidersRequest(model_type=schema_pb2.MODEL_TYPE_LLM),
        lambda result: [p.provider for p in result] == ["fake"],
    ),
    Case(
        "list_models",
        ("fake",),
        {"model_type": "text_embedding"},
        "ListModels",
        pb.ListModelsResponse(models=[schema_pb2.AIModelEntity(model="fake-embed")]),
        pb.ListModelsRequest(provider="fake", model_type=schema_pb2.MODEL_TYPE_TEXT_EMBEDDING),
        lambda result: [m.model for m in result] == ["fake-embed"],
    ),
    Case(
        "get_model_schema",
        ("fake", "llm", "fake-chat"),
        {},
        "GetModelSchema",
        pb.GetModelSchemaResponse(model_schema=schema_pb2.AIModelEntity(model="fake-chat")),
        pb.GetModelSchemaRequest(
            provider="fake", model_type=schema_pb2.MODEL_TYPE_LLM, model="fake-chat"
        ),
        lambda result: result.model == "fake-chat",
    ),
    Case(
        "validate_provider_credentials",
        ("fake", CREDENTIALS),
        {},
        "ValidateProviderCredentials",
        pb.ValidateProviderCredentialsResponse(credentials={"region": "eu"}),
        pb.ValidateProviderCredentialsRequest(provider="fake", credentials=CREDENTIALS),
        lambda result: result == {"region": "eu"},
    ),
    Case(
        "validate_model_credentials",
        ("fake", schema_pb2.MODEL_TYPE_TTS, "fake-tts", CREDENTIALS),
        {},
        "ValidateModelCredentials",
        pb.ValidateModelCredentialsResponse(credentials={}),
        pb.ValidateModelCredentialsRequest(
            provider="fake",
            model_type=schema_pb2.MODEL_TYPE_TTS,
            model="fake-tts",
            credentials=CREDENTIALS,
        ),
        lambda result: result == {},
    ),
    Case(
        "invoke_llm",
        ("fake", "fake-chat", CREDENTIALS, "Hi"),
        {"model_parameters": {"temperature": 0.5, "stream": False}, "stop": ["\n"], "user": "u1"},
        "InvokeLLM",
        pb.InvokeLLMResponse(result=ANSWER),
        pb.InvokeLLMRequest(
            provider="fake",
            model="fake-chat",
            credentials=CREDENTIALS,
            prompt_messages=[
                llm_pb2.PromptMessage(role=llm_pb2.PROMPT_MESSAGE_ROLE_USER, content="Hi")
            ],
            model_parameters={
                "temperature": value_pb2.ParameterValue(float_value=0.5),
                "stream": value_pb2.ParameterValue(bool_value=False),
            },
            stop=["\n"],
            user="u1",
        ),
        lambda result: result == ANSWER,
    ),
    Case(
        "get_llm_num_tokens",
        ("fake", "fake-chat", CREDENTIALS, [{"role": "system", "content": "Be brief."}]),
        {"tools": [{"name": "lookup", "parameters": {"type": "object"}}]},
        "GetLLMNumTokens",
        pb.GetLLMNumTokensResponse(num_tokens=7),
        pb.GetLLMNumTokensRequest(
            provider="fake",
            model="fake-chat",
            credentials=CREDENTIALS,
            prompt_messages=[mr.system_message("Be brief.")],
            tools=mr.to_tools([{"name": "lookup", "parameters": {"type": "object"}}]),
        ),
        lambda result: result == 7,
    ),
    Case(
        "invoke_text_embedding",
        ("fake", "fake-embed", CREDENTIALS, ["a", "b"]),
        {"input_type": "query"},
        "InvokeTextEmbedding",
        pb.InvokeTextEmbeddingResponse(model="fake-embed", embeddings=[pb.Embedding(values=[1])]),
        pb.InvokeTextEmbeddingRequest(
            provider="fake",
            model="fake-embed",
            credentials=CREDENTIALS,
            texts=["a", "b"],
            input_type=pb.EMBEDDING_INPUT_TYPE_QUERY,
        ),
        lambda result: list(result.embeddings[0].values) == [1.0],
    ),
    Case(
        "get_text_embedding_num_tokens",
        ("fake", "fake-embed", CREDENTIALS, ["a", "bb"]),
        {},
        "GetTextEmbeddingNumTokens",
        pb.GetTextEmbeddingNumTokensResponse(num_tokens=[1, 2]),
        pb.GetTextEmbeddingNumTokensRequest(
            provider="fake", model="fake-embed", credentials=CREDENTIALS, texts=["a", "bb"]
        ),
        lambda result: result == [1, 2],
    ),
    Case(
        "invoke_rerank",
        ("fake", "fake-rerank", CREDENTIALS, "q", ["d1", "d2"]),
        {"score_threshold": 0.0, "top_n": 1},
        "InvokeRerank",
        pb.InvokeRerankResponse(docs=[pb.RerankDocument(index=1, text="d2", score=0.9)]),
        pb.InvokeRerankRequest(
            provider="fake",
            model="fake-rerank",
            credentials=CREDENTIALS,
            query="q",
            docs=["d1", "d2"],
            # An explicit 0 must reach the server as set, not as "no threshold".
            score_threshold=0.0,
            top_n=1,
        ),
        lambda result: [d.index for d in result.docs] == [1],
    ),
    Case(
        "invoke_speech2text",
        ("fake", "fake-asr", CREDENTIALS, b"RIFF...."),
        {"filename": "clip.wav"},
        "InvokeSpeech2Text",
        pb.InvokeSpeech2TextResponse(result="hello there"),
        pb.InvokeSpeech2TextRequest(
            provider="fake",
            model="fake-asr",
            credentials=CREDENTIALS,
            file=b"RIFF....",
            filename="clip.wav",
        ),
        lambda result: result == "hello there",
    ),
    Case(
        "invoke_moderation",
        ("fake", "fake-mod", CREDENTIALS, "some text"),
        {"user": "u2"},
        "InvokeModeration",
        pb.InvokeModerationResponse(result=True),
        pb.InvokeModerationRequest(
            provider="fake", model="fake-mod", credentials=CREDENTIALS, text="some text", user="u2"
        ),
        lambda result: result is True,
    ),
]


def test_every_unary_rpc_has_a_case() -> None:
    service = pb.DESCRIPTOR.services_by_name["ModelRuntimeService"]
    unary = {m.name for m in service.methods if not m.server_streaming}
    assert unary == {case.rpc for case in CASES}


@pytest.mark.parametrize("case", CASES, ids=str)
def test_sync_call(case: Case, client: mr.ModelRuntimeClient, stub: ClientTestStubServicer) -> None:
    stub.responses[case.rpc] = case.response

    result = getattr(client, case.method)(*case.args, **case.kwargs)

    assert stub.requests[case.rpc] == case.expected_request
    assert case.check(result)


@pytest.mark.parametrize("case", CASES, ids=str)
async def test_async_call(
    case: Case, aclient: mr.AsyncModelRuntimeClient, stub: ClientTestStubServicer
) -> None:
    stub.responses[case.rpc] = case.response

    result = await getattr(aclient, case.method)(*case.args, **case.kwargs)

    assert stub.requests[case.rpc] == case.expected_request
    assert case.check(result)


def test_speech2text_takes_a_file_and_its_name(
    client: mr.ModelRuntimeClient, stub: ClientTestStubServicer
) -> None:
    stub.responses["InvokeSpeech2Text"] = pb.InvokeSpeech2TextResponse(result="ok")
    audio = io.BytesIO(b"ID3 fake mp3 bytes")
    audio.name = "/tmp/recordings/meeting.mp3"

    client.invoke_speech2text("fake", "fake-asr", CREDENTIALS, audio)

    request = stub.requests["InvokeSpeech2Text"]
    assert isinstance(request, pb.InvokeSpeech2TextRequest)
    assert (request.file, request.filename) == (b"ID3 fake mp3 bytes", "meeting.mp3")


def test_metadata_of_client_and_call_are_both_sent(
    stub_server: Any, stub: ClientTestStubServicer
) -> None:
    stub.responses["ListProviders"] = pb.ListProvidersResponse()
    with mr.ModelRuntimeClient(stub_server.target, metadata=[("x-team", "search")]) as client:
        client.list_providers(metadata=[("x-request-id", "r-1")])

    sent = [(k, v) for k, v in stub.metadata["ListProviders"] if k.startswith("x-")]
    assert sent == [("x-team", "search"), ("x-request-id", "r-1")]


async def test_async_metadata_of_client_and_call_are_both_sent(
    stub_server: Any, stub: ClientTestStubServicer
) -> None:
    stub.responses["ListProviders"] = pb.ListProvidersResponse()
    async with mr.AsyncModelRuntimeClient(
        stub_server.target, metadata=[("x-team", "search")]
    ) as client:
        await client.list_providers(metadata=[("x-request-id", "r-1")])

    sent = [(k, v) for k, v in stub.metadata["ListProviders"] if k.startswith("x-")]
    assert sent == [("x-team", "search"), ("x-request-id", "r-1")]


def test_client_default_timeout_applies_and_none_lifts_it(
    stub_server: Any, stub: ClientTestStubServicer
) -> None:
    stub.responses["ListProviders"] = pb.ListProvidersResponse()
    stub.hold = True
    with (
        mr.ModelRuntimeClient(stub_server.target, default_timeout=0.2) as client,
        pytest.raises(mr.InvokeTimeoutError),
    ):
        client.list_providers()
    stub.hold = False
    with mr.ModelRuntimeClient(stub_server.target, default_timeout=30) as client:
        client.list_providers()
        remaining = stub.time_remaining["ListProviders"]
        # gRPC rounds the timeout it puts on the wire up, so the server may see a bit more.
        assert remaining is not None and 25 < remaining <= 30.5
        client.list_providers(timeout=None)  # no deadline: grpc reports an infinite one
        remaining = stub.time_remaining["ListProviders"]
        assert remaining is None or remaining > 1e6


def test_from_channel_leaves_the_callers_channel_open(
    stub_server: Any, stub: ClientTestStubServicer
) -> None:
    stub.responses["ListProviders"] = pb.ListProvidersResponse()
    with grpc.insecure_channel(stub_server.target) as channel:
        with mr.ModelRuntimeClient.from_channel(channel) as client:
            client.list_providers()
        # Still usable after the client closed.
        mr.ModelRuntimeClient.from_channel(channel).list_providers()


def test_bad_values_fail_before_any_call(
    client: mr.ModelRuntimeClient, stub: ClientTestStubServicer
) -> None:
    with pytest.raises(TypeError, match="'seed'"):
        client.invoke_llm("fake", "fake-chat", CREDENTIALS, "Hi", model_parameters={"seed": None})
    with pytest.raises(TypeError, match="list of strings"):
        client.invoke_text_embedding("fake", "fake-embed", CREDENTIALS, "one text")
    with pytest.raises(ValueError, match="unknown model type"):
        client.list_models("fake", "chat")
    assert stub.requests == {}
