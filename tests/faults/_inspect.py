"""What a running `modelruntime serve` process holds, read from outside it: its open file
descriptors and resident memory (/proc/<pid>), its TCP connections to a given port
(/proc/net/tcp, matched by socket inode), and its metrics (the Prometheus endpoint, including
the debug gauge of its event loop's tasks)."""

from __future__ import annotations

import os
import re
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

_SOCKET = re.compile(r"socket:\[(\d+)\]")
_ESTABLISHED = "01"


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for process {pid}")


def connections_to(pid: int, port: int) -> int:
    """The process's established TCP connections whose remote end is `port` on loopback."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            match = _SOCKET.fullmatch(os.readlink(f"/proc/{pid}/fd/{fd}"))
        except OSError:  # closed while we looked
            continue
        if match:
            inodes.add(match.group(1))
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            remote_port = int(fields[2].rsplit(":", 1)[1], 16)
            if remote_port == port and fields[3] == _ESTABLISHED and fields[9] in inodes:
                count += 1
    return count


class Metrics:
    """One scrape of the server's metrics endpoint."""

    def __init__(self, url: str) -> None:
        with urllib.request.urlopen(url, timeout=10) as response:
            text = response.read().decode()
        self.samples = {
            (sample.name, frozenset(sample.labels.items())): float(sample.value)
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        }

    def value(self, name: str, **labels: str) -> float:
        return self.samples.get((name, frozenset(labels.items())), 0.0)


def settle(
    measure: Callable[[], float], until: Callable[[float], bool], timeout: float = 5.0
) -> float:
    """`measure()` once `until` holds for it, or its last value after `timeout` seconds:
    closing a socket or ending a task may take the server a moment after the caller saw the
    status."""
    deadline = time.monotonic() + timeout
    while True:
        value = measure()
        if until(value) or time.monotonic() > deadline:
            return value
        time.sleep(0.05)


def steady(measure: Callable[[], float], timeout: float = 5.0) -> float:
    """`measure()` once two readings 0.1 s apart agree (or the last after `timeout` seconds)."""
    deadline = time.monotonic() + timeout
    value = measure()
    while time.monotonic() < deadline:
        time.sleep(0.1)
        again = measure()
        if again == value:
            break
        value = again
    return value
