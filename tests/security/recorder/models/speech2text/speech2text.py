from __future__ import annotations

from typing import IO

from providers.sdk.model_types import Speech2TextModel

from ...upstream import call


class RecorderSpeech2TextModel(Speech2TextModel):
    async def _invoke(
        self, model: str, credentials: dict[str, str], file: IO[bytes], user: str | None = None
    ) -> str:
        call("speech2text", model, credentials)
        return f"{len(file.read())} bytes"

    async def validate_credentials(self, model: str, credentials: dict[str, str]) -> None:
        call("speech2text", model, credentials)
