"""What a caller does with each kind of error: retry after the delay the upstream asked for,
re-authenticate on an authorization failure, fix the request on a bad request.

    python handle_errors.py [ADDRESS]
"""

from __future__ import annotations

import sys
import time

from modelruntime.client import (
    InvalidArgumentError,
    InvokeAuthorizationError,
    ModelRuntimeClient,
    ModelRuntimeError,
)

MESSAGES = [{"role": "user", "content": "one two three"}]


def chat(
    client: ModelRuntimeClient, credentials: dict[str, str], parameters: dict[str, object]
) -> str:
    """One answer, retried (at most 3 times) when the error says a retry can work."""
    for attempt in range(3):
        try:
            result = client.invoke_llm("fake", "fake-chat", credentials, MESSAGES, parameters)
            return result.message.content
        except ModelRuntimeError as error:
            if not error.retryable or attempt == 2:
                raise
            delay = error.retry_after or 0.1 * 2**attempt
            print(f"{error.reason}: retrying in {delay:.2f}s")
            time.sleep(delay)
            # The fake fails on request; a real upstream would recover by itself.
            parameters = {
                k: v for k, v in parameters.items() if k not in ("fail_with", "retry_after")
            }
    raise AssertionError("unreachable")


def main(address: str) -> None:
    with ModelRuntimeClient(address, default_timeout=10) as client:
        # Rate limited: wait as long as RetryInfo says, then retry.
        print(
            chat(client, {"api_key": "fake-key"}, {"fail_with": "rate_limit", "retry_after": 0.2})
        )

        # The upstream refused the key: get a fresh one and call again (no blind retry).
        try:
            chat(client, {"api_key": "sk-revoked"}, {})
        except InvokeAuthorizationError as error:
            print(f"{error.reason}: {error.message}")
            print(chat(client, {"api_key": "fake-fresh-key"}, {}))

        # A bad request names the fields at fault: fix them, do not retry as is.
        try:
            chat(client, {"api_key": "fake-key"}, {"temperature": 3.0, "colour": "blue"})
        except InvalidArgumentError as error:
            for violation in error.field_violations:
                print(f"{error.reason}: {violation.field}: {violation.description}")
            print(chat(client, {"api_key": "fake-key"}, {"temperature": 1.0}))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:50051")
