"""The benchmark (`make bench`, or `.venv/bin/python bench/run.py --help`).

Starts on loopback a fast fake OpenAI-compatible upstream (Go), the modelruntime server with the
openai_api_compatible provider pointed at it, and LiteLLM's proxy pointed at the same upstream;
drives each with the same Go load generator (gRPC for modelruntime, HTTP/SSE for the direct leg
and LiteLLM); measures the server's CPU and memory from /proc around every run; prints a table and
writes bench/results/<timestamp>.json and bench/results/latest.json.

The loads: streamed chats of 64 chunks at concurrency 1, 16, 128 and 512; long-lived streams (a
chunk every 50 ms) at 500, 1,000 and 2,000 concurrent; 200 streams cancelled at their first chunk,
timed from the client's cancel to the upstream seeing its connection close. Every number in the
table is the median of --runs runs. docs/performance.md explains each number.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import benchlib as bl  # bench/ is not a package: run.py runs as a script beside it

RESULTS_DIR = bl.BENCH_DIR / "results"
STREAM_CHUNKS = 64
LONG_INTERVAL_MS = 50
CANCEL_MODEL = "bench-chunks200-interval50ms-tag"
WARMUP_MODEL = "bench-chunks8"
ALONE_MODEL = "bench-chunks1000"
# A stream this late after the cancel counts as never closed (LiteLLM may not propagate it).
CANCEL_WAIT_SECONDS = 3.0
# A target whose run failed more than this share of requests skips its heavier loads.
GIVE_UP_ERROR_SHARE = 0.5


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="one run of shorter, lighter loads without LiteLLM, for iterating in about a minute",
    )
    parser.add_argument("--runs", type=int, help="runs per load; the table shows medians (3)")
    parser.add_argument("--duration", type=float, help="seconds each streamed-chat run lasts (4)")
    parser.add_argument("--stream-concurrency", help="comma-separated (1,16,128,512)")
    parser.add_argument("--long-concurrency", help="comma-separated (500,1000,2000)")
    parser.add_argument("--long-seconds", type=float, help="length of a long-lived stream (6)")
    parser.add_argument("--cancels", type=int, help="streams cancelled in the cancel test (200)")
    parser.add_argument(
        "--targets",
        help="comma-separated, from direct,modelruntime,litellm (all; quick: no litellm)",
    )
    parser.add_argument("--litellm-spec", default=bl.LITELLM_SPEC, help="what pip installs")
    parser.add_argument(
        "--profile",
        type=float,
        help="seconds of py-spy profile of the server under the concurrency-16 chat load "
        "(10; 0 turns it off; quick: 0)",
    )
    parser.add_argument(
        "--profile-concurrency",
        type=int,
        default=16,
        help="the chat load's concurrency while profiling (16; 1 shows the per-call costs "
        "behind the added time to first token)",
    )
    parser.add_argument("--conns", type=int, default=1, help="gRPC connections the load shares")
    parser.add_argument(
        "--server-ref",
        help="run the server and providers of this git commit (e.g. HEAD), exported with git "
        "archive, instead of the working tree with whatever is uncommitted in it",
    )
    parser.add_argument(
        "--max-minutes",
        type=float,
        default=14,
        help="stop starting new runs after this long (the rest is reported as skipped)",
    )
    parser.add_argument("--out", type=Path, default=RESULTS_DIR, help="where the JSON goes")
    args = parser.parse_args(argv)
    quick = args.quick
    defaults: dict[str, Any] = {
        "runs": 1 if quick else 3,
        "duration": 2.0 if quick else 4.0,
        "stream_concurrency": "1,16,128" if quick else "1,16,128,512",
        "long_concurrency": "200,500" if quick else "500,1000,2000",
        "long_seconds": 3.0 if quick else 6.0,
        "cancels": 50 if quick else 200,
        "targets": "direct,modelruntime" if quick else "direct,modelruntime,litellm",
        "profile": 0.0 if quick else 10.0,
    }
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    args.stream_concurrency = _ints(args.stream_concurrency)
    args.long_concurrency = _ints(args.long_concurrency)
    args.targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    unknown = set(args.targets) - {"direct", "modelruntime", "litellm"}
    if unknown:
        parser.error(f"unknown targets: {', '.join(sorted(unknown))}")
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    return args


def _ints(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


# ---- one measured run ----------------------------------------------------------------------


@dataclass(frozen=True)
class Load:
    name: str
    kind: str  # stream | long
    concurrency: int
    model: str
    chunks: int
    duration: float = 0
    requests: int = 0
    ramp: float = 0
    request_timeout: float = 60
    # Each worker one request: the streams are open together, and one that ends early is not
    # replaced by another (which would leave fewer than `concurrency` open at once).
    one_each: bool = False


class Bench:
    def __init__(self, args: argparse.Namespace, tools: bl.Tools, upstream: bl.Service) -> None:
        self.args = args
        self.tools = tools
        self.upstream = upstream
        self.targets: dict[str, bl.Target] = {}
        self.skipped: dict[str, str] = {}
        self.notes: list[str] = []
        self.started = time.monotonic()
        # The exported server/ and providers/ of --server-ref; None: the working tree.
        self.source: Path | None = None

    def out_of_time(self) -> bool:
        return bool(time.monotonic() - self.started > self.args.max_minutes * 60)

    def measure(self, target: bl.Target, load: Load, run: int) -> dict[str, Any]:
        """One run of one load against one target, with the server's CPU and memory around it."""
        server_pid = None if target.name == "direct" else target.service.pid
        load_before = os.getloadavg()[0]
        machine_busy = bl.machine_process_cpu_seconds()
        upstream_cpu = bl.cpu_seconds(self.upstream.pid)
        server_cpu = bl.cpu_seconds(server_pid) if server_pid else 0.0
        rss_before = bl.rss_bytes(server_pid) if server_pid else 0
        bl.upstream_reset(self.upstream)
        connections = bl.upstream_stats(self.upstream)["connections"]
        sampler = bl.RssSampler(server_pid or self.upstream.pid)
        with sampler:
            report = bl.run_loadgen(
                self.tools,
                target,
                model=load.model,
                concurrency=load.concurrency,
                duration=load.duration,
                requests=load.requests,
                expect_chunks=load.chunks,
                request_timeout=load.request_timeout,
                ramp=load.ramp,
                conns=self.args.conns if target.mode == "grpc" else 1,
                one_each=load.one_each,
            )
        upstream_cpu = bl.cpu_seconds(self.upstream.pid) - upstream_cpu
        upstream_after = bl.upstream_stats(self.upstream)
        upstream_peak = upstream_after["peak_streams"]
        machine_busy = bl.machine_process_cpu_seconds() - machine_busy
        record: dict[str, Any] = {
            "target": target.name,
            "load": load.name,
            "run": run,
            "loadavg_1m_before": round(load_before, 2),
            "loadgen": report,
            "upstream_cpu_seconds": round(upstream_cpu, 3),
            "upstream_peak_streams": upstream_peak,
            # New TCP connections to the upstream: a gateway's pool growing (or not pooling).
            "upstream_connections_opened": upstream_after["connections"] - connections,
            "server_cpu_seconds": None,
            "server_rss_before_bytes": None,
            "server_rss_peak_bytes": None,
        }
        if server_pid:
            server_cpu = bl.cpu_seconds(server_pid) - server_cpu
            record["server_cpu_seconds"] = round(server_cpu, 3)
            record["server_rss_before_bytes"] = rss_before
            record["server_rss_peak_bytes"] = sampler.peak
        # What the rest of the machine (other users, the benchmark's own bookkeeping) used
        # meanwhile: a busy neighbour shows here rather than as a slower server.
        ours = upstream_cpu + report["cpu"]["total_seconds"] + (server_cpu if server_pid else 0.0)
        record["machine_process_cpu_seconds"] = round(machine_busy, 3)
        record["other_processes_cpu_share"] = round(
            max(0.0, machine_busy - ours)
            / max(report["wall_seconds"], 1e-9)
            / (os.cpu_count() or 1),
            3,
        )
        _progress(record)
        return record

    def run_load(self, load: Load, history: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """--runs runs of one load; the targets take turns within each run, so a change in how
        busy the machine is touches them alike. Returns this load's records."""
        mine: list[dict[str, Any]] = []
        for run in range(self.args.runs):
            for name, target in self.targets.items():
                # modelruntime is what is measured: it gets every load, failing or not.
                gave_up = name != "modelruntime" and _gave_up([*history, *mine], name, load.kind)
                if name in self.skipped or gave_up:
                    continue
                if self.out_of_time():
                    self.notes.append(f"{load.name} run {run + 1} of {name}: out of time, skipped")
                    continue
                try:
                    mine.append(self.measure(target, load, run))
                except bl.BenchError as exc:
                    self.notes.append(f"{load.name} run {run + 1} of {name}: {exc}")
                    print(f"  {name} {load.name}: {exc}", file=sys.stderr)
        return mine


def _gave_up(records: list[dict[str, Any]], target: str, kind: str) -> bool:
    """A comparison target that failed most requests of a run of this kind is not given
    heavier loads (LiteLLM's would only time out, slowly)."""
    for record in records:
        if record["target"] != target or not record["load"].startswith(kind):
            continue
        report = record["loadgen"]
        if report["requests"] and report["errors"] / report["requests"] > GIVE_UP_ERROR_SHARE:
            return True
    return False


def _progress(record: dict[str, Any]) -> None:
    report = record["loadgen"]
    cpu = record["server_cpu_seconds"]
    cpu_text = f" server CPU {cpu:.2f}s" if cpu is not None else ""
    print(
        f"  {record['load']:<16} {record['target']:<13} run {record['run'] + 1}: "
        f"{report['requests_per_second']:9.1f} req/s {report['chunks_per_second']:10.0f} chunks/s "
        f"TTFT p50 {report['ttft_ms']['p50']:8.2f} ms errors {report['errors']}{cpu_text} "
        f"(others used {record['other_processes_cpu_share'] * 100:.0f}% of the CPUs)",
        flush=True,
    )


# ---- the special measurements --------------------------------------------------------------


def warm_up_and_idle_rss(bench: Bench) -> dict[str, dict[str, Any]]:
    """A few requests through each target (imports, pools, caches), then its resting memory."""
    idle: dict[str, dict[str, Any]] = {}
    for name, target in list(bench.targets.items()):
        pid = target.service.pid
        started_rss = bl.rss_bytes(pid)
        try:
            report = bl.run_loadgen(
                bench.tools, target, model=WARMUP_MODEL, concurrency=2, requests=20, expect_chunks=8
            )
        except bl.BenchError as exc:
            bench.skipped[name] = f"warm-up failed: {exc}"
            continue
        if report["errors"]:
            bench.skipped[name] = f"warm-up failed: {report['error_samples']}"
            continue
        time.sleep(1.0)
        idle[name] = {"rss_at_start_bytes": started_rss, "rss_idle_bytes": bl.rss_bytes(pid)}
    return idle


def upstream_alone(bench: Bench) -> dict[str, Any]:
    """The fake upstream read directly with long streams: its own ceiling and its own cost."""
    direct = bench.targets.get("direct") or bl.Target(
        "direct", "http", f"http://{bench.upstream.address}/v1", bench.upstream
    )
    runs = []
    for _ in range(bench.args.runs):
        before = bl.cpu_seconds(bench.upstream.pid)
        report = bl.run_loadgen(
            bench.tools,
            direct,
            model=ALONE_MODEL,
            concurrency=16,
            duration=bench.args.duration,
            expect_chunks=1000,
        )
        cpu = bl.cpu_seconds(bench.upstream.pid) - before
        chunks = max(report["chunks"], 1)
        runs.append(
            {
                "chunks_per_second": report["chunks_per_second"],
                "upstream_cpu_seconds_per_1000_chunks": cpu / chunks * 1000,
                "loadgen_cpu_seconds_per_1000_chunks": report["cpu"]["total_seconds"]
                / chunks
                * 1000,
                "errors": report["errors"],
            }
        )
    summary = {key: statistics.median(r[key] for r in runs) for key in runs[0]}
    summary["errors"] = sum(r["errors"] for r in runs)
    summary["runs"] = runs
    summary["load"] = "1,000-chunk streams, 16 concurrent, read directly"
    print(
        f"  upstream alone: {summary['chunks_per_second']:,.0f} chunks/s, "
        f"{summary['upstream_cpu_seconds_per_1000_chunks'] * 1000:.1f} ms CPU per 1,000 chunks "
        f"(load generator: {summary['loadgen_cpu_seconds_per_1000_chunks'] * 1000:.1f} ms)",
        flush=True,
    )
    return summary


def cancellation(bench: Bench, target: bl.Target) -> dict[str, Any]:
    """Streams cancelled at their first chunk; each cancel's wall-clock time is matched through
    the stream's tag with the time the upstream saw that connection close."""
    bl.upstream_reset(bench.upstream)
    report = bl.run_loadgen(
        bench.tools,
        target,
        model=CANCEL_MODEL,
        concurrency=4,
        requests=bench.args.cancels,
        request_timeout=30,
        cancel=True,
    )
    cancels = {c["tag"]: c["unix_nano"] for c in report.get("cancels") or []}
    deadline = time.monotonic() + CANCEL_WAIT_SECONDS
    closes: dict[str, int] = {}
    while time.monotonic() < deadline:
        stats = bl.upstream_stats(bench.upstream)
        closes = {c["tag"]: c["unix_nano"] for c in stats.get("early_closes") or [] if c["tag"]}
        if all(tag in closes for tag in cancels):
            break
        time.sleep(0.1)
    latencies = sorted((closes[tag] - at) / 1e6 for tag, at in cancels.items() if tag in closes)
    result = {
        "cancels": len(cancels),
        "errors": report["errors"],
        "error_samples": report["error_samples"],
        "closed": len(latencies),
        "not_closed_within_seconds": CANCEL_WAIT_SECONDS,
        "not_closed": len(cancels) - len(latencies),
        "cancel_to_close_ms": _percentiles(latencies),
        "ttft_ms": report["ttft_ms"],
    }
    p = result["cancel_to_close_ms"]
    print(
        f"  cancel {target.name:<13}: {result['closed']}/{result['cancels']} closed, "
        f"p50 {p['p50']:.2f} ms p99 {p['p99']:.2f} ms, not closed {result['not_closed']}",
        flush=True,
    )
    return result


def _percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {"p50": float("nan"), "p99": float("nan"), "max": float("nan"), "n": 0}

    def at(q: float) -> float:
        index = min(len(values) - 1, max(0, int(q * len(values) + 0.999999) - 1))
        return values[index]

    return {"p50": at(0.5), "p99": at(0.99), "max": values[-1], "n": len(values)}


def profile_server(
    bench: Bench, seconds: float, concurrency: int, work: Path, out_dir: Path, stamp: str
) -> dict[str, Any]:
    """py-spy samples a fresh server (warmed up, as at the start of the benchmark) during a chat
    load (concurrency 16 unless asked otherwise); each function's share of the samples times
    the run's server CPU per chunk estimates what it costs per chunk. A fresh one, because
    the loads before leave the server's upstream pool full of connections, which changes its
    costs (see docs/performance.md)."""
    py_spy = ensure_py_spy()
    profile_work = work / "profile"
    profile_work.mkdir()
    server = bl.start_modelruntime(profile_work, source=bench.source)
    try:
        target = bl.Target(
            "modelruntime",
            "grpc",
            server.address,
            server,
            credentials=bl.modelruntime_credentials(bench.upstream),
        )
        bl.run_loadgen(
            bench.tools, target, model=WARMUP_MODEL, concurrency=2, requests=20, expect_chunks=8
        )
        raw = out_dir / f"{stamp}-profile.txt"
        return _profile(bench, target, py_spy, seconds, concurrency, raw)
    finally:
        server.stop()


def _profile(
    bench: Bench, target: bl.Target, py_spy: Path, seconds: float, concurrency: int, raw: Path
) -> dict[str, Any]:
    raw.parent.mkdir(parents=True, exist_ok=True)
    spy = subprocess.Popen(
        [
            str(py_spy),
            "record",
            "--pid",
            str(target.service.pid),
            "--duration",
            str(int(seconds)),
            "--rate",
            "100",
            "--format",
            "raw",
            # Only the thread holding the GIL, with native frames: idle pool threads drop out,
            # and time inside grpc's Cython core (sendmsg, ...) gets its own name.
            "--gil",
            "--native",
            "--output",
            str(raw),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(0.5)  # py-spy attaches before the load starts
    load = Load(
        f"profile-c{concurrency}",
        "stream",
        concurrency,
        f"bench-chunks{STREAM_CHUNKS}",
        STREAM_CHUNKS,
        seconds,
    )
    record = bench.measure(target, load, 0)
    try:
        _, err = spy.communicate(timeout=seconds + 30)
    except subprocess.TimeoutExpired:
        spy.kill()
        raise bl.BenchError("py-spy did not finish") from None
    if spy.returncode != 0 or not raw.exists():
        raise bl.BenchError(f"py-spy failed: {err.strip()[-500:]}")
    chunks = max(record["loadgen"]["chunks"], 1)
    us_per_chunk = record["server_cpu_seconds"] / chunks * 1e6
    lines = raw.read_text().splitlines()
    self_top, inclusive_top, total = _top_frames(lines)
    areas, _ = _areas(lines)
    return {
        "raw_file": str(raw),
        "samples": total,
        "note": "py-spy (--gil --native) pauses the server at each sample, which slows it: "
        "the shares matter, not the run's speed",
        "server_cpu_us_per_chunk_during_profile": us_per_chunk,
        "by_area": [
            {"area": a, "share": n / total, "us_per_chunk": n / total * us_per_chunk}
            for a, n in areas
        ],
        "top_self": [
            {"frame": f, "share": n / total, "us_per_chunk": n / total * us_per_chunk}
            for f, n in self_top
        ],
        "top_inclusive": [
            {"frame": f, "share": n / total, "us_per_chunk": n / total * us_per_chunk}
            for f, n in inclusive_top
        ],
    }


def _top_frames(lines: Iterable[str], limit: int = 25) -> tuple[list[Any], list[Any], int]:
    self_counts: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in lines:
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_short_frame(f) for f in stack.split(";")]
        total += count
        self_counts[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    return self_counts.most_common(limit), inclusive.most_common(limit * 2), max(total, 1)


# Where a sample's time goes: the innermost frame whose file matches decides (first match in
# this order for that frame). Native frames (syscalls, C helpers) count for the Python code that
# called them, so a sendmsg under grpc's Cython code counts for gRPC.
AREAS: list[tuple[str, tuple[str, ...]]] = [
    (
        "upstream HTTP client (httpx, our transport, httptools)",
        ("httpcore/", "h11/", "anyio/", "sniffio/", "httptools/", "providers/sdk/transport.py"),
    ),
    ("SSE decoding (httpx-sse, our splitter)", ("httpx_sse/",)),
    ("upstream HTTP client (httpx, our transport, httptools)", ("httpx/",)),
    ("JSON decoding", ("json/",)),
    (
        "provider: OpenAI wire parsing",
        ("providers/sdk/protocols/", "providers/openai_api_compatible/"),
    ),
    ("SDK LLM base (numbering, timing, usage, errors)", ("providers/sdk/model_types/",)),
    ("SDK other (http helpers, credentials, schema)", ("providers/sdk/",)),
    ("entity -> protobuf (server/convert.py)", ("server/convert.py",)),
    ("logging", ("logging/", "server/observability/logs.py")),
    ("servicer (stream loop, deadline, hooks)", ("server/",)),
    ("per-read asyncio.timeout", ("asyncio/timeouts.py",)),
    ("gRPC aio (Cython: sending, receiving, polling)", ("grpc/",)),
    ("event loop and tasks", ("asyncio/",)),
]


def _areas(lines: Iterable[str]) -> tuple[list[tuple[str, int]], int]:
    counts: Counter[str] = Counter()
    total = 0
    for line in lines:
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        counts[_area_of(stack.split(";"))] += count
    return counts.most_common(), max(total, 1)


def _area_of(frames: list[str]) -> str:
    for frame in reversed(frames):
        for area, markers in AREAS:
            if any(marker in frame for marker in markers):
                return area
    return "other"


def _short_frame(frame: str) -> str:
    """`func (path/to/file.py:123)` -> `func (file.py)`: a function, not one line of it."""
    name, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    for marker in ("site-packages/", "lib/python3.11/"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return f"{name} ({path})"


def ensure_py_spy() -> Path:
    command = bl.PROFILE_VENV / "bin" / "py-spy"
    if command.exists():
        return command
    python = shutil.which("python3.11") or sys.executable
    subprocess.run([python, "-m", "venv", str(bl.PROFILE_VENV)], check=True, timeout=120)
    subprocess.run(
        [str(bl.PROFILE_VENV / "bin" / "python"), "-m", "pip", "install", "-q", "py-spy>=0.4,<0.5"],
        check=True,
        timeout=600,
    )
    return command


# ---- summary -------------------------------------------------------------------------------


def _median(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def summarize(load: Load, records: list[dict[str, Any]]) -> dict[str, Any]:
    """Per target, the median of each number over the runs."""
    summary: dict[str, Any] = {}
    by_target: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        by_target.setdefault(record["target"], []).append(record)
    for name, runs in by_target.items():
        reports = [r["loadgen"] for r in runs]

        server_cpu = _per_1000_chunks(runs, lambda r: r["server_cpu_seconds"])
        peak = _median(r["server_rss_peak_bytes"] for r in runs)
        entry: dict[str, Any] = {
            "runs": len(runs),
            "requests_per_second": _median(r["requests_per_second"] for r in reports),
            "chunks_per_second": _median(r["chunks_per_second"] for r in reports),
            "ttft_ms_p50": _median(_quantile(r, "ttft_ms", "p50") for r in reports),
            "ttft_ms_p99": _median(_quantile(r, "ttft_ms", "p99") for r in reports),
            "total_ms_p50": _median(_quantile(r, "total_ms", "p50") for r in reports),
            "total_ms_p99": _median(_quantile(r, "total_ms", "p99") for r in reports),
            "requests": sum(r["requests"] for r in reports),
            "errors": sum(r["errors"] for r in reports),
            "error_after_ms_p50": _median(_quantile(r, "error_after_ms", "p50") for r in reports),
            "chunk_mismatches": sum(r["chunk_mismatches"] for r in reports),
            "error_samples": _merge_samples(r["error_samples"] for r in reports),
            "max_in_flight": max(r["max_in_flight"] for r in reports),
            # The most streams open at the upstream at once: what the gateway really held.
            "upstream_peak_streams": _median(r["upstream_peak_streams"] for r in runs),
            "upstream_connections_opened": _median(r["upstream_connections_opened"] for r in runs),
            "server_cpu_seconds_per_1000_chunks": server_cpu,
            "upstream_cpu_seconds_per_1000_chunks": _per_1000_chunks(
                runs, lambda r: r["upstream_cpu_seconds"]
            ),
            "loadgen_cpu_seconds_per_1000_chunks": _per_1000_chunks(
                runs, lambda r: r["loadgen"]["cpu"]["total_seconds"]
            ),
            "server_rss_peak_bytes": peak,
            "loadavg_1m_before": _median(r["loadavg_1m_before"] for r in runs),
            "other_processes_cpu_share": _median(r["other_processes_cpu_share"] for r in runs),
            "runs_detail": runs,
        }
        if load.kind == "long" and name != "direct":
            entry["server_rss_per_stream_bytes"] = _median(
                (r["server_rss_peak_bytes"] - r["server_rss_before_bytes"]) / load.concurrency
                for r in runs
            )
            entry["server_rss_per_held_stream_bytes"] = _median(
                (r["server_rss_peak_bytes"] - r["server_rss_before_bytes"])
                / max(r["upstream_peak_streams"], 1)
                for r in runs
            )
        summary[name] = entry
    return summary


def _quantile(report: dict[str, Any], key: str, quantile: str) -> float | None:
    """A run's percentile, or None when no request of the run succeeded."""
    values = report[key]
    return values[quantile] if values["n"] else None


def _per_1000_chunks(
    runs: list[dict[str, Any]], seconds_of: Callable[[dict[str, Any]], float | None]
) -> float | None:
    """Median over the runs of CPU seconds per 1,000 content chunks delivered."""
    values = []
    for run in runs:
        seconds = seconds_of(run)
        if seconds is not None:
            values.append(seconds / max(run["loadgen"]["chunks"], 1) * 1000)
    return _median(values)


def _merge_samples(samples: Iterable[dict[str, int]]) -> dict[str, int]:
    merged: Counter[str] = Counter()
    for sample in samples:
        merged.update(sample)
    return dict(merged.most_common(8))


def ratios(summary: dict[str, Any]) -> dict[str, Any]:
    """Each gateway against the direct call, and modelruntime against LiteLLM."""
    out: dict[str, Any] = {}
    direct, mr, lite = summary.get("direct"), summary.get("modelruntime"), summary.get("litellm")

    def ratio(a: float | None, b: float | None) -> float | None:
        return a / b if a is not None and b else None

    def diff(a: float | None, b: float | None) -> float | None:
        return a - b if a is not None and b is not None else None

    for name, entry in (("modelruntime", mr), ("litellm", lite)):
        if entry and direct:
            out[f"{name}_vs_direct"] = {
                "ttft_p50_added_ms": diff(entry["ttft_ms_p50"], direct["ttft_ms_p50"]),
                "ttft_p99_added_ms": diff(entry["ttft_ms_p99"], direct["ttft_ms_p99"]),
                "total_p50_added_ms": diff(entry["total_ms_p50"], direct["total_ms_p50"]),
                "requests_per_second_ratio": ratio(
                    entry["requests_per_second"], direct["requests_per_second"]
                ),
                "chunks_per_second_ratio": ratio(
                    entry["chunks_per_second"], direct["chunks_per_second"]
                ),
            }
    if mr and lite:
        out["modelruntime_vs_litellm"] = {
            "litellm_cpu_per_chunk_over_modelruntime": ratio(
                lite["server_cpu_seconds_per_1000_chunks"], mr["server_cpu_seconds_per_1000_chunks"]
            ),
            "requests_per_second_ratio": ratio(
                mr["requests_per_second"], lite["requests_per_second"]
            ),
            "ttft_p50_ratio": ratio(mr["ttft_ms_p50"], lite["ttft_ms_p50"]),
            "rss_peak_ratio": ratio(mr["server_rss_peak_bytes"], lite["server_rss_peak_bytes"]),
        }
    return out


def _fmt(value: float | None, spec: str = ".1f", scale: float = 1.0) -> str:
    return "-" if value is None else format(value * scale, spec)


def print_table(results: dict[str, Any]) -> None:
    header = (
        f"{'load':<16} {'target':<13} {'req/s':>9} {'chunks/s':>9} {'TTFT p50':>9} "
        f"{'TTFT p99':>9} {'total p50':>9} {'total p99':>9} {'errors':>7} {'CPU us/ch':>9} "
        f"{'RSS MB':>7} {'open':>5} {'others':>6}  vs direct / vs LiteLLM"
    )
    print("\n" + header)
    print("-" * len(header))
    for load in results["loads"]:
        for name, entry in load["results"].items():
            notes = []
            vs_direct = load["ratios"].get(f"{name}_vs_direct")
            if vs_direct:
                notes.append(
                    f"TTFT +{_fmt(vs_direct['ttft_p50_added_ms'], '.2f')} ms, "
                    f"{_fmt(vs_direct['chunks_per_second_ratio'], '.2f')}x chunks/s"
                )
            vs_lite = load["ratios"].get("modelruntime_vs_litellm")
            if name == "modelruntime" and vs_lite:
                cpu_ratio = vs_lite["litellm_cpu_per_chunk_over_modelruntime"]
                notes.append(
                    f"LiteLLM CPU/chunk {_fmt(cpu_ratio, '.1f')}x, "
                    f"{_fmt(vs_lite['requests_per_second_ratio'], '.1f')}x req/s"
                )
            cpu = entry["server_cpu_seconds_per_1000_chunks"]
            if name == "direct":
                cpu = entry["upstream_cpu_seconds_per_1000_chunks"]
            rss = entry["server_rss_peak_bytes"]
            print(
                f"{load['name']:<16} {name:<13} {_fmt(entry['requests_per_second']):>9} "
                f"{_fmt(entry['chunks_per_second'], '.0f'):>9} "
                f"{_fmt(entry['ttft_ms_p50'], '.2f'):>9} "
                f"{_fmt(entry['ttft_ms_p99'], '.2f'):>9} {_fmt(entry['total_ms_p50'], '.1f'):>9} "
                f"{_fmt(entry['total_ms_p99'], '.1f'):>9} {entry['errors']:>7} "
                f"{_fmt(cpu, '.1f', 1000):>9} {_fmt(rss, '.0f', 1 / 2**20):>7} "
                f"{_fmt(entry['upstream_peak_streams'], '.0f'):>5} "
                f"{_fmt(entry['other_processes_cpu_share'], '.0f', 100):>5}%  {'; '.join(notes)}"
            )
    print(
        "\nTTFT and total in ms (medians over runs of each run's percentile); CPU us/ch is the "
        "server's CPU microseconds per content chunk (= CPU ms per 1,000 chunks; for 'direct', "
        "the upstream's own); RSS is the server's peak; open is the most streams open at the "
        "upstream at once; others is the share of the machine's CPUs that processes outside the "
        "benchmark used during the runs."
    )
    for name, idle in results["idle_rss"].items():
        print(f"idle RSS {name}: {idle['rss_idle_bytes'] / 2**20:.1f} MB")
    for name, cancel in results["cancellation"].items():
        if "error" in cancel:
            print(f"cancel {name}: {cancel['error']}")
            continue
        p = cancel["cancel_to_close_ms"]
        print(
            f"cancel -> upstream close {name}: p50 {p['p50']:.2f} ms, p99 {p['p99']:.2f} ms "
            f"({cancel['closed']}/{cancel['cancels']} closed within {CANCEL_WAIT_SECONDS:.0f} s)"
        )
    for check in results["targets_check"]:
        print(f"[{check['verdict']:^6}] {check['target']}: {check['measured']}")
    for reason in results["skipped"].values():
        print(f"skipped: {reason}")
    for note in results["notes"]:
        print(f"note: {note}")


def check_targets(results: dict[str, Any]) -> list[dict[str, str]]:
    """The issue's targets for modelruntime, each with what this run measured."""
    checks: list[dict[str, str]] = []

    def add(target: str, ok: bool | None, measured: str) -> None:
        verdict = "n/a" if ok is None else ("met" if ok else "missed")
        checks.append({"target": target, "verdict": verdict, "measured": measured})

    loads = {load["name"]: load for load in results["loads"]}
    c1 = loads.get("stream64-c1", {}).get("ratios", {}).get("modelruntime_vs_direct")
    if c1:
        p50, p99 = c1["ttft_p50_added_ms"], c1["ttft_p99_added_ms"]
        add(
            "added TTFT vs direct <= 1 ms p50, <= 5 ms p99 (concurrency 1)",
            p50 is not None and p99 is not None and p50 <= 1 and p99 <= 5,
            f"+{_fmt(p50, '.2f')} ms p50, +{_fmt(p99, '.2f')} ms p99",
        )
    c16 = loads.get("stream64-c16", {}).get("results", {})
    mr_cpu = c16.get("modelruntime", {}).get("server_cpu_seconds_per_1000_chunks")
    lite_cpu = c16.get("litellm", {}).get("server_cpu_seconds_per_1000_chunks")
    if mr_cpu is not None:
        add(
            "server CPU per chunk <= 50 us (concurrency 16)",
            mr_cpu * 1000 <= 50,
            f"{mr_cpu * 1000:.1f} us per chunk",
        )
    if mr_cpu and lite_cpu:
        add(
            "at least 15x less CPU per chunk than LiteLLM (concurrency 16)",
            lite_cpu / mr_cpu >= 15,
            f"{lite_cpu / mr_cpu:.1f}x ({lite_cpu * 1000:.0f} us vs {mr_cpu * 1000:.1f} us)",
        )
    idle = results["idle_rss"].get("modelruntime")
    if idle:
        add(
            "idle RSS <= 80 MB",
            idle["rss_idle_bytes"] <= 80 * 2**20,
            f"{idle['rss_idle_bytes'] / 2**20:.1f} MB",
        )
    long2000 = loads.get("long-c2000", {}).get("results", {}).get("modelruntime")
    if long2000:
        per_stream = long2000.get("server_rss_per_stream_bytes")
        held = long2000["upstream_peak_streams"]
        add(
            "2,000 long-lived streams, no errors, <= 30 KB RSS per stream",
            long2000["errors"] == 0
            and held is not None
            and held >= 2000
            and per_stream is not None
            and per_stream <= 30 * 1024,
            f"{long2000['errors']} errors in {long2000['requests']} streams, at most "
            f"{_fmt(held, '.0f')} open upstream at once, "
            f"{_fmt(per_stream, '.1f', 1 / 1024)} KB RSS per requested stream",
        )
    cancel = results["cancellation"].get("modelruntime")
    if cancel and "cancel_to_close_ms" in cancel:
        p99 = cancel["cancel_to_close_ms"]["p99"]
        add(
            "cancel -> upstream close <= 50 ms p99",
            cancel["not_closed"] == 0 and p99 <= 50,
            f"p99 {p99:.2f} ms, {cancel['not_closed']} never closed",
        )
    mismatches = sum(
        entry["chunk_mismatches"]
        for load in results["loads"]
        for name, entry in load["results"].items()
        if name == "modelruntime"
    )
    add("chunks out equal deltas in, every run", mismatches == 0, f"{mismatches} short streams")
    return checks


# ---- environment ---------------------------------------------------------------------------


def machine_info() -> dict[str, Any]:
    cpu_model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
        mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        mem_kb = 0
    return {
        "cpu_model": cpu_model,
        "cpus": os.cpu_count(),
        "memory_gb": round(mem_kb / 2**20, 1),
        "kernel": platform.release(),
        "loadavg_at_start": os.getloadavg(),
    }


def versions(litellm: str | None) -> dict[str, Any]:
    def output(argv: list[str]) -> str:
        try:
            return subprocess.run(
                argv, capture_output=True, text=True, timeout=30, check=False, cwd=bl.REPO
            ).stdout.strip()
        except OSError:
            return ""

    server_python = str(bl.REPO / ".venv" / "bin" / "python")
    return {
        "python": output([server_python, "-c", "import sys; print(sys.version.split()[0])"]),
        "grpcio": output([server_python, "-c", "import grpc; print(grpc.__version__)"]),
        "protobuf": output(
            [server_python, "-c", "import google.protobuf as p; print(p.__version__)"]
        ),
        "httpx": output([server_python, "-c", "import httpx; print(httpx.__version__)"]),
        "go": output([bl.go_binary() or "go", "version"]),
        "litellm": litellm,
        "git_commit": output(["git", "rev-parse", "--short", "HEAD"]),
        "git_dirty": bool(output(["git", "status", "--porcelain", "--", "server", "providers"])),
    }


# ---- main ----------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started_at = datetime.now(UTC)
    fd_limit = bl.raise_fd_limit()
    needed = max([*args.long_concurrency, *args.stream_concurrency, 1]) * 3 + 512
    print(f"building the Go tools ({bl.BIN_DIR}) ...", flush=True)
    try:
        tools = bl.build_tools()
    except bl.BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 1
    results: dict[str, Any] = {
        "started_at": started_at.isoformat(timespec="seconds"),
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "machine": machine_info(),
        "open_file_limit": fd_limit,
    }
    if fd_limit < needed:
        print(f"note: open-file limit {fd_limit} may be short of the {needed} the loads need")

    with bl.workdir() as work:
        services: list[bl.Service] = []
        try:
            upstream = bl.start_upstream(tools, work)
            services.append(upstream)
            bench = Bench(args, tools, upstream)
            if args.server_ref:
                commit = bl.export_source(args.server_ref, work / "source")
                bench.source = work / "source"
                print(f"serving {args.server_ref} ({commit[:12]}), exported with git archive")
            results["versions"] = versions(None)
            results["versions"]["server_source"] = (
                f"git archive of {args.server_ref} ({commit})"
                if args.server_ref
                else "working tree"
                + (" with uncommitted changes" if results["versions"]["git_dirty"] else "")
            )
            results["versions"]["litellm"] = _start_targets(bench, work, services)
            print("warming up ...", flush=True)
            results["idle_rss"] = warm_up_and_idle_rss(bench)
            results["upstream_alone"] = upstream_alone(bench)

            stream_loads = [
                Load(
                    f"stream64-c{c}",
                    "stream",
                    c,
                    f"bench-chunks{STREAM_CHUNKS}",
                    STREAM_CHUNKS,
                    duration=args.duration,
                )
                for c in args.stream_concurrency
            ]
            long_chunks = max(1, int(args.long_seconds * 1000 / LONG_INTERVAL_MS))
            long_loads = [
                Load(
                    f"long-c{n}",
                    "long",
                    n,
                    f"bench-chunks{long_chunks}-interval{LONG_INTERVAL_MS}ms",
                    long_chunks,
                    requests=n,
                    one_each=True,
                    ramp=1.0,
                    # A stream that takes twice its length (+10 s) has not been held at its pace:
                    # the gateway cannot keep up, and the stream counts as an error.
                    request_timeout=args.long_seconds * 2 + 10,
                )
                for n in args.long_concurrency
            ]
            records: list[dict[str, Any]] = []
            results["loads"] = []
            for load in [*stream_loads, *long_loads]:
                print(f"{load.name}: {load.concurrency} concurrent, model {load.model}", flush=True)
                load_records = bench.run_load(load, records)
                records += load_records
                summary = summarize(load, load_records)
                results["loads"].append(
                    {
                        "name": load.name,
                        "kind": load.kind,
                        "concurrency": load.concurrency,
                        "model": load.model,
                        "chunks_per_stream": load.chunks,
                        "results": summary,
                        "ratios": ratios(summary),
                    }
                )

            # Before the cancel test: a gateway that does not pass cancels on keeps streaming
            # to the upstream for a while afterwards, which would disturb the profile.
            if args.profile and "modelruntime" in bench.targets and not bench.out_of_time():
                print(f"profiling the server for {args.profile:.0f} s ...", flush=True)
                try:
                    results["profile"] = profile_server(
                        bench,
                        args.profile,
                        args.profile_concurrency,
                        work,
                        args.out,
                        started_at.strftime("%Y%m%dT%H%M%SZ"),
                    )
                except (bl.BenchError, subprocess.SubprocessError, OSError) as exc:
                    results["profile"] = {"error": str(exc)}

            print("cancellation ...", flush=True)
            results["cancellation"] = {}
            for name, target in bench.targets.items():
                if name in bench.skipped:
                    continue
                try:
                    results["cancellation"][name] = cancellation(bench, target)
                except bl.BenchError as exc:
                    results["cancellation"][name] = {"error": str(exc)}

            results["skipped"] = bench.skipped
            results["notes"] = bench.notes
        except bl.BenchError as exc:
            print(f"bench: {exc}", file=sys.stderr)
            return 1
        finally:
            for service in reversed(services):
                service.stop()

    results["machine"]["loadavg_at_end"] = os.getloadavg()
    shares = [
        entry["other_processes_cpu_share"]
        for load in results.get("loads", [])
        for entry in load["results"].values()
    ]
    results["machine"]["other_processes_cpu_share_median"] = _median(shares)
    results["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    results["duration_seconds"] = round((datetime.now(UTC) - started_at).total_seconds(), 1)
    results["targets_check"] = check_targets(results)
    print_table(results)
    _print_profile(results.get("profile"))
    path = write_results(results, args.out, started_at)
    print(f"\nwrote {path} and {args.out / 'latest.json'} ({results['duration_seconds']:.0f} s)")
    return 0


def _start_targets(bench: Bench, work: Path, services: list[bl.Service]) -> str | None:
    args = bench.args
    upstream = bench.upstream
    if "direct" in args.targets:
        bench.targets["direct"] = bl.Target(
            "direct", "http", f"http://{upstream.address}/v1", upstream
        )
    if "modelruntime" in args.targets:
        print("starting the modelruntime server ...", flush=True)
        server = bl.start_modelruntime(work, source=bench.source)
        services.append(server)
        bench.targets["modelruntime"] = bl.Target(
            "modelruntime",
            "grpc",
            server.address,
            server,
            credentials=bl.modelruntime_credentials(upstream),
        )
    litellm_version = None
    if "litellm" in args.targets:
        print(f"installing and starting LiteLLM's proxy ({args.litellm_spec}) ...", flush=True)
        try:
            command = bl.ensure_litellm(args.litellm_spec)
            litellm_version = bl.litellm_version()
            long_chunks = max(1, int(args.long_seconds * 1000 / LONG_INTERVAL_MS))
            models = [
                WARMUP_MODEL,
                f"bench-chunks{STREAM_CHUNKS}",
                f"bench-chunks{long_chunks}-interval{LONG_INTERVAL_MS}ms",
                CANCEL_MODEL,
            ]
            proxy = bl.start_litellm(command, upstream, models, work)
            services.append(proxy)
            bench.targets["litellm"] = bl.Target(
                "litellm", "http", f"http://{proxy.address}/v1", proxy, api_key=proxy.api_key
            )
        except bl.BenchError as exc:
            reason = f"LiteLLM skipped: {exc}"
            print(reason, flush=True)
            bench.skipped["litellm"] = reason
    return litellm_version


def _print_profile(profile: dict[str, Any] | None) -> None:
    if not profile:
        return
    if "error" in profile:
        print(f"\nprofile: {profile['error']}")
        return
    print(
        f"\nprofile ({profile['samples']} samples; server CPU "
        f"{profile['server_cpu_us_per_chunk_during_profile']:.1f} us per chunk while sampled), "
        "where the time goes:"
    )
    for entry in profile["by_area"]:
        share, cost = entry["share"] * 100, entry["us_per_chunk"]
        print(f"  {share:5.1f}%  {cost:6.1f} us/chunk  {entry['area']}")
    print("top functions by own time:")
    for entry in profile["top_self"][:15]:
        print(
            f"  {entry['share'] * 100:5.1f}%  {entry['us_per_chunk']:6.1f} us/chunk  "
            f"{entry['frame']}"
        )


def write_results(results: dict[str, Any], out_dir: Path, started_at: datetime) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{started_at.strftime('%Y%m%dT%H%M%SZ')}.json"
    text = json.dumps(results, indent=2, default=str)
    path.write_text(text)
    (out_dir / "latest.json").write_text(text)
    return path


if __name__ == "__main__":
    sys.exit(main())
