"""A typed Python client for the modelruntime gRPC service, blocking and asyncio.

    from modelruntime.client import ModelRuntimeClient, InvokeRateLimitError, StreamAccumulator

    credentials = {"api_key": "fake-key"}
    with ModelRuntimeClient("localhost:50051", default_timeout=60) as client:
        answer = StreamAccumulator()
        try:
            for chunk in client.stream_llm(
                "fake",
                "fake-chat",
                credentials,
                [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
                model_parameters={"temperature": 0.2, "max_tokens": 100},
            ):
                print(chunk.delta.message.content, end="", flush=True)
                answer.add(chunk)
        except InvokeRateLimitError as exc:
            print(f"rate-limited, retry in {exc.retry_after}s")
        print(answer.result().usage.total_tokens)

`AsyncModelRuntimeClient` has the same methods as coroutines (`stream_llm` returns an async
iterator). Results are the contract's messages from `modelruntime.v1`; failures are
`ModelRuntimeError` subclasses.
"""

import inspect as _inspect

from modelruntime.client._aio import AsyncModelRuntimeClient, AsyncStream, AsyncTTSStream
from modelruntime.client._common import (
    USE_CLIENT_DEFAULT,
    ChannelOptions,
    Metadata,
    Timeout,
    UseClientDefault,
)
from modelruntime.client._convert import (
    ContentInput,
    ContentPartInput,
    EmbeddingInputTypeInput,
    ModelTypeInput,
    ParameterInput,
    PromptMessageInput,
    PromptMessagesInput,
    StreamAccumulator,
    ToolCallInput,
    ToolInput,
    acollect,
    assistant_message,
    collect,
    developer_message,
    system_message,
    to_model_parameters,
    to_model_type,
    to_prompt_messages,
    to_tools,
    tool_message,
    user_message,
)
from modelruntime.client._errors import (
    ERROR_DOMAIN,
    CallCancelledError,
    CredentialSetNotFoundError,
    CredentialsValidateFailedError,
    FieldViolation,
    InternalError,
    InvalidArgumentError,
    InvalidCredentialsError,
    InvalidParameterError,
    InvalidRequestError,
    InvokeAuthorizationError,
    InvokeBadRequestError,
    InvokeConnectionError,
    InvokeError,
    InvokeQuotaExceededError,
    InvokeRateLimitError,
    InvokeServerUnavailableError,
    InvokeTimeoutError,
    LimitExceededError,
    ModelNotFoundError,
    ModelRuntimeError,
    ModelTypeNotSupportedError,
    NotFoundError,
    OverloadedError,
    PermissionDeniedError,
    ProviderNotFoundError,
    ShuttingDownError,
    UnauthenticatedError,
    UnexpectedStatusError,
    UpstreamAddressForbiddenError,
    from_rpc_error,
    reason_name,
)
from modelruntime.client._sync import ModelRuntimeClient, Stream, TTSStream

__all__ = [
    "ERROR_DOMAIN",
    "USE_CLIENT_DEFAULT",
    "AsyncModelRuntimeClient",
    "AsyncStream",
    "AsyncTTSStream",
    "CallCancelledError",
    "ChannelOptions",
    "ContentInput",
    "ContentPartInput",
    "CredentialSetNotFoundError",
    "CredentialsValidateFailedError",
    "EmbeddingInputTypeInput",
    "FieldViolation",
    "InternalError",
    "InvalidArgumentError",
    "InvalidCredentialsError",
    "InvalidParameterError",
    "InvalidRequestError",
    "InvokeAuthorizationError",
    "InvokeBadRequestError",
    "InvokeConnectionError",
    "InvokeError",
    "InvokeQuotaExceededError",
    "InvokeRateLimitError",
    "InvokeServerUnavailableError",
    "InvokeTimeoutError",
    "LimitExceededError",
    "Metadata",
    "ModelNotFoundError",
    "ModelRuntimeClient",
    "ModelRuntimeError",
    "ModelTypeInput",
    "ModelTypeNotSupportedError",
    "NotFoundError",
    "OverloadedError",
    "ParameterInput",
    "PermissionDeniedError",
    "PromptMessageInput",
    "PromptMessagesInput",
    "ProviderNotFoundError",
    "ShuttingDownError",
    "Stream",
    "StreamAccumulator",
    "TTSStream",
    "Timeout",
    "ToolCallInput",
    "ToolInput",
    "UnauthenticatedError",
    "UnexpectedStatusError",
    "UpstreamAddressForbiddenError",
    "UseClientDefault",
    "acollect",
    "assistant_message",
    "collect",
    "developer_message",
    "from_rpc_error",
    "reason_name",
    "system_message",
    "to_model_parameters",
    "to_model_type",
    "to_prompt_messages",
    "to_tools",
    "tool_message",
    "user_message",
]

# Show the public path in reprs and tracebacks, and pickle by it, as httpx does.
for _obj in list(globals().values()):
    if (isinstance(_obj, type) or _inspect.isfunction(_obj)) and _obj.__module__.startswith(
        f"{__name__}._"
    ):
        _obj.__module__ = __name__
del _obj
