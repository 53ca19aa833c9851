"""`workers: N`: N server processes serving one address, for the cores one event loop cannot use.

One process runs one asyncio event loop, which uses one core: the benchmark's server topped out
at one core's worth of streamed chunks while the machine's second core sat idle. With
`workers` above 1, `modelruntime serve` becomes a supervisor that starts N ordinary single
servers on the same address; gRPC binds its listeners with SO_REUSEPORT (its default on Linux),
so the kernel spreads incoming connections (not calls: a client on one connection stays on one
worker) across them. The supervisor

- picks the port once when the address asks for port 0, so every worker listens on the same one;
- writes `--ready-file` once every worker serves;
- passes SIGTERM and SIGINT on to every worker (each drains its own calls, a second signal cuts
  them), and stops the others when one exits on its own, so a process manager sees the failure;
- has its workers end with it if it is killed (PR_SET_PDEATHSIG).

Only the first worker serves the metrics endpoint (each would try to bind its port): its numbers
are that worker's own.
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType

from server.config import ServerConfig

# Set in each worker's environment: its number, and that it is a worker (serving, not supervising).
WORKER_INDEX = "MODELRUNTIME_WORKER_INDEX"
_STARTUP_TIMEOUT = 120.0
_POLL = 0.1


def supervise(
    config: ServerConfig,
    config_file: Path | None,
    provider_paths: list[Path],
    ready_file: Path | None,
) -> int:
    """Runs `config.workers` servers on `config.address` until they stop; their worst exit
    code."""
    host, _, port = config.address.rpartition(":")
    reservation = None
    if port == "0":
        reservation = _reserve_port(host)
        port = str(reservation.getsockname()[1])
    address = f"{host}:{port}"
    scratch = Path(os.environ.get("TMPDIR", "/tmp"))
    workers: list[tuple[subprocess.Popen[bytes], Path]] = []
    stopping = False

    def pass_on(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        for process, _ in workers:
            if process.poll() is None:
                process.send_signal(signum)

    signal.signal(signal.SIGTERM, pass_on)
    signal.signal(signal.SIGINT, pass_on)
    try:
        for index in range(config.workers):
            worker_ready = scratch / f"modelruntime-{os.getpid()}-worker{index}.ready"
            worker_ready.unlink(missing_ok=True)
            command = [sys.executable, "-m", "server.cli", "serve", "--address", address]
            command += ["--ready-file", str(worker_ready)]
            if config_file is not None:
                command += ["--config", str(config_file)]
            for path in provider_paths:
                command += ["--provider-path", str(path)]
            environment = {**os.environ, WORKER_INDEX: str(index)}
            process = subprocess.Popen(command, env=environment, preexec_fn=_end_with_parent)
            workers.append((process, worker_ready))
        if not _wait_ready(workers, lambda: stopping):
            pass_on(signal.SIGTERM, None)
        elif ready_file is not None:
            partial = ready_file.with_name(ready_file.name + ".partial")
            partial.write_text(f"{address}\n", encoding="utf-8")
            partial.replace(ready_file)
        if reservation is not None:
            reservation.close()
            reservation = None
        while any(process.poll() is None for process, _ in workers):
            if not stopping and any(process.poll() is not None for process, _ in workers):
                pass_on(signal.SIGTERM, None)  # one worker died: stop, do not serve lamely
            time.sleep(_POLL)
    finally:
        if reservation is not None:
            reservation.close()
        for process, worker_ready in workers:
            if process.poll() is None:
                process.kill()
                process.wait()
            worker_ready.unlink(missing_ok=True)
    codes = [process.returncode for process, _ in workers]
    return next((code for code in codes if code), 0)


def _wait_ready(
    workers: list[tuple[subprocess.Popen[bytes], Path]], stopping: Callable[[], bool]
) -> bool:
    deadline = time.monotonic() + _STARTUP_TIMEOUT
    while not all(ready.exists() for _, ready in workers):
        if any(process.poll() is not None for process, _ in workers) or time.monotonic() > deadline:
            return False
        if stopping():
            return False
        time.sleep(_POLL / 2)
    return True


def _reserve_port(host: str) -> socket.socket:
    """A port for every worker: bound here with SO_REUSEPORT and never listened on, so no
    connection lands on it while the workers bind the same port."""
    name = host.strip("[]") or "0.0.0.0"
    family, kind, proto, _, sockaddr = socket.getaddrinfo(
        name, 0, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    reservation = socket.socket(family, kind, proto)
    reservation.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    reservation.bind(sockaddr)
    return reservation


def _end_with_parent() -> None:
    """In the worker, before it runs: SIGTERM when the supervisor dies (Linux's prctl)."""
    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)
