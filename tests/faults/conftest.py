"""Fault tests: one real `modelruntime serve` process for the folder, serving the built-in
`openai_api_compatible` provider, pointed at a fake upstream on loopback that this process
scripts (tests/upstreams/upstream.py). The server retries as configured by default, only with
shorter waits so the folder runs quickly; its metrics endpoint has the debug gauges."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import pytest
from operations._support import REPO, ServeProcess
from upstreams.upstream import FakeUpstream

from modelruntime import client as mr

CALL_TIMEOUT = 10.0
PROVIDER = "openai_api_compatible"
MODEL = "my-model"
KEY = "sk-test-not-a-real-key"
# Attempts in all (the default), with waits short enough for a quick folder.
ATTEMPTS = 3

_METRICS_LINE = re.compile(r"metrics on (http://\S+)")


class Served:
    """The server process, its address and its metrics URL."""

    def __init__(self, process: ServeProcess) -> None:
        self.process = process
        self.address = process.address
        assert process.process is not None
        self.pid = process.process.pid
        self.metrics_url = self._metrics_url()

    def _metrics_url(self) -> str:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            found = _METRICS_LINE.search(self.process.log())
            if found:
                return found.group(1)
            time.sleep(0.05)
        raise AssertionError(f"no metrics endpoint in the log:\n{self.process.log()}")


@pytest.fixture(scope="package")
def upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream() as fake:
        yield fake


@pytest.fixture(autouse=True)
def _fresh_upstream_script(upstream: FakeUpstream) -> None:
    upstream.reset()


@pytest.fixture(scope="package")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    process = ServeProcess(
        tmp_path_factory.mktemp("faults"),
        provider_paths=[str(REPO / "providers" / PROVIDER)],
        metrics_address="127.0.0.1:0",
        debug_metrics=True,
        retries={
            "max_attempts": ATTEMPTS,
            "base_delay_seconds": 0.02,
            "max_delay_seconds": 0.1,
        },
    )
    process.launch()
    try:
        yield Served(process.wait_ready())
    finally:
        process.kill()


@pytest.fixture(scope="package")
def client(served: Served) -> Iterator[mr.ModelRuntimeClient]:
    with mr.ModelRuntimeClient(served.address, default_timeout=CALL_TIMEOUT) as client:
        yield client


def creds(upstream: FakeUpstream | str) -> dict[str, str]:
    """Credentials of a chat model at the fake upstream (or at a base URL)."""
    base = upstream if isinstance(upstream, str) else upstream.url
    return {"endpoint_url": f"{base}/v1", "api_key": KEY, "endpoint_model_name": "served-model"}
