"""Everything the sync and async clients share: call options, request building, error mapping.

The clients differ only in how they send a request and read the answer.
"""

from __future__ import annotations

import contextlib
import enum
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import BinaryIO, Final, TypeAlias, TypeVar

import grpc

from modelruntime.client._convert import (
    EmbeddingInputTypeInput,
    ModelTypeInput,
    ParameterInput,
    PromptMessagesInput,
    ToolInput,
    _to_embedding_input_type,
    to_model_parameters,
    to_model_type,
    to_prompt_messages,
    to_tools,
)
from modelruntime.client._errors import from_rpc_error
from modelruntime.v1 import llm_pb2, schema_pb2
from modelruntime.v1 import model_runtime_service_pb2 as pb

Metadata: TypeAlias = Sequence[tuple[str, str | bytes]]
ChannelOptions: TypeAlias = Sequence[tuple[str, str | int | bool]]


class UseClientDefault(enum.Enum):
    """Type of `USE_CLIENT_DEFAULT`: a per-call timeout left out takes the client's default.

    `None` cannot serve as "left out", because `timeout=None` means "no deadline".
    """

    USE_CLIENT_DEFAULT = "USE_CLIENT_DEFAULT"

    def __repr__(self) -> str:
        return "USE_CLIENT_DEFAULT"


USE_CLIENT_DEFAULT: Final = UseClientDefault.USE_CLIENT_DEFAULT
Timeout: TypeAlias = float | UseClientDefault | None

# grpc's 4 MiB default is too small for the answers of this service: 2,000 embeddings of 3,072
# floats are 24 MiB. Options given to the client override these by name.
DEFAULT_CHANNEL_OPTIONS: Final[ChannelOptions] = (
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
)


def channel_options(options: ChannelOptions) -> list[tuple[str, str | int | bool]]:
    given = {name for name, _ in options}
    return [option for option in DEFAULT_CHANNEL_OPTIONS if option[0] not in given] + list(options)


class CallSettings:
    """The client's defaults, merged into each call's keyword arguments."""

    def __init__(self, default_timeout: float | None, metadata: Metadata) -> None:
        self.default_timeout = default_timeout
        self.metadata = tuple(metadata)

    def kwargs(self, timeout: Timeout, metadata: Metadata) -> dict[str, object]:
        merged = (*self.metadata, *metadata)
        return {
            "timeout": self.default_timeout if timeout is USE_CLIENT_DEFAULT else timeout,
            "metadata": merged or None,
        }


@contextlib.contextmanager
def translated_rpc_errors() -> Iterator[None]:
    """Raises every `grpc.RpcError` in the block as its `ModelRuntimeError`, `from` the original.

    Used around unary calls and around the iteration of streams, where errors can arrive after
    the first message; a plain `with` works inside async code as well.
    """
    try:
        yield
    except grpc.RpcError as exc:
        raise from_rpc_error(exc) from exc


def llm_chunks(response: pb.StreamLLMResponse) -> Sequence[llm_pb2.LLMResultChunk]:
    # One message may carry several chunks; callers see them one by one, in order.
    return response.chunks


def tts_audio(response: pb.InvokeTTSResponse) -> tuple[bytes, ...]:
    # Messages without audio (a first one with only the MIME type) yield nothing.
    return (response.audio,) if response.audio else ()


def audio_bytes(file: bytes | BinaryIO, filename: str) -> tuple[bytes, str]:
    if isinstance(file, bytes | bytearray | memoryview):
        return bytes(file), filename
    data = file.read()
    if not isinstance(data, bytes):
        raise TypeError("file must be bytes or a file opened in binary mode ('rb')")
    name = getattr(file, "name", None)
    if not filename and isinstance(name, str):
        # The server tells the format from the extension.
        filename = os.path.basename(name)
    return data, filename


def _model_type_filter(model_type: ModelTypeInput | None) -> schema_pb2.ModelType.ValueType:
    if model_type is None:
        return schema_pb2.MODEL_TYPE_UNSPECIFIED  # the contract's "all types"
    return to_model_type(model_type)


def list_providers_request(model_type: ModelTypeInput | None) -> pb.ListProvidersRequest:
    return pb.ListProvidersRequest(model_type=_model_type_filter(model_type))


def list_models_request(provider: str, model_type: ModelTypeInput | None) -> pb.ListModelsRequest:
    return pb.ListModelsRequest(
        provider=provider,
        model_type=_model_type_filter(model_type),
    )


def get_model_schema_request(
    provider: str,
    model_type: ModelTypeInput,
    model: str,
    credentials: Mapping[str, str] | None,
) -> pb.GetModelSchemaRequest:
    return pb.GetModelSchemaRequest(
        provider=provider,
        model_type=to_model_type(model_type),
        model=model,
        credentials=credentials,
    )


