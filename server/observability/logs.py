"""Log output: the plain text line (the default) or one JSON object per line, secrets redacted.

Each RPC logs one record on `modelruntime.rpc` (see `rpc.py`); its structured fields travel in
the record's `rpc` attribute, so the JSON format prints them as fields while the text format
prints the familiar `StreamLLM provider=... outcome=...` line. Whatever the format, the text of
every record and traceback passes through `redact` on its way out: the secret credential values
of the call being served (`hold_secrets`), then anything shaped like a key or token.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterable
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, Literal

LogFormat = Literal["text", "json"]

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
REDACTED = "[REDACTED]"

_SECRET_PATTERNS = [
    # Authorization headers and bearer tokens.
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+"), rf"\1 {REDACTED}"),
    # name=value and "name": "value" pairs whose name says it is a secret (query strings,
    # form bodies, JSON, repr()s of dicts).
    (
        re.compile(
            r"(?i)([\"']?\b(?:api[_-]?key|apikey|x-api-key|access[_-]?token|auth[_-]?token|"
            r"secret(?:[_-]?key)?|password|token|key|authorization)[\"']?\s*[:=]\s*[\"']?)"
            r"(?!bearer\b|basic\b)([^\s\"'&,;}]+)"
        ),
        rf"\1{REDACTED}",
    ),
    # Vendor key shapes that may appear bare (OpenAI, Anthropic, and their look-alikes).
    (re.compile(r"\bsk-[A-Za-z0-9_-]{6,}"), f"sk-{REDACTED}"),
]


# The secret values of the call this task serves. Never reset: gRPC runs each call in its own
# task, whose context ends with it; sync provider code runs in a copy of it.
_call_secrets: ContextVar[tuple[str, ...]] = ContextVar("modelruntime_call_secrets", default=())
# Shorter values would redact ordinary words.
_MIN_SECRET = 6


def hold_secrets(values: Iterable[str]) -> None:
    """Redacts `values` from every record logged while the current call is served."""
    held = _call_secrets.get()
    new = tuple(v for v in values if len(v) >= _MIN_SECRET and v not in held)
    if new:
        _call_secrets.set(tuple(sorted(held + new, key=len, reverse=True)))


def redact(text: str) -> str:
    """`text` without the current call's secrets, and with anything that looks like a
    credential replaced by [REDACTED]."""
    for secret in _call_secrets.get():
        text = text.replace(secret, REDACTED)
    for pattern, replacement in _SECRET_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class RedactingTextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, the RPC's fields when the
    record is a per-RPC line, and the redacted traceback when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        fields = getattr(record, "rpc", None)
        if isinstance(fields, dict):
            entry.update(fields)
        if record.exc_info:
            entry["exception"] = redact(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False, default=str)


def configure_logging(level: str, log_format: LogFormat) -> None:
    """Routes every log record to stderr in `log_format` at `level`."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else RedactingTextFormatter())
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
    # httpx logs every request's URL at INFO: a second line per call, and some vendors put
    # the API key in the query string.
    for noisy in ("httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))
