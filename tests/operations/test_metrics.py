"""The Prometheus endpoint, scraped over HTTP after real calls through the real client: RPCs by
method and code, latency and time-to-first-token histograms, tokens and price by provider and
model, active streams, upstream errors by reason; and only bounded label values, never a secret
or a caller's free text."""

from __future__ import annotations

import time
import urllib.request
from decimal import Decimal
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from modelruntime import client as mr
from server.config import ServerConfig

from ._support import CALL_TIMEOUT, FAKE_CREDENTIALS

SECRET = "sk-test-not-a-real-key-in-metrics"


class Scrape:
    def __init__(self, url: str) -> None:
        with urllib.request.urlopen(url, timeout=10) as response:
            assert response.status == 200
            self.text = response.read().decode()
        self.samples = [
            sample
            for family in text_string_to_metric_families(self.text)
            for sample in family.samples
        ]

    def value(self, name: str, **labels: str) -> float:
        """The sample's value; 0 when the labelled series does not exist (yet)."""
        for sample in self.samples:
            if sample.name == name and sample.labels == labels:
                return float(sample.value)
        return 0.0


@pytest.fixture
def metrics_server(in_process_server: Any) -> Any:
    return in_process_server(metrics_address="127.0.0.1:0")


def metrics_url(server: Any) -> str:
    assert server.running.metrics_endpoint is not None
    return str(server.running.metrics_endpoint.url)


def test_calls_are_counted_by_method_code_provider_and_model(metrics_server: Any) -> None:
    with mr.ModelRuntimeClient(metrics_server.address, default_timeout=CALL_TIMEOUT) as client:
        chunks = list(
            client.stream_llm(
                "fake", "fake-chat", FAKE_CREDENTIALS, "count these words", model_parameters={}
            )
        )
        usage = chunks[-1].delta.usage
        with pytest.raises(mr.InvokeRateLimitError):
            client.invoke_llm(
                "fake", "fake-chat", {**FAKE_CREDENTIALS, "fail_with": "rate_limit"}, "hi", {}
            )
        with pytest.raises(mr.ProviderNotFoundError):
            client.invoke_llm("no-such-provider", "m", {}, "hi", {})
        result = client.invoke_text_embedding(
            "fake", "fake-embedding", FAKE_CREDENTIALS, ["one text", "another text"]
        )

    scrape = Scrape(metrics_url(metrics_server))
    rpcs = "modelruntime_rpcs_total"
    assert scrape.value(rpcs, method="StreamLLM", provider="fake", code="OK") == 1
    assert scrape.value(rpcs, method="InvokeLLM", provider="fake", code="RESOURCE_EXHAUSTED") == 1
    # An unknown provider's name is the caller's free text: counted as "other".
    assert scrape.value(rpcs, method="InvokeLLM", provider="other", code="NOT_FOUND") == 1
    assert scrape.value(rpcs, method="InvokeTextEmbedding", provider="fake", code="OK") == 1
    errors = "modelruntime_upstream_errors_total"
    assert scrape.value(errors, provider="fake", model="fake-chat", reason="INVOKE_RATE_LIMIT") == 1

    tokens = "modelruntime_tokens_total"
    chat = {"provider": "fake", "model": "fake-chat"}
    assert usage.prompt_tokens > 0 and usage.completion_tokens > 0
    assert scrape.value(tokens, **chat, direction="input") == usage.prompt_tokens
    assert scrape.value(tokens, **chat, direction="output") == usage.completion_tokens
    assert scrape.value(
        "modelruntime_price_total", **chat, currency=usage.currency
    ) == pytest.approx(float(Decimal(usage.total_price)))
    embedding = {"provider": "fake", "model": "fake-embedding"}
    assert scrape.value(tokens, **embedding, direction="input") == result.usage.tokens

    assert scrape.value("modelruntime_time_to_first_token_seconds_count", **chat) == 1
    assert scrape.value("modelruntime_rpc_duration_seconds_count", method="StreamLLM") == 1
    assert scrape.value("modelruntime_rpc_duration_seconds_count", method="InvokeLLM") == 2
    assert scrape.value("modelruntime_active_streams", method="StreamLLM") == 0
    assert scrape.value("modelruntime_rpcs_in_flight") == 0
    assert scrape.value("modelruntime_draining") == 0


def test_active_streams_count_open_streams(metrics_server: Any) -> None:
    url = metrics_url(metrics_server)
    with mr.ModelRuntimeClient(metrics_server.address, default_timeout=CALL_TIMEOUT) as client:
        with client.stream_llm(
            "fake",
            "fake-chat",
            FAKE_CREDENTIALS,
            "hi",
            model_parameters={"reply": "a b c d e f g h", "chunk_delay_ms": 200},
        ) as stream:
            next(stream)
            open_now = Scrape(url)
        assert open_now.value("modelruntime_active_streams", method="StreamLLM") == 1
        assert open_now.value("modelruntime_rpcs_in_flight") == 1

        # The cancelled stream leaves the gauge once the server has seen the cancellation.
        deadline = time.monotonic() + 5
        while Scrape(url).value("modelruntime_active_streams", method="StreamLLM") != 0:
            assert time.monotonic() < deadline, "the closed stream still counts as active"
            time.sleep(0.05)
    assert (
        Scrape(url).value(
            "modelruntime_rpcs_total", method="StreamLLM", provider="fake", code="CANCELLED"
        )
        == 1
    )


ALLOWED_LABELS = {
    "provider": {"fake", "relay", "other"},
    "model": {"fake-chat", "fake-basic", "fake-embedding", "relay-chat", "other"},
    "direction": {"input", "output"},
    "currency": {"USD", "other"},
}


def test_label_values_are_bounded_and_hold_no_secret(metrics_server: Any) -> None:
    with mr.ModelRuntimeClient(metrics_server.address, default_timeout=CALL_TIMEOUT) as client:
        # A customizable model's name is the caller's free text, and this key is refused.
        for model in (f"finetune-{SECRET}", "fake-chat"):
            with pytest.raises(mr.ModelRuntimeError):
                client.invoke_llm(
                    "fake",
                    model,
                    {"api_key": SECRET, "fail_with": "rate_limit"},
                    "hi",
                    {},
                    user="user-1234@example.com",
                )
        with pytest.raises(mr.ModelRuntimeError):
            client.invoke_llm(f"provider-{SECRET}", "m", {"api_key": SECRET}, "hi", {})

    scrape = Scrape(metrics_url(metrics_server))
    assert SECRET not in scrape.text
    assert "user-1234" not in scrape.text
    for sample in scrape.samples:
        for label, value in sample.labels.items():
            if label in ALLOWED_LABELS:
                assert value in ALLOWED_LABELS[label], (sample.name, label, value)
    rpcs = "modelruntime_rpcs_total"
    assert scrape.value(rpcs, method="InvokeLLM", provider="other", code="NOT_FOUND") == 1


def test_the_endpoint_is_off_unless_configured(in_process_server: Any) -> None:
    assert ServerConfig().metrics_address is None
    server = in_process_server()
    assert server.running.metrics_endpoint is None
