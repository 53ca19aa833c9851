"""The rerank base class."""

from __future__ import annotations

from collections.abc import Mapping

from providers.sdk.entities.results import RerankResult
from providers.sdk.entities.schema import ModelType
from providers.sdk.model_types.ai_model import AIModel, Credentials, MaybeAwaitable


class RerankModel(AIModel):
    """Implement `_invoke(model, credentials, query, docs, score_threshold=None, top_n=None,
    user=None)` returning a RerankResult, and `validate_credentials`. The base class then
    guarantees what the contract promises, whatever the upstream did: documents best first,
    none below the threshold, at most `top_n`."""

    model_type = ModelType.RERANK

    def _invoke(
        self,
        model: str,
        credentials: Credentials,
        query: str,
        docs: list[str],
        score_threshold: float | None = None,
        top_n: int | None = None,
        user: str | None = None,
    ) -> MaybeAwaitable[RerankResult]:
        raise NotImplementedError

    async def invoke(
        self,
        model: str,
        credentials: Mapping[str, str],
        query: str,
        docs: list[str],
        score_threshold: float | None = None,
        top_n: int | None = None,
        user: str | None = None,
    ) -> RerankResult:
        _, checked, _ = await self.prepare(model, credentials, None)
        if not docs:
            return RerankResult(model=model, docs=[])
        result: RerankResult = await self.call_impl(
            model, checked, self._invoke, model, checked, query, docs, score_threshold, top_n, user
        )
        ranked = sorted(result.docs, key=lambda d: d.score, reverse=True)
        if score_threshold is not None:
            ranked = [d for d in ranked if d.score >= score_threshold]
        if top_n is not None:
            ranked = ranked[:top_n]
        return RerankResult(model=result.model or model, docs=ranked)
