"""Usage and price: tokens × unit price × price unit, quantised as Dify does."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from providers.sdk.entities.llm import LLMUsage
from providers.sdk.entities.results import EmbeddingUsage
from providers.sdk.entities.schema import PriceConfig, PriceInfo, PriceType

_QUANTUM = Decimal("0.0000001")
_ZERO = Decimal(0)


def get_price(pricing: PriceConfig | None, price_type: PriceType, tokens: int) -> PriceInfo:
    """The price of `tokens` of one kind; zero in USD when the model is not priced."""
    unit_price = None
    if pricing is not None:
        unit_price = pricing.input if price_type is PriceType.INPUT else pricing.output
    if pricing is None or unit_price is None:
        return PriceInfo(unit_price=_ZERO, unit=_ZERO, total_amount=_ZERO, currency="USD")
    total = (Decimal(tokens) * unit_price * pricing.unit).quantize(_QUANTUM, ROUND_HALF_UP)
    return PriceInfo(
        unit_price=unit_price, unit=pricing.unit, total_amount=total, currency=pricing.currency
    )


def price_llm_usage(usage: LLMUsage, pricing: PriceConfig | None) -> LLMUsage:
    """Fills the prices and totals of `usage` from its token counts, in place."""
    prompt = get_price(pricing, PriceType.INPUT, usage.prompt_tokens)
    completion = get_price(pricing, PriceType.OUTPUT, usage.completion_tokens)
    usage.prompt_unit_price = prompt.unit_price
    usage.prompt_price_unit = prompt.unit
    usage.prompt_price = prompt.total_amount
    usage.completion_unit_price = completion.unit_price
    usage.completion_price_unit = completion.unit
    usage.completion_price = completion.total_amount
    usage.total_tokens = usage.prompt_tokens + usage.completion_tokens
    usage.total_price = prompt.total_amount + completion.total_amount
    usage.currency = prompt.currency
    return usage


def price_embedding_usage(usage: EmbeddingUsage, pricing: PriceConfig | None) -> EmbeddingUsage:
    """Fills the price fields of `usage` from its token count, in place."""
    price = get_price(pricing, PriceType.INPUT, usage.tokens)
    usage.total_tokens = usage.total_tokens or usage.tokens
    usage.unit_price = price.unit_price
    usage.price_unit = price.unit
    usage.total_price = price.total_amount
    usage.currency = price.currency
    return usage
