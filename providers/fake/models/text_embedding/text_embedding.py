"""The fake embedding model: 16 deterministic unit-length components per text, derived from
the text's SHA-256, so equal texts embed equally and different texts differ."""

from __future__ import annotations

import hashlib
import math

from providers.fake.upstream import check_call
from providers.sdk.entities.results import EmbeddingInputType, EmbeddingUsage, TextEmbeddingResult
from providers.sdk.model_types import TextEmbeddingModel
from providers.sdk.model_types.ai_model import Credentials

DIMENSIONS = 16


class FakeTextEmbeddingModel(TextEmbeddingModel):
    async def _invoke(
        self,
        model: str,
        credentials: Credentials,
        texts: list[str],
        user: str | None = None,
        input_type: EmbeddingInputType = EmbeddingInputType.DOCUMENT,
    ) -> TextEmbeddingResult:
        check_call(credentials)
        tokens = sum(self._get_num_tokens_by_gpt2(text) for text in texts)
        return TextEmbeddingResult(
            model=model,
            embeddings=[embed(text) for text in texts],
            usage=EmbeddingUsage(tokens=tokens, total_tokens=tokens),
        )

    async def validate_credentials(self, model: str, credentials: Credentials) -> None:
        # A refusal becomes CREDENTIALS_VALIDATE_FAILED in the base class; an outage stays one.
        check_call(credentials)


def embed(text: str) -> list[float]:
    digest = hashlib.sha256(text.encode()).digest()
    raw = [(byte - 127.5) / 127.5 for byte in digest[:DIMENSIONS]]
    norm = math.sqrt(sum(x * x for x in raw)) or 1.0
    return [x / norm for x in raw]
