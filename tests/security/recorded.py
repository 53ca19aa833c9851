"""What the test-only `recorder` provider was asked to do, read by the tests.

The provider runs in the test server's thread, so it reports through this process-wide,
thread-safe record: one entry per call that reached it, with the key it was given.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass


@dataclass(frozen=True)
class Call:
    model_type: str
    model: str
    api_key: str
    region: str


_lock = threading.Lock()
_calls: list[Call] = []


def record(model_type: str, model: str, credentials: dict[str, str]) -> None:
    with _lock:
        _calls.append(
            Call(model_type, model, credentials.get("api_key", ""), credentials.get("region", ""))
        )


def calls() -> list[Call]:
    with _lock:
        return list(_calls)


def clear() -> None:
    with _lock:
        _calls.clear()
