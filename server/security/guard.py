"""The servicer's security hook: one `Admission` per RPC, taken before any provider code runs.

In order: the request's size, what the caller's API key may use, the request limits, the
credential set, then a slot under the concurrency caps. Anything refused raises the typed error
the servicer reports like any other, so refusals show in the RPC's log line and metrics. The
admission is closed when the RPC ends, with its failure if it failed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from providers.sdk.errors import ModelRuntimeError, UnauthenticatedError
from server.security.auth import current_caller
from server.security.config import LimitsConfig
from server.security.credential_sets import CredentialSets, Lease
from server.security.limits import ConcurrencyLimiter, RequestLimits

T = TypeVar("T")

DEFAULT_MAX_MESSAGE_BYTES = 32 * 1024 * 1024


class Admission:
    """One admitted RPC: its slot and the credential entry it uses, if any."""

    __slots__ = ("_lease", "_release")

    def __init__(self, release: Callable[[], None], lease: Lease | None) -> None:
        self._release = release
        self._lease = lease

    def answer(self, response: T) -> T:
        """The unary response as it may leave the server."""
        return response if self._lease is None else self._lease.answer(response)

    def attempt_failed(self, failure: ModelRuntimeError) -> bool:
        """Tells the credential set how an attempt went (scrubbing the set's secrets from
        `failure`). True when the failure rested the attempt's entry and another is ready, so
        a retry would go out with other credentials."""
        if self._lease is None:
            return False
        return self._lease.settle(failure) and self._lease.others_ready()

    def next_attempt(self, request: object) -> None:
        """Before a retry: the credential set's next entry goes into `request`."""
        if self._lease is not None:
            self._lease = self._lease.next(request)

    def close(self, failure: ModelRuntimeError | None) -> None:
        """Frees the slot and tells the credential set how the call went; scrubs the set's
        secrets from `failure`."""
        self._release()
        if self._lease is not None:
            self._lease.settle(failure)


class CallGuard:
    def __init__(
        self,
        limits: RequestLimits,
        concurrency: ConcurrencyLimiter,
        credential_sets: CredentialSets,
        auth_required: bool,
    ) -> None:
        self.limits = limits
        self.concurrency = concurrency
        self.credential_sets = credential_sets
        self.auth_required = auth_required

    @classmethod
    def default(cls) -> CallGuard:
        """The default limits, no credential sets, no authentication (as `make run`)."""
        config = LimitsConfig()
        return cls(
            RequestLimits(config, DEFAULT_MAX_MESSAGE_BYTES),
            ConcurrencyLimiter(config),
            CredentialSets({}, allow_inline_credentials=True),
            auth_required=False,
        )

    def admit(self, request: object) -> Admission:
        self.limits.check_size(request)
        provider: str = getattr(request, "provider", "")
        if self.auth_required:
            caller = current_caller.get()
            if caller is None:  # the interceptor did not run: fail closed
                raise UnauthenticatedError()
            caller.check(
                provider, getattr(request, "model", ""), getattr(request, "credential_set", "")
            )
        self.limits.check(request)
        lease = self.credential_sets.resolve(request)
        return Admission(self.concurrency.acquire(provider), lease)
