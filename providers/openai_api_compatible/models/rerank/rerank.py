"""Rerank through `POST {base}/rerank` (or the `rerank_endpoint_url` credential).

Servers answer in one of three shapes, all read here: Cohere's (`results` + `meta`), Jina's
(`results` + `usage`) and vLLM's (`id`, `model`, `usage`, `results`); Hugging Face TEI answers
with a bare list. Each result has the document's `index` and its `relevance_score` (`score` on
TEI); `document` may be absent, null, `{"text": ...}` or a bare string. The text returned to the
caller is always the caller's own document at that index, so none of those variants matter. The
base class orders the results best first and applies the threshold and top_n.
"""

from __future__ import annotations

from typing import Any

from providers.sdk.entities.results import RerankDocument, RerankResult
from providers.sdk.entities.schema import (
    AIModelEntity,
    FetchFrom,
    ModelProperties,
    ModelType,
)
from providers.sdk.errors import InvokeServerUnavailableError
from providers.sdk.http import ErrorCheck, request_json
from providers.sdk.model_types import RerankModel
from providers.sdk.model_types.ai_model import Credentials

from .. import common

VALIDATION_QUERY = "What is the capital of France?"
VALIDATION_DOCS = ["Paris is the capital of France.", "Bananas are yellow."]


class OpenAICompatibleRerankModel(RerankModel):
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
        body = await self._rerank(model, credentials, query, docs, top_n, common.check)
        return RerankResult(model=model, docs=ranked_documents(body, docs))

    async def _rerank(
        self,
        model: str,
        credentials: Credentials,
        query: str,
        docs: list[str],
        top_n: int | None,
        check: ErrorCheck,
    ) -> Any:
        payload = {
            "model": common.upstream_model(model, credentials),
            "query": query,
            "documents": docs,
            "top_n": top_n if top_n is not None else len(docs),
        }
        return await request_json(
            common.client(credentials),
            "POST",
            _rerank_url(credentials),
            check=check,
            json=payload,
            headers=common.headers(credentials),
        )

    async def validate_credentials(self, model: str, credentials: Credentials) -> None:
        check = common.explained(common.check, credentials, "rerank")
        body = await self._rerank(model, credentials, VALIDATION_QUERY, VALIDATION_DOCS, 2, check)
        ranked_documents(body, VALIDATION_DOCS)

    def get_customizable_model_schema(
        self, model: str, credentials: Credentials
    ) -> AIModelEntity | None:
        return AIModelEntity(
            model=model,
            label=common.label(model, credentials),
            model_type=ModelType.RERANK,
            fetch_from=FetchFrom.CUSTOMIZABLE_MODEL,
            model_properties=ModelProperties(
                context_size=common.int_credential(credentials, "context_size", 4096)
            ),
        )


def _rerank_url(credentials: Credentials) -> str:
    # An absolute URL overrides the client's base URL (httpx), so one pooled client serves both.
    return (credentials.get("rerank_endpoint_url") or "").strip() or "rerank"


def ranked_documents(body: Any, docs: list[str]) -> list[RerankDocument]:
    """The scored documents of a rerank answer in any of the shapes above."""
    results = body.get("results") if isinstance(body, dict) else body
    if not isinstance(results, list):
        raise _malformed("it has no results list")
    ranked = []
    for result in results:
        if not isinstance(result, dict):
            raise _malformed("a result is not an object")
        index = result.get("index")
        score = result.get("relevance_score", result.get("score"))
        if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < len(docs):
            raise _malformed(f"a result has index {index!r} for {len(docs)} documents")
        if not isinstance(score, int | float) or isinstance(score, bool):
            raise _malformed(f"the result for document {index} has no numeric relevance_score")
        ranked.append(RerankDocument(index=index, text=docs[index], score=float(score)))
    ranked.sort(key=lambda doc: doc.score, reverse=True)
    return ranked


def _malformed(reason: str) -> InvokeServerUnavailableError:
    return InvokeServerUnavailableError(f"the server's rerank answer is malformed: {reason}")
