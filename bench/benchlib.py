"""The benchmark's moving parts: building the Go tools, starting the fake upstream, the
modelruntime server and LiteLLM's proxy on loopback, running the load generator, and reading a
process tree's CPU time and memory from /proc.

`bench/run.py` orchestrates a whole benchmark with these; `tests/bench/` uses them for a small
smoke run. Standard library only, so the benchmark runs from the project's own venv as it is.
Linux only: CPU and memory come from /proc.
"""

from __future__ import annotations

import json
import os
import resource
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
BIN_DIR = BENCH_DIR / ".bin"
LITELLM_VENV = BENCH_DIR / ".venv-litellm"
PROFILE_VENV = BENCH_DIR / ".venv-profile"
SERVER_BIN = REPO / ".venv" / "bin" / "modelruntime"

# The 1.106 series is the one the LiteLLM numbers come from; pinning the series keeps
# runs comparable and keeps pip away from releases pulled from PyPI (1.107.0 was compromised).
LITELLM_SPEC = "litellm[proxy]>=1.106,<1.107"
# An obviously fake key: the fake upstream accepts anything, and nothing real is ever sent.
UPSTREAM_API_KEY = "sk-bench-not-a-real-key"

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


class BenchError(RuntimeError):
    """A part of the benchmark could not run; the message says which and why."""


# ---- Go tools ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tools:
    upstream: Path
    loadgen: Path


def go_binary() -> str | None:
    return shutil.which("go")


