"""The Python client's examples run against the real server and do what they say."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[2] / "clients" / "python" / "examples"


def run(example: str, address: str) -> str:
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / example), address],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_stream_chat_example(address: str) -> None:
    output = run("stream_chat.py", address)
    assert "Let me check." in output
    assert 'tool call: get_weather({"city":"Paris"})' in output
    assert "finish: tool_calls" in output


def test_handle_errors_example(address: str) -> None:
    output = run("handle_errors.py", address)
    assert "INVOKE_RATE_LIMIT: retrying in 0.20s" in output
    assert "INVOKE_AUTHORIZATION" in output and "sk-revoked" not in output
    assert "INVALID_PARAMETER: model_parameters.colour" in output
    assert output.count("one two three") == 3


def test_deadline_and_cancel_example(address: str) -> None:
    output = run("deadline_and_cancel.py", address)
    assert "INVOKE_TIMEOUT after the deadline" in output
    assert "cancelled after 3 chunks" in output
