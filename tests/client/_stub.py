"""A stand-in gRPC server used only to exercise the client's plumbing and error decoding.

It is NOT the modelruntime server: it returns canned responses, records what it received, and
fails with whatever status a test asks for. End-to-end tests against the real server live
elsewhere.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from concurrent import futures
from typing import Any

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from modelruntime.client import ERROR_DOMAIN
from modelruntime.v1 import llm_pb2
from modelruntime.v1 import model_runtime_service_pb2_grpc as pb_grpc

# How long a held call may wait for the client to go away; tests wait much less than this.
HOLD_LIMIT_SECONDS = 10.0


def rich_status(
    code: grpc.StatusCode,
    message: str,
    *,
    reason: str | None = None,
    provider: str | None = None,
    model: str | None = None,
    retry_after: float | None = None,
    violations: Sequence[tuple[str, str]] = (),
) -> grpc.Status:
    """A status built the way the contract describes: google.rpc.Status + typed details."""
    details: list[any_pb2.Any] = []
    if reason is not None:
        metadata = {k: v for k, v in (("provider", provider), ("model", model)) if v is not None}
        info = error_details_pb2.ErrorInfo(reason=reason, domain=ERROR_DOMAIN, metadata=metadata)
        details.append(_pack(info))
    if retry_after is not None:
        delay = duration_pb2.Duration()
        delay.FromNanoseconds(round(retry_after * 1e9))
        details.append(_pack(error_details_pb2.RetryInfo(retry_delay=delay)))
    if violations:
        bad_request = error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(field=f, description=d)
                for f, d in violations
            ]
        )
        details.append(_pack(bad_request))
    return rpc_status.to_status(
        status_pb2.Status(code=code.value[0], message=message, details=details)
    )


def _pack(message: Message) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed


def chunk(content: str = "", **delta: Any) -> llm_pb2.LLMResultChunk:
    return llm_pb2.LLMResultChunk(
        model="fake-chat",
        delta=llm_pb2.LLMResultChunkDelta(
            message=llm_pb2.AssistantPromptMessageDelta(content=content), **delta
        ),
    )


class ClientTestStubServicer(pb_grpc.ModelRuntimeServiceServicer):
    """Answers every RPC from `responses`, or fails with `fail_with`.

    Streaming RPCs send every message of `responses[name]` first, then fail with `fail_with`
    if set, or, if `hold` is set, stay open until the client cancels or its deadline passes.
    """

    def __init__(self) -> None:
        self.responses: dict[str, Any] = {}
        self.fail_with: grpc.Status | None = None
        self.hold = False
        self.requests: dict[str, Message] = {}
        self.metadata: dict[str, tuple[tuple[str, Any], ...]] = {}
        self.time_remaining: dict[str, float | None] = {}
        # A held call has no end of its own: it ends when the client cancels it or its deadline
        # passes. Tests that hold without a deadline read this as "the server saw the cancel".
        self.held_call_ended = threading.Event()

    def _begin(self, name: str, request: Message, context: grpc.ServicerContext) -> None:
        self.requests[name] = request
        self.metadata[name] = tuple(context.invocation_metadata())
        self.time_remaining[name] = context.time_remaining()
        # Registered before any message is sent: grpc may stop running a streaming handler for
        # good once the client has cancelled, so later code could never see the end.
        if self.hold and not context.add_callback(self.held_call_ended.set):
            self.held_call_ended.set()

    def _hold(self) -> None:
        # Blocks this handler thread until grpc reports the call over (no polling, bounded).
        self.held_call_ended.wait(HOLD_LIMIT_SECONDS)

    def _unary(self, name: str, request: Message, context: grpc.ServicerContext) -> Any:
        self._begin(name, request, context)
        if self.hold:
            self._hold()
        if self.fail_with is not None:
            context.abort_with_status(self.fail_with)
        return self.responses[name]

    def _stream(self, name: str, request: Message, context: grpc.ServicerContext) -> Iterator[Any]:
        self._begin(name, request, context)
        yield from self.responses.get(name, ())
        if self.fail_with is not None:
            context.abort_with_status(self.fail_with)
        if self.hold:
            self._hold()

    def ListProviders(self, request: Any, context: Any) -> Any:
        return self._unary("ListProviders", request, context)

    def ListModels(self, request: Any, context: Any) -> Any:
        return self._unary("ListModels", request, context)

    def GetModelSchema(self, request: Any, context: Any) -> Any:
        return self._unary("GetModelSchema", request, context)

    def ValidateProviderCredentials(self, request: Any, context: Any) -> Any:
        return self._unary("ValidateProviderCredentials", request, context)

    def ValidateModelCredentials(self, request: Any, context: Any) -> Any:
        return self._unary("ValidateModelCredentials", request, context)

    def InvokeLLM(self, request: Any, context: Any) -> Any:
        return self._unary("InvokeLLM", request, context)

    def StreamLLM(self, request: Any, context: Any) -> Any:
        return self._stream("StreamLLM", request, context)

    def GetLLMNumTokens(self, request: Any, context: Any) -> Any:
        return self._unary("GetLLMNumTokens", request, context)

    def InvokeTextEmbedding(self, request: Any, context: Any) -> Any:
        return self._unary("InvokeTextEmbedding", request, context)

    def GetTextEmbeddingNumTokens(self, request: Any, context: Any) -> Any:
        return self._unary("GetTextEmbeddingNumTokens", request, context)

    def InvokeRerank(self, request: Any, context: Any) -> Any:
        return self._unary("InvokeRerank", request, context)

    def InvokeSpeech2Text(self, request: Any, context: Any) -> Any:
        return self._unary("InvokeSpeech2Text", request, context)

    def InvokeTTS(self, request: Any, context: Any) -> Any:
        return self._stream("InvokeTTS", request, context)

    def InvokeModeration(self, request: Any, context: Any) -> Any:
        return self._unary("InvokeModeration", request, context)


class StubServer:
    """A real grpc server on a loopback port, serving one `ClientTestStubServicer`."""

    def __init__(self) -> None:
        self.servicer = ClientTestStubServicer()
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
        pb_grpc.add_ModelRuntimeServiceServicer_to_server(self.servicer, self._server)
        port = self._server.add_insecure_port("127.0.0.1:0")
        self.target = f"127.0.0.1:{port}"
        self._server.start()

    def stop(self) -> None:
        self._server.stop(grace=None).wait(5)
