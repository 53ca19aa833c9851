"""What the test-only providers report about their generators, read by the tests.

The providers run in the test server's thread (and its worker pool), so they report through
this process-wide, thread-safe record keyed by a `tag` model parameter the test chooses.
"""

from __future__ import annotations

import threading
import time

_lock = threading.Lock()
_stopped: dict[str, float] = {}
_stopped_event: dict[str, threading.Event] = {}


def _event(tag: str) -> threading.Event:
    with _lock:
        return _stopped_event.setdefault(tag, threading.Event())


def generator_stopped(tag: str) -> None:
    """Called by a provider's generator when it stops early (closed or cancelled)."""
    with _lock:
        _stopped[tag] = time.monotonic()
    _event(tag).set()


def wait_stopped(tag: str, timeout: float) -> float | None:
    """The monotonic time the generator tagged `tag` stopped, or None if not within timeout."""
    if not _event(tag).wait(timeout):
        return None
    with _lock:
        return _stopped[tag]
