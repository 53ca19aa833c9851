"""The text embedding base class."""

from __future__ import annotations

import inspect
import time
from collections.abc import Mapping

from providers.sdk.entities.results import (
    EmbeddingInputType,
    EmbeddingUsage,
    TextEmbeddingResult,
)
from providers.sdk.entities.schema import ModelType
from providers.sdk.errors import InvokeServerUnavailableError
from providers.sdk.model_types.ai_model import AIModel, Credentials, MaybeAwaitable
from providers.sdk.pricing import price_embedding_usage


class TextEmbeddingModel(AIModel):
    """Implement `_invoke(model, credentials, texts, user=None, input_type=...)` returning a
    TextEmbeddingResult (one vector per text, in order) and `validate_credentials`; override
    `get_num_tokens` when the model has a real tokenizer. `input_type` may be left out of the
    signature, as in the seed."""

    model_type = ModelType.TEXT_EMBEDDING

    def _invoke(
        self,
        model: str,
        credentials: Credentials,
        texts: list[str],
        user: str | None = None,
        input_type: EmbeddingInputType = EmbeddingInputType.DOCUMENT,
    ) -> MaybeAwaitable[TextEmbeddingResult]:
        raise NotImplementedError

    def get_num_tokens(
        self, model: str, credentials: Credentials, texts: list[str]
    ) -> MaybeAwaitable[list[int]]:
        """One count per text; an offline estimate unless overridden."""
        return [self._get_num_tokens_by_gpt2(text) for text in texts]

    async def invoke(
        self,
        model: str,
        credentials: Mapping[str, str],
        texts: list[str],
        user: str | None = None,
        input_type: EmbeddingInputType = EmbeddingInputType.DOCUMENT,
    ) -> TextEmbeddingResult:
        started = time.perf_counter()
        schema, checked, _ = await self.prepare(model, credentials, None)
        kwargs = {"input_type": input_type} if _takes(self._invoke, "input_type") else {}
        # The model's max_chunks bounds one upstream request; longer lists go in batches, in
        # order, so callers need not know each model's limit.
        size = schema.model_properties.max_chunks or len(texts) or 1
        result = TextEmbeddingResult(model="", embeddings=[], usage=EmbeddingUsage())
        for start in range(0, len(texts), size):
            batch = texts[start : start + size]
            part: TextEmbeddingResult = await self.call_impl(
                model, checked, self._invoke, model, checked, batch, user, **kwargs
            )
            if len(part.embeddings) != len(batch):
                raise InvokeServerUnavailableError(
                    f"the upstream returned {len(part.embeddings)} embeddings for "
                    f"{len(batch)} texts",
                    provider=self.provider_name,
                    model=model,
                )
            result.model = result.model or part.model
            result.embeddings.extend(part.embeddings)
            result.usage.tokens += part.usage.tokens
            result.usage.total_tokens += part.usage.total_tokens
        result.model = result.model or model
        if not result.usage.tokens:
            result.usage.tokens = sum(await self._counts(model, checked, texts))
        price_embedding_usage(result.usage, schema.pricing)
        result.usage.latency = time.perf_counter() - started
        return result

    async def count_tokens(
        self, model: str, credentials: Mapping[str, str], texts: list[str]
    ) -> list[int]:
        _, checked, _ = await self.prepare(model, credentials, None)
        return await self._counts(model, checked, texts)

    async def _counts(self, model: str, checked: Credentials, texts: list[str]) -> list[int]:
        counts = await self.call_impl(model, checked, self.get_num_tokens, model, checked, texts)
        # The seed's signature returned one total; accept it for a single text.
        return [int(counts)] if isinstance(counts, int) else [int(c) for c in counts]


def _takes(fn: object, name: str) -> bool:
    try:
        return name in inspect.signature(fn).parameters  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False
