"""What the operations tests share: servers of their own (see conftest.py), configs, clients."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Coroutine
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

import yaml

from server.app import RunningServer

T = TypeVar("T")

REPO = Path(__file__).resolve().parents[2]
OPS_PROVIDERS = [REPO / "providers" / "fake", Path(__file__).parent / "upstream_providers"]
FAKE_CREDENTIALS = {"api_key": "fake-ops-key"}
# Generous: two cores shared with other test runs.
STARTUP_TIMEOUT = 60.0
CALL_TIMEOUT = 20.0


def ops_config(**settings: Any) -> dict[str, Any]:
    """A server config (as YAML data) that loads only the operations tests' providers."""
    return {
        "address": "127.0.0.1:0",
        "include_builtin_providers": False,
        "provider_paths": [str(p) for p in OPS_PROVIDERS],
        "sync_workers": 8,
        **settings,
    }


class ServeProcess:
    """`modelruntime serve` as a real process with a config file; stderr goes to a file."""

    def __init__(self, workdir: Path, name: str = "server", **settings: Any) -> None:
        self.workdir = workdir
        self.config_file = workdir / f"{name}.yaml"
        self.config_file.write_text(yaml.safe_dump(ops_config(**settings)), encoding="utf-8")
        self.ready_file = workdir / f"{name}.ready"
        self.log_file = workdir / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.address = ""

    def launch(self, env: dict[str, str] | None = None) -> ServeProcess:
        with self.log_file.open("wb") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "server.cli",
                    "serve",
                    "--config",
                    str(self.config_file),
                    "--ready-file",
                    str(self.ready_file),
                ],
                env={**os.environ, **(env or {})},
                stdout=subprocess.DEVNULL,
                stderr=log,
                cwd=REPO,
            )
        return self

    def wait_ready(self) -> ServeProcess:
        assert self.process is not None
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not self.ready_file.exists():
            if self.process.poll() is not None:
                raise AssertionError(f"the server exited at start:\n{self.log()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"no ready file after {STARTUP_TIMEOUT}s:\n{self.log()}")
            time.sleep(0.05)
        self.address = self.ready_file.read_text(encoding="utf-8").strip()
        return self

    def terminate(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)

    def wait(self, timeout: float) -> int:
        assert self.process is not None
        return self.process.wait(timeout=timeout)

    def log(self) -> str:
        return self.log_file.read_text(encoding="utf-8", errors="replace")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


class LoopThread:
    """An event loop in a background thread, for servers that live in this process."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        future: Future[T] = asyncio.run_coroutine_threadsafe(coroutine, self.loop)
        return future.result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)


class InProcessServer:
    def __init__(self, loop: LoopThread, running: RunningServer) -> None:
        self.loop = loop
        self.running = running
        self.address = f"127.0.0.1:{running.port}"

    def stop(self) -> None:
        self.loop.run(self.running.drain(0.0))
        self.loop.run(self.running.close())


# ---- the relay provider's fake upstream --------------------------------------------------------

RELAY_KEY = "sk-test-not-a-real-key"


def relay_credentials(upstream: Any) -> dict[str, str]:
    return {"base_url": upstream.url, "api_key": RELAY_KEY}


def slow_relay(pieces: int, pause: float, usage: tuple[int, int] | None = None) -> Any:
    """A fake upstream handler streaming `pieces` text events `pause` seconds apart, then the
    usage event and `[DONE]` (for a stream that lasts as long as a test needs)."""
    from upstreams.upstream import Pause, sse_data, write_stream

    async def handler(request: Any, recorded: Any) -> Any:
        script: list[Any] = []
        for i in range(pieces):
            script += [sse_data({"text": f"{i} "}), Pause(pause)]
        if usage is not None:
            script.append(sse_data({"text": "", "usage": {"input": usage[0], "output": usage[1]}}))
        script.append(sse_data("[DONE]"))
        return await write_stream(request, script)

    return handler
