"""Xinference provider tests: the session's real server and Python client against one fake
Xinference server per module (fake_xinference.py), reset before each test."""

from __future__ import annotations

import pytest

from ..upstream import FakeUpstream
from .fake_xinference import FakeXinference


@pytest.fixture
def xinference(upstream: FakeUpstream) -> FakeXinference:
    """A fake Xinference server without authentication."""
    return FakeXinference(upstream)


@pytest.fixture
def secured(upstream: FakeUpstream) -> FakeXinference:
    """A fake Xinference server that requires its API key."""
    return FakeXinference(upstream, api_key="sk-xinference-test-not-a-real-key")
