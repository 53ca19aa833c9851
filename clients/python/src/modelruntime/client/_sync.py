"""The blocking client, on a `grpc.Channel`."""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterable, Mapping
from types import TracebackType
from typing import Any, BinaryIO, Generic, Self, TypeVar

import grpc
from google.protobuf.message import Message

from modelruntime.client import _common
from modelruntime.client._common import (
    USE_CLIENT_DEFAULT,
    CallSettings,
    ChannelOptions,
    Metadata,
    Timeout,
    translated_rpc_errors,
)
from modelruntime.client._convert import (
    EmbeddingInputTypeInput,
    ModelTypeInput,
    ParameterInput,
    PromptMessagesInput,
    ToolInput,
)
from modelruntime.v1 import llm_pb2, schema_pb2
from modelruntime.v1 import model_runtime_service_pb2 as pb
from modelruntime.v1 import model_runtime_service_pb2_grpc as pb_grpc

_T = TypeVar("_T")


def _iterate(
    call: Any, extract: Callable[[Any], Iterable[_T]], pending: Iterable[_T] = ()
) -> Generator[_T, None, None]:
    try:
        yield from pending
        with translated_rpc_errors():
            for response in call:
                yield from extract(response)
    finally:
        # Runs when the stream ends, fails, is closed, or is garbage-collected after the caller
        # stopped iterating; a no-op for a finished call. Without it the server would keep
        # generating (and the upstream keep billing) until the call's deadline.
        call.cancel()


class Stream(Generic[_T]):
    """The items of a server-streaming call, in order. Iterate it once.

    Errors, including those the server sends after some items, are raised from the iteration
    as `ModelRuntimeError`s. To stop early, leave a `with` block or call `close()`; breaking
    out of `for item in client.stream_llm(...)` also cancels the call, because the stream is
    then dropped. `cancel()` may be called from another thread (a "stop" button); the
    iterating thread then gets `CallCancelledError`.
    """

    def __init__(
        self, call: Any, extract: Callable[[Any], Iterable[_T]], pending: Iterable[_T] = ()
    ) -> None:
        self._call = call
        self._items = _iterate(call, extract, pending)

    def __iter__(self) -> Self:
        return self

    def __next__(self) -> _T:
        return next(self._items)

    def cancel(self) -> None:
        self._call.cancel()

    def close(self) -> None:
        self._items.close()
        self._call.cancel()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


class TTSStream(Stream[bytes]):
    """Synthesised audio, piece by piece; concatenate the pieces in order.

    `mime_type` (for example `audio/mpeg`) is known as soon as `invoke_tts` returns, before any
    audio is read.
    """

    def __init__(self, call: Any, first: pb.InvokeTTSResponse | None) -> None:
        self.mime_type = first.mime_type if first is not None else ""
        super().__init__(call, _common.tts_audio, _common.tts_audio(first) if first else ())


