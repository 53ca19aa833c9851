"""OpenAI embeddings over `/embeddings`.

The base class sends the texts in batches of the model's `max_chunks`. Vectors are asked for in
base64 (little-endian float32, a quarter of the JSON of float lists, as OpenAI's own SDK does)
and decoded here. `text_embedding_dimensions`, when set, shortens text-embedding-3 vectors.
"""

from __future__ import annotations

from providers.openai.models.common import OpenAIApi, OpenAICredentialCheck
from providers.openai.models.llm import tokens
from providers.sdk.entities.results import (
    EmbeddingInputType,
    EmbeddingUsage,
    TextEmbeddingResult,
)
from providers.sdk.errors import FieldViolation, InvalidCredentialsError
from providers.sdk.model_types import TextEmbeddingModel
from providers.sdk.model_types.ai_model import Credentials
from providers.sdk.protocols import openai_wire

# Only the third generation can shorten its vectors; ada-002 refuses `dimensions`.
SHORTENABLE_MODELS = ("text-embedding-3",)


def dimensions(model: str, credentials: Credentials) -> int | None:
    value = (credentials.get("text_embedding_dimensions") or "").strip()
    if not value or not model.startswith(SHORTENABLE_MODELS):
        return None
    if not value.isdigit() or int(value) < 1:
        raise InvalidCredentialsError(
            [
                FieldViolation(
                    "credentials.text_embedding_dimensions", "should be a positive whole number"
                )
            ]
        )
    return int(value)


class OpenAITextEmbeddingModel(OpenAICredentialCheck, TextEmbeddingModel):
    async def _invoke(
        self,
        model: str,
        credentials: Credentials,
        texts: list[str],
        user: str | None = None,
        input_type: EmbeddingInputType = EmbeddingInputType.DOCUMENT,
    ) -> TextEmbeddingResult:
        body = openai_wire.embeddings_request_body(
            model, texts, dimensions=dimensions(model, credentials), user=user
        )
        answer = await OpenAIApi(credentials).post_json("/embeddings", body)
        vectors, prompt_tokens = openai_wire.embeddings_from_response(answer)
        return TextEmbeddingResult(
            model=str(answer.get("model") or model),
            embeddings=vectors,
            usage=EmbeddingUsage(tokens=prompt_tokens, total_tokens=prompt_tokens),
        )

    def get_num_tokens(self, model: str, credentials: Credentials, texts: list[str]) -> list[int]:
        return tokens.count_texts(model, texts)
