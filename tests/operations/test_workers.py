"""`workers: 2`: two server processes on one address (server/workers.py)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from modelruntime import client as mr
from server.app import SERVICE_NAME

from ._support import CALL_TIMEOUT, FAKE_CREDENTIALS

EXIT_TIMEOUT = 30.0
CHANNELS = 16


def test_two_workers_share_the_address_and_stop_together(serve_process: Any) -> None:
    server = serve_process(workers=2)
    assert server.process is not None
    workers = _children(server.process.pid)
    assert len(workers) == 2
    assert server.log().count(f"listening on {server.address} ") == 2

    with mr.ModelRuntimeClient(server.address, default_timeout=CALL_TIMEOUT) as client:
        chunks = list(
            client.stream_llm(
                "fake", "fake-chat", FAKE_CREDENTIALS, "hi", model_parameters={"reply": "a b"}
            )
        )
    assert "".join(c.delta.message.content for c in chunks) == "a b"

    # Connections, not calls, are spread by the kernel: each channel gets its own connection
    # (channels in one process otherwise share one).
    channels = [
        grpc.insecure_channel(server.address, options=[("grpc.use_local_subchannel_pool", 1)])
        for _ in range(CHANNELS)
    ]
    try:
        for channel in channels:
            answer = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=SERVICE_NAME), timeout=CALL_TIMEOUT
            )
            assert answer.status == health_pb2.HealthCheckResponse.SERVING
        port = int(server.address.rpartition(":")[2])
        served = [_connections_to(port, worker) for worker in workers]
        assert sum(served) == CHANNELS
        assert all(count > 0 for count in served), served
    finally:
        for channel in channels:
            channel.close()

    server.terminate()
    assert server.wait(EXIT_TIMEOUT) == 0
    assert server.log().count("stopped") == 2
    assert not [pid for pid in workers if Path(f"/proc/{pid}").exists()]


def test_workers_end_when_their_supervisor_is_killed(serve_process: Any) -> None:
    server = serve_process(workers=2)
    assert server.process is not None
    workers = _children(server.process.pid)
    assert len(workers) == 2

    server.process.send_signal(signal.SIGKILL)
    server.wait(EXIT_TIMEOUT)
    deadline = time.monotonic() + EXIT_TIMEOUT
    while [pid for pid in workers if _running(pid)] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [pid for pid in workers if _running(pid)]


def _children(pid: int) -> list[int]:
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(child) for child in children]


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"  # a zombie of the killed supervisor is not running


def _connections_to(port: int, pid: int) -> int:
    """Established TCP connections on `port` among process `pid`'s sockets."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except FileNotFoundError:
            continue
        for line in lines:
            fields = line.split()
            local_port = int(fields[1].rpartition(":")[2], 16)
            if local_port == port and fields[3] == "01" and fields[9] in inodes:
                count += 1
    return count
