"""Smoke test of the benchmark harness (bench/): the Go tools build, a tiny load runs against the
fake upstream directly and through the modelruntime server's openai_api_compatible provider with
no errors and every delta delivered, a cancel is matched with the upstream's record of the
close, and `bench/run.py` with minimal loads writes a results file with every number the issue
asks for. Seconds, not minutes; skipped where Go is absent."""

from __future__ import annotations

import importlib.util
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import benchlib as bl  # bench/ is not a package; the harness is imported from its folder

BENCH_DIR = bl.BENCH_DIR


def _load_runner() -> Any:
    # Loaded under its own name: a module called `run` could be anything on sys.path.
    spec = importlib.util.spec_from_file_location("bench_run", BENCH_DIR / "run.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


bench_run = _load_runner()

pytestmark = pytest.mark.skipif(
    bl.go_binary() is None, reason="Go is not on PATH: the benchmark's tools are Go programs"
)

CHUNKS = 16
REPORT_FIELDS = {
    "requests",
    "requests_ok",
    "errors",
    "chunk_mismatches",
    "requests_per_second",
    "chunks",
    "chunks_per_second",
    "ttft_ms",
    "total_ms",
    "cpu",
    "max_in_flight",
}


@pytest.fixture(scope="module")
def tools() -> bl.Tools:
    return bl.build_tools()


@pytest.fixture(scope="module")
def services(tools: bl.Tools) -> Iterator[tuple[bl.Service, bl.Service]]:
    with bl.workdir() as work:
        upstream = bl.start_upstream(tools, work)
        try:
            server = bl.start_modelruntime(work)
        except BaseException:
            upstream.stop()
            raise
        try:
            yield upstream, server
        finally:
            server.stop()
            upstream.stop()


def _targets(upstream: bl.Service, server: bl.Service) -> list[bl.Target]:
    return [
        bl.Target("direct", "http", f"http://{upstream.address}/v1", upstream),
        bl.Target(
            "modelruntime",
            "grpc",
            server.address,
            server,
            credentials=bl.modelruntime_credentials(upstream),
        ),
    ]


def _assert_clean(report: dict[str, Any], requests: int) -> None:
    assert report.keys() >= REPORT_FIELDS
    assert report["errors"] == 0, report["error_samples"]
    assert report["requests_ok"] == requests
    for percentiles in (report["ttft_ms"], report["total_ms"]):
        assert percentiles["n"] == requests
        assert 0 < percentiles["p50"] <= percentiles["p99"] <= percentiles["max"]
    assert report["cpu"]["total_seconds"] >= 0


@pytest.mark.parametrize("leg", ["direct", "modelruntime"])
def test_tiny_load_delivers_every_chunk(
    tools: bl.Tools, services: tuple[bl.Service, bl.Service], leg: str
) -> None:
    target = {t.name: t for t in _targets(*services)}[leg]
    report = bl.run_loadgen(
        tools,
        target,
        model=f"bench-chunks{CHUNKS}",
        concurrency=2,
        requests=20,
        expect_chunks=CHUNKS,
        request_timeout=20,
    )
    _assert_clean(report, 20)
    assert report["chunks"] == 20 * CHUNKS
    assert report["chunk_mismatches"] == 0
    assert 1 <= report["max_in_flight"] <= 2


def test_a_short_stream_is_an_error(
    tools: bl.Tools, services: tuple[bl.Service, bl.Service]
) -> None:
    """Expecting more chunks than the upstream sends counts every stream as a mismatch, so a
    gateway that drops deltas cannot pass for a fast one."""
    direct = _targets(*services)[0]
    report = bl.run_loadgen(
        tools, direct, model="bench-chunks4", concurrency=1, requests=3, expect_chunks=5
    )
    assert report["errors"] == report["chunk_mismatches"] == 3
    assert report["error_samples"] == {"got 4 content chunks, want 5": 3}


def test_cancels_are_matched_with_the_upstreams_closes(
    tools: bl.Tools, services: tuple[bl.Service, bl.Service]
) -> None:
    upstream, server = services
    modelruntime = _targets(upstream, server)[1]
    bl.upstream_reset(upstream)
    report = bl.run_loadgen(
        tools,
        modelruntime,
        model="bench-chunks200-interval50ms-tag",
        concurrency=2,
        requests=6,
        request_timeout=20,
        cancel=True,
    )
    assert report["errors"] == 0, report["error_samples"]
    tags = {c["tag"] for c in report["cancels"]}
    assert len(tags) == 6
    closed: set[str] = set()
    for _ in range(50):  # up to 5 s: the closes follow the cancels within milliseconds
        stats = bl.upstream_stats(upstream)
        closed = {c["tag"] for c in stats["early_closes"]}
        if tags <= closed:
            break
        time.sleep(0.1)
    assert tags <= closed


def test_run_writes_every_number(tmp_path: Path) -> None:
    status = bench_run.main(
        [
            "--runs=1",
            "--duration=0.5",
            "--stream-concurrency=2",
            "--long-concurrency=4",
            "--long-seconds=0.5",
            "--cancels=4",
            "--targets=direct,modelruntime",
            "--profile=0",
            f"--out={tmp_path}",
        ]
    )
    assert status == 0
    results = json.loads((tmp_path / "latest.json").read_text())
    assert results["versions"]["grpcio"]
    assert results["versions"]["server_source"].startswith("working tree")
    assert results["machine"]["loadavg_at_start"]
    assert results["idle_rss"]["modelruntime"]["rss_idle_bytes"] > 0
    assert results["upstream_alone"]["chunks_per_second"] > 0
    assert [load["name"] for load in results["loads"]] == ["stream64-c2", "long-c4"]
    for load in results["loads"]:
        mr = load["results"]["modelruntime"]
        assert mr["errors"] == 0, mr["error_samples"]
        assert mr["server_cpu_seconds_per_1000_chunks"] is not None
        assert mr["server_rss_peak_bytes"] > 0
        assert load["ratios"]["modelruntime_vs_direct"]["ttft_p50_added_ms"] is not None
    assert results["loads"][1]["results"]["modelruntime"]["server_rss_per_stream_bytes"] is not None
    cancel = results["cancellation"]["modelruntime"]
    assert cancel["closed"] == cancel["cancels"] == 4
    assert {check["target"] for check in results["targets_check"]}


def test_profile_lines_become_per_function_shares() -> None:
    lines = [
        "main (server/cli.py:69);_stream (server/servicer.py:360);sendmsg (libc.so.6) 3",
        "main (server/cli.py:69);chunk_to_pb (server/convert.py:12) 1",
        "not a profile line",
    ]
    own, inclusive, total = bench_run._top_frames(lines)
    assert total == 4
    assert own == [("sendmsg (libc.so.6)", 3), ("chunk_to_pb (server/convert.py)", 1)]
    assert ("main (server/cli.py)", 4) in inclusive


def test_a_commit_is_exported_without_touching_the_repository(tmp_path: Path) -> None:
    commit = bl.export_source("HEAD", tmp_path / "source")
    assert len(commit) == 40
    assert (tmp_path / "source" / "server" / "servicer.py").is_file()
    assert (tmp_path / "source" / "providers" / "openai_api_compatible").is_dir()
    with pytest.raises(bl.BenchError, match="no commit"):
        bl.export_source("no-such-ref-anywhere", tmp_path / "other")
