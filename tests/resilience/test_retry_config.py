"""The `retries:` config (modest, safe defaults; per-provider overrides over them; mistakes
caught at start naming the key) and the backoff's arithmetic."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from conftest import ServerThread

from providers.sdk.errors import (
    InvokeAuthorizationError,
    InvokeBadRequestError,
    InvokeConnectionError,
    InvokeQuotaExceededError,
    InvokeRateLimitError,
    InvokeServerUnavailableError,
    InvokeTimeoutError,
)
from providers.sdk.retry import RetryBudget, RetryPolicy, backoff, retryable
from server.config import ConfigError, ServerConfig, load_config

from .conftest import retry_config


def test_the_defaults_are_two_quick_retries_and_short_waits_only() -> None:
    assert ServerConfig().retries.policy() == RetryPolicy(
        max_attempts=3, base_delay=0.2, max_delay=2.0, max_retry_after=1.0
    )


def test_a_provider_override_changes_only_what_it_names(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(
        "retries:\n"
        "  base_delay_seconds: 0.5\n"
        "  providers:\n"
        "    openai: {max_attempts: 5, max_retry_after_seconds: 10}\n"
        "    anthropic: {max_attempts: 1}\n"
    )

    retries = load_config(path, environ={}).retries

    assert retries.policy("openai") == RetryPolicy(5, 0.5, 2.0, 10.0)
    assert retries.policy("anthropic") == RetryPolicy(1, 0.5, 2.0, 1.0)
    assert retries.policy("xinference") == RetryPolicy(3, 0.5, 2.0, 1.0)


@pytest.mark.parametrize(
    ("yaml_text", "named"),
    [
        ("retries: {max_attempts: 0}", "retries.max_attempts"),
        ("retries: {max_attempts: 11}", "retries.max_attempts"),
        ("retries: {base_delay_seconds: -1}", "retries.base_delay_seconds"),
        ("retries: {providers: {openai: {max_attempts: 0}}}", "retries.providers.openai"),
        ("retries: {max_retries: 2}", "retries.max_retries"),
    ],
)
def test_a_mistake_is_caught_at_load_naming_the_key(
    tmp_path: Path, yaml_text: str, named: str
) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(yaml_text)

    with pytest.raises(ConfigError, match=named.replace(".", r"\.")):
        load_config(path, environ={})


def test_an_override_for_a_provider_that_is_not_loaded_stops_the_start() -> None:
    config = retry_config(retries={"providers": {"opnai": {"max_attempts": 5}}})

    with pytest.raises(ConfigError, match=r"retries\.providers: opnai not loaded"):
        ServerThread(config).start()


# ---- the arithmetic ----------------------------------------------------------------------------


def test_backoff_is_full_jitter_under_a_doubling_ceiling() -> None:
    policy = RetryPolicy(max_attempts=10, base_delay=0.2, max_delay=1.0)
    rng = random.Random(4)
    for retry, ceiling in [(1, 0.2), (2, 0.4), (3, 0.8), (4, 1.0), (9, 1.0)]:
        waits = [backoff(policy, retry, rng) for _ in range(200)]
        assert all(0 <= wait <= ceiling for wait in waits)
        # Spread over the whole range, not bunched (callers failing together part ways).
        assert min(waits) < ceiling * 0.1 and max(waits) > ceiling * 0.9


def test_what_is_worth_another_attempt() -> None:
    assert retryable(InvokeConnectionError())
    assert retryable(InvokeServerUnavailableError())
    assert retryable(InvokeRateLimitError())
    assert not retryable(InvokeQuotaExceededError())
    assert not retryable(InvokeAuthorizationError())
    assert not retryable(InvokeBadRequestError())
    assert not retryable(InvokeTimeoutError())
    lasting = InvokeConnectionError("the TLS handshake with the upstream failed")
    lasting.retryable = False
    assert not retryable(lasting)


def test_the_budget_honours_retry_after_the_cap_the_deadline_and_a_providers_cap() -> None:
    policy = RetryPolicy(max_attempts=3, base_delay=0.1, max_delay=0.1, max_retry_after=1.0)
    limited = InvokeRateLimitError(retry_after=0.8)

    assert RetryBudget(policy).next_delay(limited, time_left=None) == 0.8
    assert RetryBudget(policy).next_delay(limited, time_left=1.5) is None  # over half of it
    assert RetryBudget(policy).next_delay(InvokeRateLimitError(retry_after=2.0), None) is None
    # Another key is not bound by the busy key's Retry-After.
    delay = RetryBudget(policy).next_delay(
        InvokeRateLimitError(retry_after=2.0), None, same_key=False
    )
    assert delay is not None and delay <= 0.1

    budget = RetryBudget(policy)
    assert budget.next_delay(InvokeConnectionError(), None) is not None
    assert budget.next_delay(InvokeConnectionError(), None) is not None
    assert budget.next_delay(InvokeConnectionError(), None) is None  # three attempts made

    capped = RetryBudget(policy)
    capped.cap(0)
    assert capped.next_delay(InvokeConnectionError(), None) is None
