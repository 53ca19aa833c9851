from __future__ import annotations

from providers.sdk.entities.results import EmbeddingInputType, EmbeddingUsage, TextEmbeddingResult
from providers.sdk.model_types import TextEmbeddingModel

from ...upstream import call


class RecorderTextEmbeddingModel(TextEmbeddingModel):
    async def _invoke(
        self,
        model: str,
        credentials: dict[str, str],
        texts: list[str],
        user: str | None = None,
        input_type: EmbeddingInputType = EmbeddingInputType.DOCUMENT,
    ) -> TextEmbeddingResult:
        call("text-embedding", model, credentials)
        return TextEmbeddingResult(
            model=model,
            embeddings=[[1.0] for _ in texts],
            usage=EmbeddingUsage(tokens=len(texts), total_tokens=len(texts)),
        )

    def get_num_tokens(
        self, model: str, credentials: dict[str, str], texts: list[str]
    ) -> list[int]:
        call("text-embedding", model, credentials)
        return [1 for _ in texts]

    async def validate_credentials(self, model: str, credentials: dict[str, str]) -> None:
        call("text-embedding", model, credentials)
