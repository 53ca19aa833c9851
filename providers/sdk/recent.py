"""What was recently worked out from a call's credentials, kept so the next call with the same
credentials skips the work.

Every call carries its credentials, and the runtime checks them against the credential form and,
for customizable models, builds the model's schema from them (a provider may even ask its server
for it). Callers send the same credentials call after call, so both are kept here, keyed by a
digest of the model and the credentials (the cache never holds a secret as a key), bounded in
number and, where the answer may change upstream, in age.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from collections.abc import Mapping
from typing import Generic, TypeVar

T = TypeVar("T")

__all__ = ["Recent", "credentials_key"]


def credentials_key(model: str, credentials: Mapping[str, str]) -> bytes:
    """A digest naming `model` with exactly these credentials."""
    canonical = repr((model, sorted(credentials.items())))
    return hashlib.blake2b(canonical.encode("utf-8", "surrogatepass"), digest_size=20).digest()


class Recent(Generic[T]):
    """At most `size` entries, least recently used dropped first, each for `max_age` seconds
    (None: as long as there is room)."""

    def __init__(self, size: int, max_age: float | None = None) -> None:
        self._size = size
        self._max_age = max_age
        self._entries: OrderedDict[bytes, tuple[float, T]] = OrderedDict()

    def get(self, key: bytes) -> T | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        stored_at, value = entry
        if self._max_age is not None and time.monotonic() - stored_at > self._max_age:
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return value

    def put(self, key: bytes, value: T) -> None:
        self._entries[key] = (time.monotonic(), value)
        self._entries.move_to_end(key)
        while len(self._entries) > self._size:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        self._entries.clear()
