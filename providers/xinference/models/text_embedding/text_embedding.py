"""Xinference embedding models: `POST /v1/embeddings`, vectors always as float lists."""

from __future__ import annotations

from providers.sdk.entities.results import (
    EmbeddingInputType,
    EmbeddingUsage,
    TextEmbeddingResult,
)
from providers.sdk.entities.schema import AIModelEntity
from providers.sdk.model_types import TextEmbeddingModel
from providers.sdk.model_types.ai_model import Credentials
from providers.sdk.protocols.openai_wire import embeddings_from_response, embeddings_request_body
from providers.xinference.api import Connection, describe_as, request_json, validate
from providers.xinference.schemas import text_embedding_schema


class XinferenceTextEmbeddingModel(TextEmbeddingModel):
    async def _invoke(
        self,
        model: str,
        credentials: Credentials,
        texts: list[str],
        user: str | None = None,
        input_type: EmbeddingInputType = EmbeddingInputType.DOCUMENT,
    ) -> TextEmbeddingResult:
        connection = Connection.of(credentials)
        await describe_as(connection, self.model_type)
        # Xinference ignores encoding_format (always floats) and passes unknown keys such as
        # `user` to the engine, so neither is sent; its embedders take no input type.
        body = embeddings_request_body(connection.model_uid, texts, encoding_format=None)
        answer = await request_json(connection, "POST", "/v1/embeddings", json=body)
        vectors, tokens = embeddings_from_response(answer)
        return TextEmbeddingResult(
            model=model,
            embeddings=vectors,
            usage=EmbeddingUsage(tokens=tokens, total_tokens=tokens),
        )

    async def validate_credentials(self, model: str, credentials: Credentials) -> None:
        await validate(Connection.of(credentials), self.model_type)

    async def get_customizable_model_schema(
        self, model: str, credentials: Credentials
    ) -> AIModelEntity:
        description = await describe_as(Connection.of(credentials), self.model_type)
        return text_embedding_schema(model, description)
