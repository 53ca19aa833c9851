"""The caller's deadline, visible to provider code so it can bound its upstream requests.

The server sets it per call; providers read `remaining()` to choose an HTTP timeout, so an
upstream request never outlives the call that asked for it.
"""

from __future__ import annotations

import time
from contextvars import ContextVar

# Absolute time.monotonic() by which the call must be answered; None when the caller set none.
current_deadline: ContextVar[float | None] = ContextVar("current_deadline", default=None)


def remaining() -> float | None:
    """Seconds left before the caller's deadline, or None when there is no deadline."""
    deadline = current_deadline.get()
    return None if deadline is None else max(0.0, deadline - time.monotonic())
