"""Runs provider code written synchronously (the seed's style) without blocking the event loop.

Sync methods and sync generators run on one bounded thread pool shared by all providers; the
caller's context (deadline, tracing) is copied into the worker thread. Async methods and async
generators are awaited directly.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import functools
import inspect
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")
logger = logging.getLogger(__name__)

_executor: ThreadPoolExecutor | None = None
_DEFAULT_WORKERS = 32


def configure_executor(max_workers: int) -> None:
    """Sets the size of the worker pool for sync provider code; call before serving."""
    global _executor
    if _executor is not None:
        _executor.shutdown(wait=False, cancel_futures=True)
    _executor = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="provider-sync")


def _pool() -> ThreadPoolExecutor:
    if _executor is None:
        configure_executor(_DEFAULT_WORKERS)
    assert _executor is not None
    return _executor


async def run_sync(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Runs a blocking call on the worker pool with the caller's context."""
    context = contextvars.copy_context()
    call = functools.partial(context.run, fn, *args, **kwargs)
    return await asyncio.get_running_loop().run_in_executor(_pool(), call)


async def call_maybe_async(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Calls `fn`, awaiting it if it is async and running it on the pool if it is not.

    A sync function that returns a generator (the seed's `_invoke(stream=True)` style) is
    called on the pool too; the generator it returns is stepped by `iterate`.
    """
    if inspect.iscoroutinefunction(fn) or inspect.isasyncgenfunction(fn):
        result = fn(*args, **kwargs)
        return await result if inspect.isawaitable(result) else result
    return await run_sync(fn, *args, **kwargs)


_END = object()


async def iterate(source: Iterator[T] | AsyncIterator[T]) -> AsyncGenerator[T, None]:
    """Iterates a sync or async iterator from async code.

    A sync iterator is stepped on the worker pool, one item per step, so each item is passed on
    the moment it exists. When the consumer stops early (cancelled, or an error), the source is
    closed, which raises GeneratorExit inside a provider's generator so it can release its
    upstream request.
    """
    if isinstance(source, AsyncIterator):
        try:
            async for item in source:
                yield item
        finally:
            aclose = getattr(source, "aclose", None)
            if aclose is not None:
                await aclose()
        return
    context = contextvars.copy_context()
    pool = _pool()
    step = functools.partial(context.run, next, source, _END)
    in_flight: concurrent.futures.Future[Any] | None = None
    try:
        while True:
            in_flight = pool.submit(step)
            item = await asyncio.wrap_future(in_flight)
            in_flight = None
            if item is _END:
                return
            yield item
    finally:
        close = getattr(source, "close", None)
        if close is not None:
            # The consumer stopped early. A generator cannot be closed while a step is running
            # in it, so the close waits for that step on the pool instead of here: cancellation
            # returns at once and the provider's generator sees GeneratorExit right after.
            pool.submit(_close_after, in_flight, close)


def _close_after(step: concurrent.futures.Future[Any] | None, close: Callable[[], Any]) -> None:
    if step is not None:
        concurrent.futures.wait([step])
    try:
        close()
    except Exception:
        logger.exception("closing a provider's generator failed")
