"""Results of the non-LLM model types (embedding, rerank); speech2text, TTS and moderation
return plain `str`, `bytes` and `bool`."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum

_ZERO = Decimal(0)


class EmbeddingInputType(StrEnum):
    DOCUMENT = "document"
    QUERY = "query"


@dataclass(slots=True, kw_only=True)
class EmbeddingUsage:
    tokens: int = 0
    total_tokens: int = 0
    unit_price: Decimal = _ZERO
    price_unit: Decimal = _ZERO
    total_price: Decimal = _ZERO
    currency: str = "USD"
    latency: float = 0.0


@dataclass(slots=True, kw_only=True)
class TextEmbeddingResult:
    model: str
    embeddings: list[list[float]]
    usage: EmbeddingUsage = field(default_factory=EmbeddingUsage)


@dataclass(slots=True, kw_only=True)
class RerankDocument:
    index: int
    text: str
    score: float


@dataclass(slots=True, kw_only=True)
class RerankResult:
    model: str
    docs: list[RerankDocument]
