"""Embeddings through `POST {base}/embeddings`.

`encoding_format` is sent only when the credential asks for one (`not_set`, the default, leaves
the server's default, float lists); answers in float lists and in base64 are both read.
`dimensions` is sent when set. The `document_prefix` / `query_prefix` credentials are put before
each text by input type (for models such as E5 that expect `passage: ` / `query: `). The base
class sends at most `max_chunks` texts per request.
"""

from __future__ import annotations

from providers.sdk.entities.results import EmbeddingInputType, EmbeddingUsage, TextEmbeddingResult
from providers.sdk.entities.schema import (
    AIModelEntity,
    FetchFrom,
    ModelProperties,
    ModelType,
)
from providers.sdk.errors import CredentialsValidateFailedError
from providers.sdk.http import ErrorCheck, request_json
from providers.sdk.model_types import TextEmbeddingModel
from providers.sdk.model_types.ai_model import Credentials
from providers.sdk.protocols import openai_wire

from .. import common


class OpenAICompatibleTextEmbeddingModel(TextEmbeddingModel):
    async def _invoke(
        self,
        model: str,
        credentials: Credentials,
        texts: list[str],
        user: str | None = None,
        input_type: EmbeddingInputType = EmbeddingInputType.DOCUMENT,
    ) -> TextEmbeddingResult:
        prefix_variable = (
            "query_prefix" if input_type is EmbeddingInputType.QUERY else "document_prefix"
        )
        prefix = credentials.get(prefix_variable) or ""
        vectors, tokens = await self._embed(
            model, credentials, [prefix + text for text in texts], common.check
        )
        return TextEmbeddingResult(
            model=model,
            embeddings=vectors,
            usage=EmbeddingUsage(tokens=tokens, total_tokens=tokens),
        )

    async def _embed(
        self, model: str, credentials: Credentials, texts: list[str], check: ErrorCheck
    ) -> tuple[list[list[float]], int]:
        encoding_format = credentials.get("encoding_format") or "not_set"
        body = openai_wire.embeddings_request_body(
            common.upstream_model(model, credentials),
            texts,
            encoding_format=None if encoding_format == "not_set" else encoding_format,
            dimensions=common.int_credential(credentials, "dimensions", 0) or None,
        )
        answer = await request_json(
            common.client(credentials),
            "POST",
            "embeddings",
            check=check,
            json=body,
            headers=common.headers(credentials),
        )
        return openai_wire.embeddings_from_response(answer)

    async def validate_credentials(self, model: str, credentials: Credentials) -> None:
        check = common.explained(common.check, credentials, "embeddings")
        vectors, _ = await self._embed(model, credentials, ["ping"], check)
        if len(vectors) != 1 or not vectors[0]:
            raise CredentialsValidateFailedError(
                "the server answered, but not with one embedding for one text: check that "
                "endpoint_model_name names an embedding model"
            )

    def get_customizable_model_schema(
        self, model: str, credentials: Credentials
    ) -> AIModelEntity | None:
        return AIModelEntity(
            model=model,
            label=common.label(model, credentials),
            model_type=ModelType.TEXT_EMBEDDING,
            fetch_from=FetchFrom.CUSTOMIZABLE_MODEL,
            model_properties=ModelProperties(
                context_size=common.int_credential(credentials, "context_size", 4096),
                max_chunks=common.int_credential(credentials, "max_chunks", 1),
            ),
        )
