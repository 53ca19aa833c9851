"""The moderation base class."""

from __future__ import annotations

from collections.abc import Mapping

from providers.sdk.entities.schema import ModelType
from providers.sdk.model_types.ai_model import AIModel, Credentials, MaybeAwaitable


class ModerationModel(AIModel):
    """Implement `_invoke(model, credentials, text, user=None)` returning True when the text is
    flagged, and `validate_credentials`."""

    model_type = ModelType.MODERATION

    def _invoke(
        self, model: str, credentials: Credentials, text: str, user: str | None = None
    ) -> MaybeAwaitable[bool]:
        raise NotImplementedError

    async def invoke(
        self, model: str, credentials: Mapping[str, str], text: str, user: str | None = None
    ) -> bool:
        _, checked, _ = await self.prepare(model, credentials, None)
        return bool(await self.call_impl(model, checked, self._invoke, model, checked, text, user))
