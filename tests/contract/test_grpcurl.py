"""A real third-party client: grpcurl lists the service through reflection and streams a chat."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

GRPCURL = Path(__file__).resolve().parents[2] / ".tools" / "bin" / "grpcurl"

pytestmark = pytest.mark.skipif(
    not GRPCURL.exists(), reason="grpcurl is not installed; `make test` installs it in .tools/bin"
)


def grpcurl(*args: str) -> str:
    result = subprocess.run(
        [str(GRPCURL), "-plaintext", "-max-time", "20", *args],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_grpcurl_lists_the_service_through_reflection(address: str) -> None:
    services = grpcurl(address, "list").split()
    assert "modelruntime.v1.ModelRuntimeService" in services
    assert "grpc.health.v1.Health" in services
    methods = grpcurl(address, "list", "modelruntime.v1.ModelRuntimeService").split()
    assert "modelruntime.v1.ModelRuntimeService.StreamLLM" in methods


def test_grpcurl_streams_a_chat(address: str) -> None:
    request = {
        "provider": "fake",
        "model": "fake-chat",
        "credentials": {"api_key": "fake-key"},
        "prompt_messages": [{"role": "PROMPT_MESSAGE_ROLE_USER", "content": "hello from grpcurl"}],
    }
    output = grpcurl(
        "-d", json.dumps(request), address, "modelruntime.v1.ModelRuntimeService/StreamLLM"
    )
    # grpcurl prints one JSON document per streamed message.
    decoder = json.JSONDecoder()
    messages, position = [], 0
    while position < len(output.rstrip()):
        message, position = decoder.raw_decode(output, position)
        messages.append(message)
        while position < len(output) and output[position].isspace():
            position += 1
    chunks = [chunk for message in messages for chunk in message["chunks"]]
    text = "".join(c["delta"]["message"].get("content", "") for c in chunks)
    assert text == "hello from grpcurl"
    # grpcurl prints the proto field names.
    assert chunks[-1]["delta"]["finish_reason"] == "stop"
    assert int(chunks[-1]["delta"]["usage"]["total_tokens"]) > 0