def validate_provider_credentials_request(
    provider: str, credentials: Mapping[str, str]
) -> pb.ValidateProviderCredentialsRequest:
    return pb.ValidateProviderCredentialsRequest(provider=provider, credentials=credentials)


def validate_model_credentials_request(
    provider: str, model_type: ModelTypeInput, model: str, credentials: Mapping[str, str]
) -> pb.ValidateModelCredentialsRequest:
    return pb.ValidateModelCredentialsRequest(
        provider=provider,
        model_type=to_model_type(model_type),
        model=model,
        credentials=credentials,
    )


# The contract gives both LLM requests the same fields, so one converter builds either.
LLMRequest = TypeVar("LLMRequest", pb.InvokeLLMRequest, pb.StreamLLMRequest)


def llm_request(
    request_type: type[LLMRequest],
    provider: str,
    model: str,
    credentials: Mapping[str, str],
    prompt_messages: PromptMessagesInput,
    model_parameters: Mapping[str, ParameterInput] | None,
    tools: Iterable[ToolInput] | None,
    stop: Iterable[str] | None,
    user: str,
) -> LLMRequest:
    if isinstance(stop, str):
        raise TypeError("stop must be a list of strings, not a str")
    return request_type(
        provider=provider,
        model=model,
        credentials=credentials,
        prompt_messages=to_prompt_messages(prompt_messages),
        model_parameters=to_model_parameters(model_parameters),
        tools=to_tools(tools),
        stop=stop,
        user=user,
    )


def get_llm_num_tokens_request(
    provider: str,
    model: str,
    credentials: Mapping[str, str],
    prompt_messages: PromptMessagesInput,
    tools: Iterable[ToolInput] | None,
) -> pb.GetLLMNumTokensRequest:
    return pb.GetLLMNumTokensRequest(
        provider=provider,
        model=model,
        credentials=credentials,
        prompt_messages=to_prompt_messages(prompt_messages),
        tools=to_tools(tools),
    )


def _texts(texts: Iterable[str]) -> list[str]:
    # A lone str would otherwise be embedded character by character.
    if isinstance(texts, str):
        raise TypeError("texts must be a list of strings, not a str")
    return list(texts)


def invoke_text_embedding_request(
    provider: str,
    model: str,
    credentials: Mapping[str, str],
    texts: Iterable[str],
    user: str,
    input_type: EmbeddingInputTypeInput | None,
) -> pb.InvokeTextEmbeddingRequest:
    return pb.InvokeTextEmbeddingRequest(
        provider=provider,
        model=model,
        credentials=credentials,
        texts=_texts(texts),
        user=user,
        input_type=(
            _to_embedding_input_type(input_type)
            if input_type is not None
            else pb.EMBEDDING_INPUT_TYPE_UNSPECIFIED
        ),
    )


def get_text_embedding_num_tokens_request(
    provider: str, model: str, credentials: Mapping[str, str], texts: Iterable[str]
) -> pb.GetTextEmbeddingNumTokensRequest:
    return pb.GetTextEmbeddingNumTokensRequest(
        provider=provider, model=model, credentials=credentials, texts=_texts(texts)
    )


def invoke_rerank_request(
    provider: str,
    model: str,
    credentials: Mapping[str, str],
    query: str,
    docs: Iterable[str],
    score_threshold: float | None,
    top_n: int | None,
    user: str,
) -> pb.InvokeRerankRequest:
    if isinstance(docs, str):
        raise TypeError("docs must be a list of strings, not a str")
    return pb.InvokeRerankRequest(
        provider=provider,
        model=model,
        credentials=credentials,
        query=query,
        docs=docs,
        score_threshold=score_threshold,
        top_n=top_n,
        user=user,
    )


def invoke_speech2text_request(
    provider: str,
    model: str,
    credentials: Mapping[str, str],
    file: bytes | BinaryIO,
    filename: str,
    user: str,
) -> pb.InvokeSpeech2TextRequest:
    data, filename = audio_bytes(file, filename)
    return pb.InvokeSpeech2TextRequest(
        provider=provider,
        model=model,
        credentials=credentials,
        file=data,
        filename=filename,
        user=user,
    )


def invoke_tts_request(
    provider: str,
    model: str,
    credentials: Mapping[str, str],
    content_text: str,
    voice: str,
    user: str,
) -> pb.InvokeTTSRequest:
    return pb.InvokeTTSRequest(
        provider=provider,
        model=model,
        credentials=credentials,
        content_text=content_text,
        voice=voice,
        user=user,
    )


def invoke_moderation_request(
    provider: str, model: str, credentials: Mapping[str, str], text: str, user: str
) -> pb.InvokeModerationRequest:
    return pb.InvokeModerationRequest(
        provider=provider, model=model, credentials=credentials, text=text, user=user
    )