class ModelRuntimeClient:
    """A blocking client of the modelruntime service.

        with ModelRuntimeClient("localhost:50051") as client:
            for chunk in client.stream_llm("fake", "fake-chat", {"api_key": "fake-key"}, "Hi"):
                print(chunk.delta.message.content, end="")

    Every method takes keyword-only `timeout` (seconds; `None` for no deadline; left out, the
    client's `default_timeout`) and `metadata` (sent after the client's own `metadata`), and
    raises `ModelRuntimeError` subclasses for every failed call. Where a response has a single
    field, that field is returned; otherwise the response message.

    Without `credentials` the channel is plaintext, as behind a service-mesh sidecar; pass
    `grpc.ssl_channel_credentials()` for TLS. `options` are grpc channel arguments and override
    the client's defaults (a 64 MiB receive limit).

    One client (and its channel) can be shared by all threads of a process.
    """

    def __init__(
        self,
        target: str,
        *,
        credentials: grpc.ChannelCredentials | None = None,
        options: ChannelOptions = (),
        default_timeout: float | None = None,
        metadata: Metadata = (),
    ) -> None:
        merged_options = _common.channel_options(options)
        if credentials is None:
            channel = grpc.insecure_channel(target, options=merged_options)
        else:
            channel = grpc.secure_channel(target, credentials, options=merged_options)
        self._setup(channel, True, default_timeout, metadata)

    @classmethod
    def from_channel(
        cls, channel: grpc.Channel, *, default_timeout: float | None = None, metadata: Metadata = ()
    ) -> Self:
        """A client on a channel you built (interceptors, custom credentials); `close()` leaves
        the channel open, since it is yours."""
        client = cls.__new__(cls)
        client._setup(channel, False, default_timeout, metadata)
        return client

    def _setup(
        self,
        channel: grpc.Channel,
        owns_channel: bool,
        default_timeout: float | None,
        metadata: Metadata,
    ) -> None:
        self._channel = channel
        self._owns_channel = owns_channel
        self._stub = pb_grpc.ModelRuntimeServiceStub(channel)
        self._settings = CallSettings(default_timeout, metadata)

    def close(self) -> None:
        if self._owns_channel:
            self._channel.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _unary(self, method: Any, request: Message, timeout: Timeout, metadata: Metadata) -> Any:
        with translated_rpc_errors():
            return method(request, **self._settings.kwargs(timeout, metadata))

    def list_providers(
        self,
        model_type: ModelTypeInput | None = None,
        *,
        timeout: Timeout = USE_CLIENT_DEFAULT,
        metadata: Metadata = (),
    ) -> list[schema_pb2.ProviderEntity]:
        request = _common.list_providers_request(model_type)
        response: pb.ListProvidersResponse = self._unary(
            self._stub.ListProviders, request, timeout, metadata
        )
        return list(response.providers)

    def list_models(
        self,
        provider: str,
        model_type: ModelTypeInput | None = None,
        *,
        timeout: Timeout = USE_CLIENT_DEFAULT,
        metadata: Metadata = (),
    ) -> list[schema_pb2.AIModelEntity]:
        request = _common.list_models_request(provider, model_type)
        response: pb.ListModelsResponse = self._unary(
            self._stub.ListModels, request, timeout, metadata
        )
        return list(response.models)

    def get_model_schema(
        self,
        provider: str,
        model_type: ModelTypeInput,
        model: str,
        credentials: Mapping[str, str] | None = None,
        *,
        timeout: Timeout = USE_CLIENT_DEFAULT,
        metadata: Metadata = (),
    ) -> schema_pb2.AIModelEntity:
        request = _common.get_model_schema_request(provider, model_type, model, credentials)
        response: pb.GetModelSchemaResponse = self._unary(
            self._stub.GetModelSchema, request, timeout, metadata
        )
        return response.model_schema

    def validate_provider_credentials(
        self,
        provider: str,
        credentials: Mapping[str, str],
        *,
        timeout: Timeout = USE_CLIENT_DEFAULT,
        metadata: Metadata = (),
    ) -> dict[str, str]:
        """Returns the credentials as the provider keeps them (secret fields left out)."""
        request = _common.validate_provider_credentials_request(provider, credentials)
        response: pb.ValidateProviderCredentialsResponse = self._unary(
            self._stub.ValidateProviderCredentials, request, timeout, metadata
        )
        return dict(response.credentials)

    def validate_model_credentials(
        self,
        provider: str,
        model_type: ModelTypeInput,
        model: str,
        credentials: Mapping[str, str],
        *,
        timeout: Timeout = USE_CLIENT_DEFAULT,
        metadata: Metadata = (),
    ) -> dict[str, str]:
        """Returns the credentials as the provider keeps them (secret fields left out)."""
        request = _common.validate_model_credentials_request(
            provider, model_type, model, credentials
        )
        response: pb.ValidateModelCredentialsResponse = self._unary(
            self._stub.ValidateModelCredentials, request, timeout, metadata
        )
        return dict(response.credentials)

    def invoke_llm(
        self,
        provider: str,
        model: str,
        credentials: Mapping[str, str],
        prompt_messages: PromptMessagesInput,
        model_parameters: Mapping[str, ParameterInput] | None = None,
        tools: Iterable[ToolInput] | None = None,
        stop: Iterable[str] | None = None,
        user: str = "",
        *,
        timeout: Timeout = USE_CLIENT_DEFAULT,
        metadata: Metadata = (),
    ) -> llm_pb2.LLMResult:
        request = _common.llm_request(
            pb.InvokeLLMRequest,
            provider,
            model,
            credentials,
            prompt_messages,
            model_parameters,
            tools,
            stop,
            user,
        )
        response: pb.InvokeLLMResponse = self._unary(
            self._stub.InvokeLLM, request, timeout, metadata
        )
        return response.result

    def stream_llm(
        self,
        provider: str,
        model: str,
        credentials: Mapping[str, str],
        prompt_messages: PromptMessagesInput,
        model_parameters: Mapping[str, ParameterInput] | None = None,
        tools: Iterable[ToolInput] | None = None,
        stop: Iterable[str] | None = None,
        user: str = "",
        *,
        timeout: Timeout = USE_CLIENT_DEFAULT,
        metadata: Metadata = (),
    ) -> Stream[llm_pb2.LLMResultChunk]:
        """Starts the call and returns its chunks, one upstream delta each (see `Stream`).

        The deadline covers the whole stream, not each chunk.
        """
        request = _common.llm_request(
            pb.StreamLLMRequest,
            provider,
            model,
            credentials,
            prompt_messages,
            model_parameters,
            tools,
            stop,
            user,
        )
        call = self._stub.StreamLLM(request, **self._settings.kwargs(timeout, metadata))
        return Stream(call, _common.llm_chunks)

    def get_llm_num_tokens(
        self,
        provider: str,
        model: str,
        credentials: Mapping[str, str],
        prompt_messages: PromptMessagesInput,
        tools: Iterable[ToolInput] | None = None,
        *,
        timeout: Timeout = USE_CLIENT_DEFAULT,
        metadata: Metadata = (),
    ) -> int:
        request = _common.get_llm_num_tokens_request(
            provider, model, credentials, prompt_messages, tools
        )
        response: pb.GetLLMNumTokensResponse = self._unary(
            self._stub.GetLLMNumTokens, request, timeout, metadata
        )
        return response.num_tokens

    def invoke_text_embedding(
        self,
        provider: str,
        model: str,
        credentials: Mapping[str, str],
        texts: Iterable[str],
        user: str = "",
        input_type: EmbeddingInputTypeInput | None = None,
        *,
        timeout: Timeout = USE_CLIENT_DEFAULT,
        metadata: Metadata = (),
    ) -> pb.InvokeTextEmbeddingResponse:
        """`input_type` is `"document"` (the server's default) or `"query"`."""
        request = _common.invoke_text_embedding_request(
            provider, model, credentials, texts, user, input_type
        )
        response: pb.InvokeTextEmbeddingResponse = self._unary(
            self._stub.InvokeTextEmbedding, request, timeout, metadata
        )
        return response

    def get_text_embedding_num_tokens(
        self,
        provider: str,
        model: str,
        credentials: Mapping[str, str],
        texts: Iterable[str],
        *,
        timeout: Timeout = USE_CLIENT_DEFAULT,
        metadata: Metadata = (),
    ) -> list[int]:
        request = _common.get_text_embedding_num_tokens_request(provider, model, credentials, texts)
        response: pb.GetTextEmbeddingNumTokensResponse = self._unary(
            self._stub.GetTextEmbeddingNumTokens, request, timeout, metadata
        )
        return list(response.num_tokens)

    def invoke_rerank(
        self,
        provider: str,
        model: str,
        credentials: Mapping[str, str],
        query: str,
        docs: Iterable[str],
        score_threshold: float | None = None,
        top_n: int | None = None,
        user: str = "",
        *,
        timeout: Timeout = USE_CLIENT_DEFAULT,
        metadata: Metadata = (),
    ) -> pb.InvokeRerankResponse:
        request = _common.invoke_rerank_request(
            provider, model, credentials, query, docs, score_threshold, top_n, user
        )
        response: pb.InvokeRerankResponse = self._unary(
            self._stub.InvokeRerank, request, timeout, metadata
        )
        return response

    def invoke_speech2text(
        self,
        provider: str,
        model: str,
        credentials: Mapping[str, str],
        file: bytes | BinaryIO,
        filename: str = "",
        user: str = "",
        *,
        timeout: Timeout = USE_CLIENT_DEFAULT,
        metadata: Metadata = (),
    ) -> str:
        """Returns the transcript. `file` is the audio's bytes or a file opened `"rb"`, whose
        name then serves as `filename` (the upstream reads the format from its extension)."""
        request = _common.invoke_speech2text_request(
            provider, model, credentials, file, filename, user
        )
        response: pb.InvokeSpeech2TextResponse = self._unary(
            self._stub.InvokeSpeech2Text, request, timeout, metadata
        )
        return response.result

    def invoke_tts(
        self,
        provider: str,
        model: str,
        credentials: Mapping[str, str],
        content_text: str,
        voice: str = "",
        user: str = "",
        *,
        timeout: Timeout = USE_CLIENT_DEFAULT,
        metadata: Metadata = (),
    ) -> TTSStream:
        """Starts the call and waits for its first message, which carries the MIME type.

        So an error before any audio (unknown voice, refused credentials) is raised here, and
        `stream.mime_type` is known before the first piece is read, as an HTTP handler
        needs for its Content-Type.
        """
        request = _common.invoke_tts_request(
            provider, model, credentials, content_text, voice, user
        )
        call = self._stub.InvokeTTS(request, **self._settings.kwargs(timeout, metadata))
        try:
            with translated_rpc_errors():
                first: pb.InvokeTTSResponse | None = next(call, None)
        except BaseException:
            call.cancel()
            raise
        return TTSStream(call, first)

    def invoke_moderation(
        self,
        provider: str,
        model: str,
        credentials: Mapping[str, str],
        text: str,
        user: str = "",
        *,
        timeout: Timeout = USE_CLIENT_DEFAULT,
        metadata: Metadata = (),
    ) -> bool:
        """Returns True when the text was flagged."""
        request = _common.invoke_moderation_request(provider, model, credentials, text, user)
        response: pb.InvokeModerationResponse = self._unary(
            self._stub.InvokeModeration, request, timeout, metadata
        )
        return response.result
