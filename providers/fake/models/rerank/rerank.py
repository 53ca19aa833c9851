"""The fake rerank model: a document's score is the share of the query's words it contains."""

from __future__ import annotations

import re

from providers.fake.upstream import check_call
from providers.sdk.entities.results import RerankDocument, RerankResult
from providers.sdk.model_types import RerankModel
from providers.sdk.model_types.ai_model import Credentials

_WORD = re.compile(r"\w+")


class FakeRerankModel(RerankModel):
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
        check_call(credentials)
        query_words = set(_WORD.findall(query.lower()))
        scored = [
            RerankDocument(index=i, text=doc, score=_overlap(query_words, doc))
            for i, doc in enumerate(docs)
        ]
        return RerankResult(model=model, docs=scored)

    async def validate_credentials(self, model: str, credentials: Credentials) -> None:
        # A refusal becomes CREDENTIALS_VALIDATE_FAILED in the base class; an outage stays one.
        check_call(credentials)


def _overlap(query_words: set[str], doc: str) -> float:
    if not query_words:
        return 0.0
    return round(len(query_words & set(_WORD.findall(doc.lower()))) / len(query_words), 6)
