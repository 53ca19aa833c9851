"""Retries of upstream failures, for every RPC, before anything reached the caller.

The servicer runs each unary call through `Retries.call` and fetches each stream's first message
through `Retries.first`: an attempt that fails with a retryable error
(`providers.sdk.retry.retryable`) is made again after a backoff, within the caller's deadline
and the provider's policy (`retries:` in the config). Once a stream's first message is out,
its errors pass through: a caller must never see an answer start twice.

With a credential set, each failed attempt is settled with the set before the next (a rate
limit rests its key), and the retry takes the set's next entry; when that entry is another
key, the failed key's Retry-After does not hold the retry back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

from providers.sdk import ProviderRegistry, errors
from providers.sdk.retry import RetryBudget, RetryPolicy, current_budget
from server.config import ConfigError, RetriesConfig
from server.errors import code_and_reason
from server.observability.metrics import RpcMetrics
from server.observability.rpc import RpcScope
from server.security.guard import Admission

logger = logging.getLogger("modelruntime.retries")

T = TypeVar("T")

# What `anext` returns at the end of a stream that ended before its first message.
END: Any = object()


class Retries:
    """The retry policies of the loaded providers, and the loops that apply them."""

    def __init__(
        self,
        config: RetriesConfig | None = None,
        registry: ProviderRegistry | None = None,
        metrics: RpcMetrics | None = None,
    ) -> None:
        config = config or RetriesConfig()
        if registry is not None:
            loaded = {p.name for p in registry.providers}
            unknown = sorted(set(config.providers) - loaded)
            if unknown:
                raise ConfigError(
                    f"retries.providers: {', '.join(unknown)} not loaded "
                    f"(loaded: {', '.join(sorted(loaded))})"
                )
        self._default = config.policy()
        self._policies = {name: config.policy(name) for name in config.providers}
        self._metrics = metrics

    def policy(self, provider: str) -> RetryPolicy:
        return self._policies.get(provider, self._default)

    async def call(
        self,
        scope: RpcScope,
        request: Any,
        admission: Admission,
        attempt: Callable[[], Awaitable[T]],
        give_up_at: float | None,
    ) -> T:
        """`attempt()`'s result, attempting again after each retryable failure."""
        budget = self._budget(scope)
        while True:
            try:
                return await attempt()
            except errors.ModelRuntimeError as failure:
                await self._before_retry(scope, request, admission, budget, failure, give_up_at)

    async def first(
        self,
        scope: RpcScope,
        request: Any,
        admission: Admission,
        start: Callable[[], AsyncIterator[T]],
        give_up_at: float | None,
    ) -> tuple[AsyncIterator[T], T]:
        """A stream from `start()` and its first message (`END` for an empty stream), starting
        it again after each retryable failure before that message. The caller closes the
        stream."""
        budget = self._budget(scope)
        while True:
            try:
                messages = start()
            except errors.ModelRuntimeError as failure:
                await self._before_retry(scope, request, admission, budget, failure, give_up_at)
                continue
            try:
                return messages, await anext(messages, END)
            except errors.ModelRuntimeError as failure:
                await _close(messages)
                await self._before_retry(scope, request, admission, budget, failure, give_up_at)
            except BaseException:
                await _close(messages)
                raise

    def _budget(self, scope: RpcScope) -> RetryBudget:
        budget = RetryBudget(self.policy(scope.provider))
        # Provider code may lower it (`providers.sdk.retry.cap_retries`) during an attempt.
        current_budget.set(budget)
        return budget

    async def _before_retry(
        self,
        scope: RpcScope,
        request: Any,
        admission: Admission,
        budget: RetryBudget,
        failure: errors.ModelRuntimeError,
        give_up_at: float | None,
    ) -> None:
        """Waits before the next attempt, or raises `failure` when it is the answer."""
        other_key = admission.attempt_failed(failure)
        loop = asyncio.get_running_loop()
        time_left = None if give_up_at is None else give_up_at - loop.time()
        delay = budget.next_delay(failure, time_left, same_key=not other_key)
        if delay is None:
            raise failure
        _, reason = code_and_reason(failure)
        scope.retries = budget.retries
        logger.debug(
            "%s provider=%s model=%s request_id=%s: attempt %d failed with %s (%s); "
            "retrying in %.3fs%s",
            scope.method,
            scope.provider or "-",
            scope.model or "-",
            scope.request_id,
            budget.retries,
            type(failure).__name__,
            reason,
            delay,
            " with the credential set's next key" if other_key else "",
        )
        if self._metrics is not None:
            self._metrics.retried(scope.method, scope.provider, reason)
        await asyncio.sleep(delay)
        admission.next_attempt(request)


async def _close(messages: AsyncIterator[Any]) -> None:
    aclose = getattr(messages, "aclose", None)
    if aclose is not None:
        with contextlib.suppress(Exception):
            await aclose()
