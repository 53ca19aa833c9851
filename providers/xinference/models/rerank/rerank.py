"""Xinference rerank models: `POST /v1/rerank`, a Cohere-shaped answer."""

from __future__ import annotations

from typing import Any

from providers.sdk.entities.results import RerankDocument, RerankResult
from providers.sdk.entities.schema import AIModelEntity
from providers.sdk.errors import InvokeServerUnavailableError
from providers.sdk.model_types import RerankModel
from providers.sdk.model_types.ai_model import Credentials
from providers.xinference.api import Connection, describe_as, request_json, validate
from providers.xinference.schemas import rerank_schema


class XinferenceRerankModel(RerankModel):
    async def _invoke(
        self,
        model: str,
        credentials: Credentials,
        query: str,
        docs: list[str],
        score_threshold: float | None = None,
        top_n: int | None = None,
        user: str | None = None,
    ) -> RerankResult:
        connection = Connection.of(credentials)
        await describe_as(connection, self.model_type)
        # The documents are not asked back: results point into `docs` by index. The base class
        # orders the results and applies the threshold and top_n (also sent, to save work).
        body = await request_json(
            connection,
            "POST",
            "/v1/rerank",
            json={
                "model": connection.model_uid,
                "query": query,
                "documents": docs,
                "top_n": top_n,
                "return_documents": False,
            },
        )
        return RerankResult(model=model, docs=_ranked(body, docs))

    async def validate_credentials(self, model: str, credentials: Credentials) -> None:
        await validate(Connection.of(credentials), self.model_type)

    async def get_customizable_model_schema(
        self, model: str, credentials: Credentials
    ) -> AIModelEntity:
        return rerank_schema(model, await describe_as(Connection.of(credentials), self.model_type))


def _ranked(body: Any, docs: list[str]) -> list[RerankDocument]:
    results = body.get("results") if isinstance(body, dict) else None
    if not isinstance(results, list):
        raise InvokeServerUnavailableError("the Xinference rerank answer has no results list")
    ranked = []
    for result in results:
        try:
            index = int(result["index"])
            score = float(result["relevance_score"])
        except (KeyError, TypeError, ValueError) as exc:
            raise InvokeServerUnavailableError(
                f"the Xinference rerank answer has a malformed result: {str(result)[:200]}"
            ) from exc
        if not 0 <= index < len(docs):
            raise InvokeServerUnavailableError(
                f"the Xinference rerank answer points at document {index} of {len(docs)}"
            )
        ranked.append(RerankDocument(index=index, text=docs[index], score=score))
    return ranked
