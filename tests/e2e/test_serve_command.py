"""`modelruntime serve` as a real process: it serves, answers health checks, streams, and exits
cleanly on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from modelruntime.client import ModelRuntimeClient

from ._support import CREDS


def wait_for(path: Path, process: subprocess.Popen[bytes], timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            return path.read_text().strip()
        assert process.poll() is None, "the server exited before it was ready"
        time.sleep(0.05)
    raise TimeoutError(f"no ready file after {timeout} s")


def test_serve_starts_streams_and_stops_on_sigterm(tmp_path: Path) -> None:
    ready = tmp_path / "ready"
    env = {**os.environ, "MODELRUNTIME_LOG_LEVEL": "WARNING"}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "server.cli",
            "serve",
            "--address",
            "127.0.0.1:0",
            "--ready-file",
            str(ready),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        address = wait_for(ready, process, timeout=30)
        with grpc.insecure_channel(address) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            answer = health.Check(health_pb2.HealthCheckRequest(service=""), timeout=5)
            assert answer.status == health_pb2.HealthCheckResponse.SERVING
        with ModelRuntimeClient(address, default_timeout=10) as client:
            chunks = list(
                client.stream_llm("fake", "fake-chat", CREDS, "one two three", model_parameters={})
            )
        assert "".join(c.delta.message.content for c in chunks) == "one two three"
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=5)
    assert process.stderr is not None
    assert b"Traceback" not in process.stderr.read()
