"""The recorder's pretend upstream: records the call, then answers as the key asks."""

from __future__ import annotations

from security import recorded

from providers.sdk.errors import InvokeAuthorizationError, InvokeRateLimitError


def call(model_type: str, model: str, credentials: dict[str, str]) -> None:
    recorded.record(model_type, model, credentials)
    api_key = credentials.get("api_key", "")
    if api_key.startswith("bad-"):
        # Real upstreams echo what they refused; the runtime must scrub it.
        region = credentials.get("region", "")
        raise InvokeAuthorizationError(f"Incorrect API key provided: {api_key} in {region!r}")
    if api_key.startswith("crash-"):
        # A provider bug whose traceback holds the credentials.
        raise RuntimeError(f"provider bug while using {api_key} in {credentials.get('region')}")
    if api_key.startswith("busy-"):
        raise InvokeRateLimitError(f"rate limit reached for key {api_key}", retry_after=0.5)
