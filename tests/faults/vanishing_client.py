"""A caller in a process of its own, for the test that kills it mid-stream: it streams a chat
from the server at argv[1] with the credentials in $FAULTS_CREDENTIALS (JSON) and prints one
line per chunk, so the test knows when to kill it."""

from __future__ import annotations

import json
import os
import sys

from modelruntime.client import ModelRuntimeClient


def main() -> None:
    address, provider, model = sys.argv[1:4]
    credentials = json.loads(os.environ["FAULTS_CREDENTIALS"])
    with ModelRuntimeClient(address, default_timeout=60) as client:
        for _ in client.stream_llm(provider, model, credentials, "hi"):
            print("chunk", flush=True)


if __name__ == "__main__":
    main()
