"""Anthropic provider tests: the session's real server and Python client, and a fake Anthropic
Messages API (fake_anthropic.py) on the module's loopback upstream, scripted per test."""

from __future__ import annotations

import pytest

from ..upstream import FakeUpstream
from .fake_anthropic import TEST_KEY, FakeAnthropic


@pytest.fixture
def anthropic(upstream: FakeUpstream) -> FakeAnthropic:
    # Built after the upstream was reset for this test, so its routes survive.
    return FakeAnthropic(upstream)


@pytest.fixture
def credentials(anthropic: FakeAnthropic) -> dict[str, str]:
    return {"anthropic_api_key": TEST_KEY, "anthropic_api_url": anthropic.url}
