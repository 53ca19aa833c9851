"""Prices follow Dify's formula and rounding; the offline token estimate behaves like BPE."""

from __future__ import annotations

from decimal import Decimal

from providers.sdk.entities import LLMUsage, PriceConfig, PriceType
from providers.sdk.pricing import get_price, price_llm_usage
from providers.sdk.tokenizer import estimate_tokens

PRICING = PriceConfig(
    input=Decimal("2.5"), output=Decimal("10"), unit=Decimal("0.000001"), currency="USD"
)


def test_price_is_tokens_times_unit_price_times_unit_rounded_half_up() -> None:
    price = get_price(PRICING, PriceType.INPUT, 3)
    assert price.total_amount == Decimal("0.0000075")
    # 1 token at 0.15 per million is 1.5e-7, rounded half up to 7 places.
    cheap = PriceConfig(input=Decimal("0.15"), unit=Decimal("0.000001"), currency="USD")
    assert get_price(cheap, PriceType.INPUT, 1).total_amount == Decimal("0.0000002")


def test_missing_output_price_or_pricing_is_free_in_usd() -> None:
    no_output = PriceConfig(input=Decimal("1"), unit=Decimal("0.001"), currency="EUR")
    assert get_price(no_output, PriceType.OUTPUT, 100).total_amount == 0
    assert get_price(None, PriceType.INPUT, 100).currency == "USD"


def test_usage_totals() -> None:
    usage = price_llm_usage(LLMUsage(prompt_tokens=1000, completion_tokens=500), PRICING)
    assert usage.total_tokens == 1500
    assert usage.prompt_price == Decimal("0.0025000")
    assert usage.completion_price == Decimal("0.0050000")
    assert usage.total_price == Decimal("0.0075000")
    assert usage.currency == "USD"


def test_token_estimate_on_familiar_text() -> None:
    # GPT-2 encodes these to 4 and 10 tokens.
    assert estimate_tokens("Hello, world!") == 4
    assert estimate_tokens("The quick brown fox jumps over the lazy dog.") == 10
    assert estimate_tokens("") == 0
    assert estimate_tokens("你好世界") == 4