def build_tools(timeout: float = 600) -> Tools:
    """Builds the fake upstream and the load generator into bench/.bin (Go's build cache makes
    a rebuild of unchanged sources take about a second)."""
    go = go_binary()
    if go is None:
        raise BenchError("Go is not on PATH; the upstream and the load generator are Go programs")
    BIN_DIR.mkdir(exist_ok=True)
    result = subprocess.run(
        [go, "build", "-o", str(BIN_DIR) + os.sep, "./cmd/upstream", "./cmd/loadgen"],
        cwd=BENCH_DIR,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if result.returncode != 0:
        raise BenchError(f"go build failed:\n{result.stderr.strip()}")
    return Tools(upstream=BIN_DIR / "upstream", loadgen=BIN_DIR / "loadgen")


def raise_fd_limit(wanted: int = 65536) -> int:
    """Raises this process's open-file limit (children inherit it): 2,000 streams through a
    gateway hold thousands of sockets. Returns the limit in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return soft


# ---- processes -----------------------------------------------------------------------------


@dataclass
class Service:
    """A process the benchmark started, with where it listens and where it logs."""

    name: str
    process: subprocess.Popen[bytes]
    address: str
    log_path: Path
    # The key callers must send (LiteLLM's master key); kept out of repr so it is never printed.
    api_key: str = field(default="", repr=False)

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


def _spawn(
    name: str, argv: Sequence[str], workdir: Path, env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[bytes], Path]:
    log_path = workdir / f"{name}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            list(argv),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=workdir,
            env={**os.environ, **(env or {})},
        )
    return process, log_path


def _wait_for_file(path: Path, process: subprocess.Popen[bytes], timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            text = path.read_text().strip()
            if text:
                return text
        if process.poll() is not None:
            raise BenchError(f"exited with code {process.returncode} before it was ready")
        time.sleep(0.05)
    raise BenchError(f"not ready after {timeout:.0f} s")


def start_upstream(tools: Tools, workdir: Path) -> Service:
    ready = workdir / "upstream.addr"
    process, log = _spawn(
        "upstream",
        [str(tools.upstream), "-addr", "127.0.0.1:0", "-ready-file", str(ready)],
        workdir,
    )
    try:
        address = _wait_for_file(ready, process, timeout=15)
    except BenchError as exc:
        process.kill()
        raise BenchError(f"the fake upstream {exc}") from exc
    return Service("upstream", process, address, log)


def export_source(ref: str, destination: Path) -> str:
    """Writes the server and providers of git `ref` to `destination` (git archive: the
    repository itself is left alone) and returns the commit it names."""
    commit = subprocess.run(
        ["git", "rev-parse", "--verify", f"{ref}^{{commit}}"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if commit.returncode != 0:
        raise BenchError(f"no commit {ref!r}: {commit.stderr.strip()}")
    sha = commit.stdout.strip()
    destination.mkdir(parents=True)
    archive = subprocess.Popen(
        ["git", "archive", "--format=tar", sha, "server", "providers"],
        cwd=REPO,
        stdout=subprocess.PIPE,
    )
    extract = subprocess.run(
        ["tar", "-x", "-C", str(destination)], stdin=archive.stdout, timeout=60, check=False
    )
    if archive.stdout is not None:
        archive.stdout.close()
    if archive.wait(timeout=60) != 0 or extract.returncode != 0:
        raise BenchError(f"cannot export {ref} with git archive")
    return sha


def start_modelruntime(
    workdir: Path,
    providers: Sequence[str] = ("openai_api_compatible",),
    source: Path | None = None,
) -> Service:
    """Starts `modelruntime serve` on a free port with only the named built-in providers
    loaded (as a deployment that serves one provider would), with its default logging.
    `source` (from `export_source`) runs that copy of server/ and providers/ instead of the
    working tree's: it comes first on PYTHONPATH, before the venv's editable install."""
    if not SERVER_BIN.exists():
        raise BenchError(f"{SERVER_BIN} is missing: run `make install` first")
    config = workdir / "modelruntime.yaml"
    root = source or REPO
    paths = [str(root / "providers" / name) for name in providers]
    config.write_text(
        "include_builtin_providers: false\n" + f"provider_paths: {json.dumps(paths)}\n"
    )
    ready = workdir / "modelruntime.addr"
    process, log = _spawn(
        "modelruntime",
        [
            str(SERVER_BIN),
            "serve",
            "--config",
            str(config),
            "--address",
            "127.0.0.1:0",
            "--ready-file",
            str(ready),
        ],
        workdir,
        {"PYTHONPATH": str(source)} if source else None,
    )
    try:
        address = _wait_for_file(ready, process, timeout=60)
    except BenchError as exc:
        process.kill()
        log_text = log.read_text(errors="replace")[-2000:]
        raise BenchError(f"the modelruntime server {exc}\n{log_text}") from exc
    return Service("modelruntime", process, address, log)


def modelruntime_credentials(upstream: Service) -> dict[str, str]:
    """The openai_api_compatible credentials (Dify's variable names) pointing at the upstream."""
    return {
        "endpoint_url": f"http://{upstream.address}/v1",
        "api_key": UPSTREAM_API_KEY,
        "mode": "chat",
        "context_size": "4096",
        "max_tokens_to_sample": "4096",
    }


def ensure_litellm(spec: str = LITELLM_SPEC, timeout: float = 900) -> Path:
    """Installs LiteLLM's proxy into its own venv (once) and returns its `litellm` command."""
    command = LITELLM_VENV / "bin" / "litellm"
    if command.exists():
        return command
    python = shutil.which("python3.11") or sys.executable
    steps = [
        [python, "-m", "venv", str(LITELLM_VENV)],
        [str(LITELLM_VENV / "bin" / "python"), "-m", "pip", "install", "-q", "--upgrade", "pip"],
        [str(LITELLM_VENV / "bin" / "python"), "-m", "pip", "install", "-q", spec],
    ]
    deadline = time.monotonic() + timeout
    for step in steps:
        left = deadline - time.monotonic()
        try:
            result = subprocess.run(
                step, capture_output=True, text=True, timeout=max(left, 1), check=False
            )
        except subprocess.TimeoutExpired as exc:
            raise BenchError(f"installing {spec} took longer than {timeout:.0f} s") from exc
        if result.returncode != 0:
            shutil.rmtree(LITELLM_VENV, ignore_errors=True)
            raise BenchError(f"cannot install {spec}: {result.stderr.strip()[-800:]}")
    if not command.exists():
        raise BenchError(f"installing {spec} gave no litellm command")
    return command


def litellm_version() -> str:
    python = LITELLM_VENV / "bin" / "python"
    result = subprocess.run(
        [str(python), "-c", "import importlib.metadata as m; print(m.version('litellm'))"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return result.stdout.strip() or "unknown"


def start_litellm(
    command: Path, upstream: Service, models: Sequence[str], workdir: Path
) -> Service:
    """Starts LiteLLM's proxy with one `openai/` model per benchmark model name, all pointing at
    the fake upstream; telemetry off and the bundled cost map, so it never reaches the network.
    It refuses to start without a master key, so each run makes a random one."""
    master_key = "sk-bench-" + secrets.token_hex(16)
    port = _free_port()
    lines = ["model_list:"]
    for model in models:
        lines += [
            f"  - model_name: {json.dumps(model)}",
            "    litellm_params:",
            f"      model: {json.dumps('openai/' + model)}",
            f"      api_base: {json.dumps(f'http://{upstream.address}/v1')}",
            f"      api_key: {json.dumps(UPSTREAM_API_KEY)}",
        ]
    lines += [
        "litellm_settings:",
        "  telemetry: false",
        "general_settings:",
        "  master_key: os.environ/LITELLM_MASTER_KEY",
    ]
    config = workdir / "litellm.yaml"
    config.write_text("\n".join(lines) + "\n")
    env = {
        "LITELLM_MASTER_KEY": master_key,
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "LITELLM_TELEMETRY": "False",
        "DO_NOT_TRACK": "1",
    }
    argv = [str(command), "--config", str(config), "--host", "127.0.0.1", "--port", str(port)]
    process, log = _spawn("litellm", argv, workdir, env)
    address = f"127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BenchError(
                f"LiteLLM's proxy exited with code {process.returncode}:\n"
                + log.read_text(errors="replace")[-1500:]
            )
        try:
            with urllib.request.urlopen(f"http://{address}/health/liveliness", timeout=2) as resp:
                if resp.status == 200:
                    return Service("litellm", process, address, log, api_key=master_key)
        except OSError:
            pass
        time.sleep(0.5)
    process.kill()
    raise BenchError("LiteLLM's proxy did not answer /health/liveliness within 120 s")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def workdir(prefix: str = "modelruntime-bench-") -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


# ---- the fake upstream's record --------------------------------------------------------------


def upstream_stats(upstream: Service) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://{upstream.address}/_stats", timeout=10) as resp:
        stats: dict[str, Any] = json.load(resp)
    return stats


def upstream_reset(upstream: Service) -> None:
    request = urllib.request.Request(f"http://{upstream.address}/_reset", method="POST")
    with urllib.request.urlopen(request, timeout=10):
        pass


# ---- the load generator --------------------------------------------------------------------


@dataclass
class Target:
    """One leg of the benchmark: how the load generator reaches it, and which process serves
    it (whose CPU and memory are measured)."""

    name: str
    mode: str  # grpc | http
    address: str  # grpc host:port, or the HTTP base URL
    service: Service
    credentials: dict[str, str] = field(default_factory=dict)
    provider: str = "openai_api_compatible"
    api_key: str = ""
    parameters: dict[str, str] = field(default_factory=dict)

    def loadgen_args(self) -> list[str]:
        args = ["-mode", self.mode, "-target", self.address]
        if self.mode == "grpc":
            args += ["-provider", self.provider]
            for key, value in self.credentials.items():
                args += ["-credential", f"{key}={value}"]
            for key, value in self.parameters.items():
                args += ["-param", f"{key}={value}"]
        return args


def run_loadgen(
    tools: Tools,
    target: Target,
    *,
    model: str,
    concurrency: int,
    duration: float = 0,
    requests: int = 0,
    expect_chunks: int = 0,
    request_timeout: float = 60,
    ramp: float = 0,
    conns: int = 1,
    cancel: bool = False,
    one_each: bool = False,
) -> dict[str, Any]:
    argv = [str(tools.loadgen), *target.loadgen_args(), "-model", model]
    argv += ["-concurrency", str(concurrency), "-timeout", f"{request_timeout}s"]
    if duration:
        argv += ["-duration", f"{duration}s"]
    if requests:
        argv += ["-requests", str(requests)]
    if expect_chunks:
        argv += ["-expect-chunks", str(expect_chunks)]
    if ramp:
        argv += ["-ramp", f"{ramp}s"]
    if conns > 1:
        argv += ["-conns", str(conns)]
    if cancel:
        argv += ["-cancel"]
    if one_each:
        argv += ["-one-each"]
    # Requests started before the end of `duration` may each take up to `request_timeout`.
    bound = duration + ramp + request_timeout + 30
    # The key goes through the environment: a command line is visible to every process.
    env = {**os.environ, "LOADGEN_API_KEY": target.api_key}
    try:
        result = subprocess.run(
            argv, capture_output=True, text=True, timeout=bound, check=False, env=env
        )
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"the load generator did not finish within {bound:.0f} s") from exc
    if result.returncode != 0:
        raise BenchError(f"the load generator failed: {result.stderr.strip()[-800:]}")
    report: dict[str, Any] = json.loads(result.stdout)
    return report


# ---- CPU and memory of a process tree, from /proc -------------------------------------------


def _children(pid: int) -> list[int]:
    found: list[int] = []
    task_dir = Path(f"/proc/{pid}/task")
    try:
        tasks = list(task_dir.iterdir())
    except OSError:
        return found
    for task in tasks:
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def process_tree(pid: int) -> list[int]:
    """The process and its descendants (a gateway may fork workers)."""
    tree: list[int] = []
    todo = [pid]
    while todo and len(tree) < 4096:
        current = todo.pop()
        tree.append(current)
        todo += _children(current)
    return tree


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of the live processes in the tree (clock-tick resolution)."""
    total = 0
    for member in process_tree(pid):
        try:
            stat = Path(f"/proc/{member}/stat").read_text()
        except OSError:
            continue
        # The command name may contain spaces; the fields after its closing parenthesis don't.
        fields = stat[stat.rindex(")") + 2 :].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / CLOCK_TICKS


def machine_process_cpu_seconds() -> float:
    """CPU seconds all cores have spent running processes since boot (user, nice, system).
    Interrupt and softirq time is left out: loopback networking is mostly softirq work done
    for the benchmark's own sockets, not another process's."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:4]]
    return sum(fields) / CLOCK_TICKS


def rss_bytes(pid: int) -> int:
    """Resident memory of the processes in the tree (summed, so shared pages count per process)."""
    total = 0
    for member in process_tree(pid):
        try:
            resident = Path(f"/proc/{member}/statm").read_text().split()[1]
        except (OSError, IndexError):
            continue
        total += int(resident) * PAGE_SIZE
    return total


class RssSampler:
    """Samples a process tree's RSS every `interval` seconds on a thread; keeps the peak."""

    def __init__(self, pid: int, interval: float = 0.1) -> None:
        self.pid = pid
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_bytes(self.pid))
            self._stop.wait(self.interval)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.peak = max(self.peak, rss_bytes(self.pid))
