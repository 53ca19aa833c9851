"""What a retry leaves on record: a DEBUG line per retry (never a secret), the count on the
call's log line, the `modelruntime_retries_total` counter; and the debug gauge of the event
loop's tasks."""

from __future__ import annotations

import logging
import urllib.request

import pytest
from conftest import ServerThread
from prometheus_client.parser import text_string_to_metric_families
from upstreams.upstream import FakeUpstream

from modelruntime import client as mr

from .test_retries import CHAT, KEY, OPENAI, busy, chat_error


def scrape(server: ServerThread) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    assert server.running is not None and server.running.metrics_endpoint is not None
    with urllib.request.urlopen(server.running.metrics_endpoint.url, timeout=10) as response:
        text = response.read().decode()
    return {
        (sample.name, frozenset(sample.labels.items())): float(sample.value)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


RETRIES = (
    "modelruntime_retries_total",
    frozenset(
        {
            ("method", "InvokeLLM"),
            ("provider", OPENAI),
            ("reason", "INVOKE_SERVER_UNAVAILABLE"),
        }
    ),
)


def test_each_retry_is_logged_at_debug_and_counted(
    client: mr.ModelRuntimeClient,
    upstream: FakeUpstream,
    retrying_server: ServerThread,
    caplog: pytest.LogCaptureFixture,
) -> None:
    upstream.route("POST", CHAT, busy())
    before = scrape(retrying_server).get(RETRIES, 0.0)

    with caplog.at_level(logging.DEBUG):
        chat_error(client, upstream, metadata=[("x-request-id", "retry-records-1")])

    lines = [r.getMessage() for r in caplog.records if r.name == "modelruntime.retries"]
    assert len(lines) == 2
    for attempt, line in enumerate(lines, start=1):
        assert line.startswith("InvokeLLM provider=openai model=gpt-4o-mini")
        assert "request_id=retry-records-1" in line
        assert f"attempt {attempt} failed with InvokeServerUnavailableError" in line
        assert "INVOKE_SERVER_UNAVAILABLE" in line
    rpc_lines = [
        r.getMessage()
        for r in caplog.records
        if r.name == "modelruntime.rpc" and "request_id=retry-records-1" in r.getMessage()
    ]
    assert len(rpc_lines) == 1 and rpc_lines[0].endswith("retries=2")
    assert not [r for r in caplog.records if KEY in r.getMessage()]
    assert scrape(retrying_server).get(RETRIES, 0.0) == before + 2


def test_a_failure_that_is_not_retryable_leaves_no_retry_on_record(
    client: mr.ModelRuntimeClient,
    upstream: FakeUpstream,
    retrying_server: ServerThread,
    caplog: pytest.LogCaptureFixture,
) -> None:
    before = scrape(retrying_server).get(RETRIES, 0.0)

    # No key: refused by the credential form before any upstream call.
    credentials = {"openai_api_base": upstream.url}
    with (
        caplog.at_level(logging.DEBUG),
        pytest.raises(mr.InvalidCredentialsError),
    ):
        client.invoke_llm(OPENAI, "gpt-4o-mini", credentials, "hi")

    assert not [r for r in caplog.records if r.name == "modelruntime.retries"]
    assert scrape(retrying_server).get(RETRIES, 0.0) == before
    assert not upstream.requests


def test_the_debug_gauge_counts_the_event_loops_tasks(retrying_server: ServerThread) -> None:
    tasks = scrape(retrying_server)[("modelruntime_event_loop_tasks", frozenset())]

    # At least the server's own (gRPC's serving loop); the scrape's own task is not counted.
    assert 1 <= tasks < 100
