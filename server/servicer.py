"""The ModelRuntimeService servicer: convert the request, call the runtime, convert the result.

Every RPC runs inside `_call` (or `_stream`), which sets the caller's deadline for provider
code, turns every runtime error into a rich status, and opens and closes the RPC's scope with the
server's hooks (`server.observability.RpcHooks`: the log line, metrics, trace span and the
drain's record of calls in flight). Retryable upstream failures are retried until a first
message has gone out (`server.retries`). Errors raised while a stream is being produced end the
stream with that status, never with a truncated success.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Generic, TypeVar

import grpc

from modelruntime.v1 import model_runtime_service_pb2 as pb
from modelruntime.v1 import model_runtime_service_pb2_grpc as pb_grpc
from providers.sdk import ProviderRegistry, errors
from providers.sdk.deadline import current_deadline
from providers.sdk.entities import ModelType
from providers.sdk.entities.llm import LLMResultChunk
from providers.sdk.model_types import (
    AIModel,
    LargeLanguageModel,
    ModerationModel,
    RerankModel,
    Speech2TextModel,
    TextEmbeddingModel,
    TTSModel,
)
from server import convert
from server.errors import status_for
from server.observability.rpc import RpcHooks, RpcScope
from server.retries import END, Retries
from server.security.guard import Admission, CallGuard

logger = logging.getLogger("modelruntime.rpc")

T = TypeVar("T")
R = TypeVar("R")
M = TypeVar("M", bound=AIModel)


def _deadline_margin(remaining: float) -> float:
    """How long before the caller's deadline we give up on the upstream, so the caller gets our
    INVOKE_TIMEOUT status (with details) rather than the bare DEADLINE_EXCEEDED of its own timer.
    A fifth of the time left, between 20 ms and 250 ms: enough to cross a loaded event loop and
    the network, little enough not to cut a long call short."""
    return min(max(remaining * 0.2, 0.02), 0.25)


class ModelRuntimeServicer(pb_grpc.ModelRuntimeServiceServicer):
    def __init__(
        self,
        registry: ProviderRegistry,
        hooks: RpcHooks | None = None,
        guard: CallGuard | None = None,
        retries: Retries | None = None,
    ) -> None:
        self.registry = registry
        self.hooks = hooks or RpcHooks()
        self.guard = guard or CallGuard.default()
        self.retries = retries or Retries()

    # ---- schema ------------------------------------------------------------------------------

    async def ListProviders(
        self, request: pb.ListProvidersRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListProvidersResponse:
        async def run() -> pb.ListProvidersResponse:
            model_type = convert.model_type_from_pb(request.model_type, optional=True)
            return pb.ListProvidersResponse(
                providers=[
                    convert.provider_to_pb(p.schema)
                    for p in self.registry.providers
                    if model_type is None or model_type in p.schema.supported_model_types
                ]
            )

        return await self._call("ListProviders", request, context, run)

    async def ListModels(
        self, request: pb.ListModelsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListModelsResponse:
        async def run() -> pb.ListModelsResponse:
            convert.require_fields(request, "provider")
            model_type = convert.model_type_from_pb(request.model_type, optional=True)
            provider = self.registry.provider(request.provider)
            return pb.ListModelsResponse(
                models=[
                    convert.model_entity_to_pb(m)
                    for m in provider.schema.models
                    if model_type is None or m.model_type is model_type
                ]
            )

        return await self._call("ListModels", request, context, run)

    async def GetModelSchema(
        self, request: pb.GetModelSchemaRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetModelSchemaResponse:
        async def run() -> pb.GetModelSchemaResponse:
            convert.require_fields(request, "provider", "model")
            model_type = convert.required_model_type(request.model_type)
            model = self.registry.provider(request.provider).get_model_instance(model_type)
            credentials = None
            customizable = request.model not in model.predefined_models and model.is_customizable()
            if customizable and request.credentials:
                credentials = model.check_credential_form(request.model, request.credentials)
            # Without credentials an unknown name is MODEL_NOT_FOUND (with a hint), not a
            # complaint about credentials the caller never meant to send.
            schema = await model.model_schema(request.model, credentials)
            return pb.GetModelSchemaResponse(model_schema=convert.model_entity_to_pb(schema))

        return await self._call("GetModelSchema", request, context, run)

    async def ValidateProviderCredentials(
        self, request: pb.ValidateProviderCredentialsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ValidateProviderCredentialsResponse:
        async def run() -> pb.ValidateProviderCredentialsResponse:
            convert.require_fields(request, "provider")
            provider = self.registry.provider(request.provider)
            kept = await provider.validate(request.credentials)
            return pb.ValidateProviderCredentialsResponse(credentials=kept)

        return await self._call("ValidateProviderCredentials", request, context, run)

    async def ValidateModelCredentials(
        self, request: pb.ValidateModelCredentialsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ValidateModelCredentialsResponse:
        async def run() -> pb.ValidateModelCredentialsResponse:
            convert.require_fields(request, "provider", "model")
            model_type = convert.required_model_type(request.model_type)
            model = self.registry.provider(request.provider).get_model_instance(model_type)
            kept = await model.validate(request.model, request.credentials)
            return pb.ValidateModelCredentialsResponse(credentials=kept)

        return await self._call("ValidateModelCredentials", request, context, run)

    # ---- llm ---------------------------------------------------------------------------------

    async def InvokeLLM(
        self, request: pb.InvokeLLMRequest, context: grpc.aio.ServicerContext
    ) -> pb.InvokeLLMResponse:
        async def run() -> pb.InvokeLLMResponse:
            llm, args = self._llm_call(request)
            result = await llm.invoke(**args)
            return pb.InvokeLLMResponse(result=convert.result_to_pb(result))

        return await self._call("InvokeLLM", request, context, run)

    async def StreamLLM(
        self, request: pb.StreamLLMRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.StreamLLMResponse]:
        def start() -> AsyncIterator[LLMResultChunk]:
            llm, args = self._llm_call(request)
            return llm.invoke_stream(**args)

        async for message in self._stream("StreamLLM", request, context, start, _llm_message):
            yield message

    def _llm_call(
        self, request: pb.InvokeLLMRequest | pb.StreamLLMRequest
    ) -> tuple[LargeLanguageModel, dict[str, Any]]:
        convert.require_fields(request, "provider", "model", "prompt_messages")
        llm = self._model(request.provider, ModelType.LLM, LargeLanguageModel)
        return llm, {
            "model": request.model,
            "credentials": request.credentials,
            "prompt_messages": convert.prompt_messages_from_pb(request.prompt_messages),
            "model_parameters": convert.parameters_from_pb(request.model_parameters),
            "tools": convert.tools_from_pb(request.tools),
            "stop": list(request.stop) or None,
            "user": request.user or None,
        }

    async def GetLLMNumTokens(
        self, request: pb.GetLLMNumTokensRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetLLMNumTokensResponse:
        async def run() -> pb.GetLLMNumTokensResponse:
            convert.require_fields(request, "provider", "model", "prompt_messages")
            llm = self._model(request.provider, ModelType.LLM, LargeLanguageModel)
            count = await llm.count_tokens(
                request.model,
                request.credentials,
                convert.prompt_messages_from_pb(request.prompt_messages),
                convert.tools_from_pb(request.tools),
            )
            return pb.GetLLMNumTokensResponse(num_tokens=count)

        return await self._call("GetLLMNumTokens", request, context, run)

    # ---- other model types ---------------------------------------------------------------------

    async def InvokeTextEmbedding(
        self, request: pb.InvokeTextEmbeddingRequest, context: grpc.aio.ServicerContext
    ) -> pb.InvokeTextEmbeddingResponse:
        async def run() -> pb.InvokeTextEmbeddingResponse:
            convert.require_fields(request, "provider", "model", "texts")
            model = self._model(request.provider, ModelType.TEXT_EMBEDDING, TextEmbeddingModel)
            result = await model.invoke(
                request.model,
                request.credentials,
                list(request.texts),
                request.user or None,
                convert.input_type_from_pb(request.input_type),
            )
            return convert.embedding_result_to_pb(result)

        return await self._call("InvokeTextEmbedding", request, context, run)

    async def GetTextEmbeddingNumTokens(
        self, request: pb.GetTextEmbeddingNumTokensRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetTextEmbeddingNumTokensResponse:
        async def run() -> pb.GetTextEmbeddingNumTokensResponse:
            convert.require_fields(request, "provider", "model", "texts")
            model = self._model(request.provider, ModelType.TEXT_EMBEDDING, TextEmbeddingModel)
            counts = await model.count_tokens(
                request.model, request.credentials, list(request.texts)
            )
            return pb.GetTextEmbeddingNumTokensResponse(num_tokens=counts)

        return await self._call("GetTextEmbeddingNumTokens", request, context, run)

    async def InvokeRerank(
        self, request: pb.InvokeRerankRequest, context: grpc.aio.ServicerContext
    ) -> pb.InvokeRerankResponse:
        async def run() -> pb.InvokeRerankResponse:
            convert.require_fields(request, "provider", "model", "query")
            model = self._model(request.provider, ModelType.RERANK, RerankModel)
            result = await model.invoke(
                request.model,
                request.credentials,
                request.query,
                list(request.docs),
                request.score_threshold if request.HasField("score_threshold") else None,
                request.top_n if request.HasField("top_n") else None,
                request.user or None,
            )
            return convert.rerank_result_to_pb(result)

        return await self._call("InvokeRerank", request, context, run)

    async def InvokeSpeech2Text(
        self, request: pb.InvokeSpeech2TextRequest, context: grpc.aio.ServicerContext
    ) -> pb.InvokeSpeech2TextResponse:
        async def run() -> pb.InvokeSpeech2TextResponse:
            convert.require_fields(request, "provider", "model", "file")
            model = self._model(request.provider, ModelType.SPEECH2TEXT, Speech2TextModel)
            text = await model.invoke(
                request.model,
                request.credentials,
                request.file,
                request.filename,
                request.user or None,
            )
            return pb.InvokeSpeech2TextResponse(result=text)

        return await self._call("InvokeSpeech2Text", request, context, run)

    async def InvokeTTS(
        self, request: pb.InvokeTTSRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.InvokeTTSResponse]:
        async def start() -> AsyncIterator[pb.InvokeTTSResponse]:
            convert.require_fields(request, "provider", "model", "content_text")
            model = self._model(request.provider, ModelType.TTS, TTSModel)
            mime_type, audio = await model.invoke(
                request.model,
                request.credentials,
                request.content_text,
                request.voice,
                request.user or None,
            )
            first = True
            async with contextlib.aclosing(audio):  # type: ignore[type-var]
                async for piece in audio:
                    yield pb.InvokeTTSResponse(audio=piece, mime_type=mime_type if first else "")
                    first = False

        async for message in self._stream("InvokeTTS", request, context, start, _one_each):
            yield message

    async def InvokeModeration(
        self, request: pb.InvokeModerationRequest, context: grpc.aio.ServicerContext
    ) -> pb.InvokeModerationResponse:
        async def run() -> pb.InvokeModerationResponse:
            convert.require_fields(request, "provider", "model")
            model = self._model(request.provider, ModelType.MODERATION, ModerationModel)
            flagged = await model.invoke(
                request.model, request.credentials, request.text, request.user or None
            )
            return pb.InvokeModerationResponse(result=flagged)

        return await self._call("InvokeModeration", request, context, run)

    # ---- the shared frame of every RPC ---------------------------------------------------------

    def _model(self, provider: str, model_type: ModelType, kind: type[M]) -> M:
        return self.registry.model(provider, model_type, kind)

    async def _call(
        self,
        method: str,
        request: Any,
        context: grpc.aio.ServicerContext,
        run: Callable[[], Awaitable[T]],
    ) -> T:
        scope = self.hooks.begin(method, request, context)
        failure: errors.ModelRuntimeError | None = None
        response: T | None = None
        admission: Admission | None = None
        try:
            self.hooks.admit()
            # Limits, the caller's permissions, credential sets, concurrency caps.
            admission = self.guard.admit(request)
            remaining = context.time_remaining()
            _bind_deadline(remaining)
            give_up_at = _give_up_at(remaining)
            answer = self.retries.call(scope, request, admission, run, give_up_at)
            response = admission.answer(await _before_give_up(answer, give_up_at, remaining))
            return response
        except errors.ModelRuntimeError as exc:
            failure = exc
        except Exception as exc:  # a bug: report it as one, without its text (it may hold secrets)
            failure = _internal(exc, scope)
        except asyncio.CancelledError:
            failure = self.hooks.cancelled(scope)
            if failure is None:
                raise
        finally:
            if admission is not None:
                admission.close(failure)
            self.hooks.finish(scope, failure, response)
        await _abort(context, failure, scope)
        raise AssertionError("unreachable: abort raises")

    async def _stream(
        self,
        method: str,
        request: Any,
        context: grpc.aio.ServicerContext,
        start: Callable[[], AsyncIterator[T]],
        pack: Callable[[list[T]], list[R]],
    ) -> AsyncIterator[R]:
        # The upstream is read by a task of its own (`_Upstream`) while gRPC writes what has
        # arrived: whatever came in meanwhile goes out together in the next message (`pack`),
        # never waited for. The caller's deadline is one timer in that task, so it can only
        # ever cancel an upstream read, never a gRPC write. Failures before the first item are
        # retried (server/retries.py); after it they end the stream.
        scope = self.hooks.begin(method, request, context)
        failure: errors.ModelRuntimeError | None = None
        last: Any = None
        admission: Admission | None = None
        remaining = context.time_remaining()
        give_up_at = _give_up_at(remaining)
        try:
            self.hooks.admit()
            admission = self.guard.admit(request)
            _bind_deadline(remaining)
            upstream = _Upstream(
                self.retries.first(scope, request, admission, start, give_up_at),
                give_up_at,
                remaining,
            )
            try:
                while (batch := await upstream.next_batch()) is not None:
                    scope.message_sent(len(batch))
                    for message in pack(batch):
                        last = message
                        yield message
            finally:
                await upstream.close()
        except errors.ModelRuntimeError as exc:
            failure = exc
        except Exception as exc:
            failure = _internal(exc, scope)
        except asyncio.CancelledError:
            # The caller cancelled while we waited for the upstream, or the drain cut the call.
            failure = self.hooks.cancelled(scope)
            if failure is None:
                raise
        except GeneratorExit:
            # The caller cancelled while gRPC was writing our last message: gRPC then drops
            # this generator and asyncio closes it later, from another task.
            scope.cancelled = True
            raise
        finally:
            if admission is not None:
                admission.close(failure)
            # The last message carries a stream's usage.
            self.hooks.finish(scope, failure, last)
        if failure is not None:
            await _abort(context, failure, scope)


# The most items read ahead of gRPC (one message's worth): a caller that reads slowly makes the
# upstream wait instead of this process buffering its whole answer.
_MAX_BATCH = 64
# The longest the reader keeps the event loop while it reads items that need no wait for I/O
# (an upstream burst already received): a few items' worth, so the writer sends the first of
# them without waiting for the rest. Timed with perf_counter: uvloop's loop.time() is libuv's
# millisecond clock, cached for the loop's iteration, so it never moves within a burst.
_MAX_HOLD = 0.0002


class _Upstream(Generic[T]):
    """A stream's upstream side, read by a task of its own into a short buffer.

    gRPC's write of one message costs more CPU than reading and converting one upstream delta
    (the benchmark's profile: ~35 us in `sendmsg` alone per message), so while a write is under
    way the task keeps reading, and the items that arrived meanwhile leave as one message: one
    write for all the deltas an upstream sent in one burst, and still one write per delta when
    they come one at a time (latency untouched). The task also carries the deadline's single
    timer for the whole stream, instead of one timer per item."""

    __slots__ = ("_ended", "_failure", "_pending", "_room", "_task", "_wakeup")

    def __init__(
        self,
        first: Awaitable[tuple[AsyncIterator[T], Any]],
        give_up_at: float | None,
        remaining: float | None,
    ) -> None:
        self._pending: list[T] = []
        self._failure: BaseException | None = None
        self._ended = False
        self._wakeup: asyncio.Future[None] | None = None  # the writer waits for items
        self._room: asyncio.Future[None] | None = None  # the reader waits for the writer
        self._task = asyncio.create_task(self._read(first, give_up_at, remaining))

    async def next_batch(self) -> list[T] | None:
        """Everything read since the last call (waiting for at least one item); None at the
        end. Raises the upstream's failure once the items read before it have been taken."""
        if not self._pending and not self._ended:
            self._wakeup = asyncio.get_running_loop().create_future()
            try:
                await self._wakeup
            finally:
                self._wakeup = None
        if self._pending:
            batch, self._pending = self._pending, []
            if self._room is not None and not self._room.done():
                self._room.set_result(None)
            return batch
        if self._failure is not None:
            raise self._failure
        return None

    async def close(self) -> None:
        """Stops the reader (closing the upstream request) and waits until it has."""
        if not self._task.done():
            self._task.cancel()
            # wait(), not await: a cancellation of our own still reaches the caller.
            await asyncio.wait((self._task,))

    async def _read(
        self,
        first: Awaitable[tuple[AsyncIterator[T], Any]],
        give_up_at: float | None,
        remaining: float | None,
    ) -> None:
        loop = asyncio.get_running_loop()
        try:
            async with _until_deadline(give_up_at, remaining):
                items, item = await first
                async with contextlib.aclosing(items):  # type: ignore[type-var]
                    held_since = time.perf_counter()
                    while item is not END:
                        self._pending.append(item)
                        if self._wakeup is not None and not self._wakeup.done():
                            # The writer is idle: let it send this item now.
                            self._wakeup.set_result(None)
                            await asyncio.sleep(0)
                            held_since = time.perf_counter()
                        elif len(self._pending) >= _MAX_BATCH:
                            self._room = loop.create_future()
                            await self._room
                            held_since = time.perf_counter()
                        elif time.perf_counter() - held_since > _MAX_HOLD:
                            # An upstream burst already in memory is read without any
                            # wait for I/O, which would keep the writer from sending the
                            # first items until the last one is read.
                            await asyncio.sleep(0)
                            held_since = time.perf_counter()
                        item = await anext(items, END)
        except (Exception, asyncio.CancelledError) as exc:
            self._failure = exc
        finally:
            self._ended = True
            if self._wakeup is not None and not self._wakeup.done():
                self._wakeup.set_result(None)


# Chunks go together in one message up to about this much text. Small messages keep a gRPC
# write short: a large one still pending when the caller cancels fails inside grpc, which logs
# it as an ExecuteBatchError at ERROR; bursts of ordinary deltas stay far below it.
_MESSAGE_TEXT_BUDGET = 16 * 1024


def _llm_message(chunks: list[LLMResultChunk]) -> list[pb.StreamLLMResponse]:
    messages = [pb.StreamLLMResponse()]
    add = messages[0].chunks.add
    text = 0
    for chunk in chunks:
        delta = chunk.delta.message
        size = len(delta.content) + len(delta.reasoning_content) + len(delta.refusal)
        for call in delta.tool_calls:
            size += len(call.function.arguments)
        if text and text + size > _MESSAGE_TEXT_BUDGET:
            messages.append(pb.StreamLLMResponse())
            add = messages[-1].chunks.add
            text = 0
        text += size
        convert.fill_chunk_pb(add(), chunk)
    return messages


def _one_each(messages: list[T]) -> list[T]:
    return messages


async def _before_give_up(
    awaitable: Awaitable[T], give_up_at: float | None, remaining: float | None
) -> T:
    """`awaitable`'s result, or INVOKE_TIMEOUT once `give_up_at` passes."""
    if give_up_at is None:
        return await awaitable
    async with _until_deadline(give_up_at, remaining):
        return await awaitable


@contextlib.asynccontextmanager
async def _until_deadline(give_up_at: float | None, remaining: float | None) -> AsyncIterator[None]:
    """Cancels the block once the loop's clock passes `give_up_at` (the caller's deadline less a
    margin, so our status, with its details, beats the caller's own timer) and reports it as
    INVOKE_TIMEOUT. A TimeoutError the provider raised itself passes through unchanged."""
    timeout = asyncio.timeout_at(give_up_at)
    try:
        async with timeout:
            yield
    except TimeoutError:
        if not timeout.expired():
            raise
        raise _deadline_passed(remaining) from None


def _deadline_passed(remaining: float | None) -> errors.InvokeTimeoutError:
    # `remaining` is what was left when this server took the call, which is less than the
    # caller's timeout when the call waited in a queue or crossed a slow network first.
    return errors.InvokeTimeoutError(
        "the upstream did not finish before the caller's deadline "
        f"({remaining or 0:.3f}s were left when the call reached this server)"
    )


def _give_up_at(remaining: float | None) -> float | None:
    if remaining is None:
        return None
    return asyncio.get_running_loop().time() + remaining - _deadline_margin(remaining)


def _bind_deadline(remaining: float | None) -> None:
    """Tells providers (`providers.sdk.deadline`) when the caller gives up. Never reset: gRPC
    runs every RPC in its own task, so the value dies with the RPC's context, and a stream's
    generator may be closed from another task, where a reset would fail."""
    current_deadline.set(None if remaining is None else time.monotonic() + remaining)


def _internal(exc: Exception, scope: RpcScope) -> errors.InternalError:
    logger.error("internal error in %s (request %s)", scope.method, scope.request_id, exc_info=exc)
    return errors.InternalError(
        f"internal error ({type(exc).__name__}); request id {scope.request_id}",
        provider=scope.provider or None,
        model=scope.model or None,
    )


async def _abort(
    context: grpc.aio.ServicerContext, failure: errors.ModelRuntimeError | None, scope: RpcScope
) -> None:
    assert failure is not None
    failure.provider = failure.provider or scope.provider or None
    failure.model = failure.model or scope.model or None
    status = status_for(failure)
    await context.abort(status.code, status.details, status.trailing_metadata)
