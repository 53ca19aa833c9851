"""Providers written synchronously (the seed's style: blocking sleeps, plain generators) and
asynchronously both stream through the server chunk by chunk, priced from their YAML.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from decimal import Decimal

import pytest

from modelruntime import client as mr
from modelruntime.v1 import model_runtime_service_pb2_grpc as pb_grpc

from ._support import (
    CALL_TIMEOUT,
    PROBE_CREDS,
    SEED_CREDS,
    price,
    stream_request,
    unique_tag,
)

SEED_WORDS = ["w0 ", "w1 ", "w2 ", "w3 ", "w4 "]
# sync-echo.yaml: input and output unit prices, and what one token is worth of a unit.
SEED_PRICING = ("0.001", "0.002", "0.001")


# ---- the sync, seed-style provider ---------------------------------------------------------


def test_sync_provider_streams_one_word_per_chunk(client: mr.ModelRuntimeClient) -> None:
    chunks = list(client.stream_llm("seed_style", "sync-echo", SEED_CREDS, "hi"))

    *body, last = chunks
    assert [c.delta.message.content for c in body] == SEED_WORDS
    assert [c.delta.index for c in chunks] == list(range(len(SEED_WORDS) + 1))
    assert all(c.model == "sync-echo" for c in chunks)
    assert last.delta.message.content == ""
    assert last.delta.finish_reason == "stop"
    assert (last.delta.usage.prompt_tokens, last.delta.usage.completion_tokens) == (3, 5)


def test_sync_provider_chunks_arrive_as_the_provider_yields_them(
    stub: pb_grpc.ModelRuntimeServiceStub,
) -> None:
    delay_ms = 60
    request = stream_request(
        "seed_style", "sync-echo", SEED_CREDS, "hi", {"chunk_delay_ms": delay_ms, "words": 4}
    )

    arrivals = []
    for message in stub.StreamLLM(request, timeout=CALL_TIMEOUT):
        if message.chunks[0].delta.message.content:
            arrivals.append(time.monotonic())

    # A generator stepped on the worker pool one item at a time: each chunk arrives about one
    # delay after the one before, not all together when the generator is exhausted.
    gaps = [later - earlier for earlier, later in itertools.pairwise(arrivals)]
    assert len(arrivals) == 4
    assert all(gap >= 0.6 * delay_ms / 1000 for gap in gaps), gaps


def test_sync_provider_unary_invoke(client: mr.ModelRuntimeClient) -> None:
    result = client.invoke_llm("seed_style", "sync-echo", SEED_CREDS, "hi", {"words": 3})

    assert result.model == "sync-echo"
    assert result.message.content == "w0 w1 w2 "
    assert result.finish_reason == "stop"
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (3, 3)


@pytest.mark.parametrize("streamed", [False, True], ids=["unary", "stream"])
def test_sync_provider_usage_is_priced_from_its_yaml(
    client: mr.ModelRuntimeClient, streamed: bool
) -> None:
    if streamed:
        usage = mr.collect(client.stream_llm("seed_style", "sync-echo", SEED_CREDS, "hi")).usage
    else:
        usage = client.invoke_llm("seed_style", "sync-echo", SEED_CREDS, "hi").usage

    input_price, output_price, unit = SEED_PRICING
    assert (usage.prompt_unit_price, usage.prompt_price_unit) == (input_price, unit)
    assert (usage.completion_unit_price, usage.completion_price_unit) == (output_price, unit)
    # 3 × 0.001 × 0.001 and 5 × 0.002 × 0.001, quantised to 7 places.
    assert usage.prompt_price == "0.0000030"
    assert usage.completion_price == "0.0000100"
    assert Decimal(usage.prompt_price) == price(3, input_price, unit)
    assert Decimal(usage.completion_price) == price(5, output_price, unit)
    assert Decimal(usage.total_price) == Decimal("0.0000130")
    assert usage.total_tokens == 8
    assert usage.currency == "USD"


async def test_sync_provider_does_not_block_the_server(address: str) -> None:
    # A seed-style stream sleeps 200 ms per chunk in its generator; the server must answer
    # other calls meanwhile, from its event loop, without waiting for that sleep.
    async with mr.AsyncModelRuntimeClient(address, default_timeout=CALL_TIMEOUT) as aclient:
        stream = aclient.stream_llm(
            "seed_style",
            "sync-echo",
            SEED_CREDS,
            "hi",
            {"chunk_delay_ms": 200, "words": 3, "tag": unique_tag("busy")},
        )
        first = await anext(stream)  # the generator is now asleep in its second step

        started = time.monotonic()
        providers, other = await asyncio.gather(
            aclient.list_providers(),
            aclient.invoke_llm("seed_style", "sync-echo", SEED_CREDS, "hi", {"words": 1}),
        )
        elapsed = time.monotonic() - started
        rest = [c async for c in stream]

    assert first.delta.message.content == "w0 "
    assert any(p.provider == "seed_style" for p in providers)
    assert other.message.content == "w0 "
    assert elapsed < 0.15
    assert [c.delta.message.content for c in rest if c.delta.message.content] == ["w1 ", "w2 "]


async def test_concurrent_sync_streams_all_complete(address: str) -> None:
    # More concurrent streams than the test server's 8 sync workers: each worker is held for
    # one step at a time, so none starves.
    async with mr.AsyncModelRuntimeClient(address, default_timeout=CALL_TIMEOUT) as aclient:

        async def run(words: int) -> list[str]:
            result = await mr.acollect(
                aclient.stream_llm(
                    "seed_style",
                    "sync-echo",
                    SEED_CREDS,
                    "hi",
                    {"chunk_delay_ms": 10, "words": words},
                )
            )
            return result.message.content.split()

        results = await asyncio.gather(*(run(3 + i % 4) for i in range(12)))

    assert results == [[f"w{j}" for j in range(3 + i % 4)] for i in range(12)]


def test_sync_provider_validates_credentials(client: mr.ModelRuntimeClient) -> None:
    # seed_style implements validate_provider_credentials as a plain (blocking) method.
    assert client.validate_provider_credentials("seed_style", SEED_CREDS) == {}
    assert client.validate_model_credentials("seed_style", "llm", "sync-echo", SEED_CREDS) == {}


# ---- the async provider ----------------------------------------------------------------------


def test_async_provider_streams_until_closed(client: mr.ModelRuntimeClient) -> None:
    with client.stream_llm(
        "async_probe",
        "endless",
        PROBE_CREDS,
        "hi",
        {"tag": unique_tag("styles"), "chunk_delay_ms": 1},
    ) as stream:
        chunks = [next(stream) for _ in range(6)]

    assert [c.delta.message.content for c in chunks] == [f"{i} " for i in range(6)]
    assert [c.delta.index for c in chunks] == list(range(6))
    assert all(c.model == "endless" for c in chunks)
    assert not any(c.delta.HasField("usage") for c in chunks)


async def test_async_provider_streams_to_the_async_client(address: str) -> None:
    async with (
        mr.AsyncModelRuntimeClient(address, default_timeout=CALL_TIMEOUT) as aclient,
        aclient.stream_llm(
            "async_probe",
            "endless",
            PROBE_CREDS,
            "hi",
            {"tag": unique_tag("styles-async"), "chunk_delay_ms": 1},
        ) as stream,
    ):
        chunks = [await anext(stream) for _ in range(4)]

    assert [c.delta.message.content for c in chunks] == ["0 ", "1 ", "2 ", "3 "]


def test_provider_without_a_credential_form_validates_empty_credentials(
    client: mr.ModelRuntimeClient,
) -> None:
    # async_probe has no provider class: its first model's validation stands in for it.
    assert client.validate_provider_credentials("async_probe", PROBE_CREDS) == {}


def test_unpriced_model_reports_zero_prices_in_usd(client: mr.ModelRuntimeClient) -> None:
    # A customizable fake model has no pricing: usage still comes, priced at zero.
    result = client.invoke_llm("fake", "unpriced-local", {"api_key": "fake-e2e"}, "a b")

    usage = result.usage
    assert usage.completion_tokens == 2
    assert Decimal(usage.total_price) == 0
    assert usage.currency == "USD"
