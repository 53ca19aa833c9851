"""The speech-to-text base class."""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import IO

from providers.sdk.entities.schema import ModelType
from providers.sdk.model_types.ai_model import AIModel, Credentials, MaybeAwaitable


class Speech2TextModel(AIModel):
    """Implement `_invoke(model, credentials, file, user=None)` returning the transcript, and
    `validate_credentials`. `file` is a binary file object whose `name` is the caller's file
    name (its extension tells most upstreams the format)."""

    model_type = ModelType.SPEECH2TEXT

    def _invoke(
        self, model: str, credentials: Credentials, file: IO[bytes], user: str | None = None
    ) -> MaybeAwaitable[str]:
        raise NotImplementedError

    async def invoke(
        self,
        model: str,
        credentials: Mapping[str, str],
        file: bytes,
        filename: str = "",
        user: str | None = None,
    ) -> str:
        _, checked, _ = await self.prepare(model, credentials, None)
        audio = io.BytesIO(file)
        audio.name = filename or "audio"
        transcript = await self.call_impl(model, checked, self._invoke, model, checked, audio, user)
        return str(transcript)
