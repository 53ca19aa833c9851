"""Another attempt at an upstream call that failed before any of its answer reached the caller.

The server makes the attempts (`server/retries.py`, around every RPC); this module holds what
they are decided by, and what a provider may say about them:

- `retryable(failure)`: a connection failure, an unavailable server or a rate limit may pass;
  a spent quota, a refused request or key, a timeout or a provider bug will not.
- `RetryBudget.next_delay`: exponential backoff with full jitter (a random wait between 0 and
  `base_delay * 2**(retry - 1)`, at most `max_delay`), at least the upstream's Retry-After when
  the next attempt goes to the same upstream key, and no retry at all when that Retry-After is
  over `max_retry_after` or the wait would use more than half the time the caller has left.
- `cap_retries(n)`: a provider's own limit for the current call (Xinference's `max_retries`
  credential). It lowers the server's setting, never raises it.
"""

from __future__ import annotations

import random
from contextvars import ContextVar
from dataclasses import dataclass

from providers.sdk.errors import (
    InvokeConnectionError,
    InvokeError,
    InvokeQuotaExceededError,
    InvokeRateLimitError,
    InvokeServerUnavailableError,
    ModelRuntimeError,
)

__all__ = ["RetryBudget", "RetryPolicy", "backoff", "cap_retries", "current_budget", "retryable"]

_RETRYABLE = (InvokeConnectionError, InvokeServerUnavailableError, InvokeRateLimitError)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How one provider's calls are retried (the server config's `retries:`)."""

    # Attempts in all, the first included: 1 never retries.
    max_attempts: int = 3
    # The first retry waits up to this long, each further one up to twice as long...
    base_delay: float = 0.2
    # ...but never more than this (the upstream's Retry-After aside).
    max_delay: float = 2.0
    # An upstream asking for a longer wait gets no retry: the caller receives the error with its
    # RetryInfo and decides whether to wait.
    max_retry_after: float = 1.0


def retryable(failure: BaseException) -> bool:
    """Whether another attempt at the call that raised `failure` may succeed."""
    if not isinstance(failure, _RETRYABLE) or isinstance(failure, InvokeQuotaExceededError):
        return False
    return failure.retryable is not False


def backoff(policy: RetryPolicy, retry: int, rng: random.Random | None = None) -> float:
    """The wait before retry number `retry` (1 for the first): full jitter, so that callers
    failing together do not come back together."""
    ceiling = min(policy.max_delay, policy.base_delay * 2 ** (retry - 1))
    return (rng or _rng).uniform(0.0, ceiling)


_rng = random.Random()


class RetryBudget:
    """The retries of one call: its provider's policy, lowered by `cap_retries`."""

    __slots__ = ("_max_attempts", "policy", "retries")

    def __init__(self, policy: RetryPolicy) -> None:
        self.policy = policy
        self._max_attempts = policy.max_attempts
        self.retries = 0

    def cap(self, retries: int) -> None:
        self._max_attempts = max(1, min(self._max_attempts, retries + 1))

    def next_delay(
        self, failure: ModelRuntimeError, time_left: float | None, same_key: bool = True
    ) -> float | None:
        """Seconds to wait before the next attempt, or None when `failure` is the answer.
        `time_left`: seconds until the caller's deadline (None: it set none). `same_key`:
        False when the next attempt uses other credentials than the one that failed, whose
        Retry-After then does not apply."""
        if not retryable(failure) or self.retries + 1 >= self._max_attempts:
            return None
        delay = backoff(self.policy, self.retries + 1)
        retry_after = failure.retry_after if isinstance(failure, InvokeError) else None
        if retry_after and same_key:
            if retry_after > self.policy.max_retry_after:
                return None
            delay = max(delay, retry_after)
        # The next attempt gets at least as long as the wait before it.
        if time_left is not None and delay > time_left / 2:
            return None
        self.retries += 1
        return delay


# The current call's budget, set by the server for each RPC.
current_budget: ContextVar[RetryBudget | None] = ContextVar("current_retry_budget", default=None)


def cap_retries(retries: int) -> None:
    """Allows the current call at most `retries` retries (0: none), below the server's own
    setting. Called from provider code, for example from a `max_retries` credential."""
    budget = current_budget.get()
    if budget is not None:
        budget.cap(retries)
