"""Xinference text-to-speech models (ChatTTS, CosyVoice, ...): `POST /v1/audio/speech`, raw
audio bytes passed on as they arrive."""

from __future__ import annotations

from collections.abc import AsyncIterator

from providers.sdk import http
from providers.sdk.entities.schema import AIModelEntity
from providers.sdk.model_types import TTSModel
from providers.sdk.model_types.ai_model import Credentials
from providers.xinference.api import Connection, describe_as, open_stream, validate
from providers.xinference.schemas import tts_schema

# Families whose models synthesise in `stream` mode; others refuse it, so they are asked for the
# whole file, which is still passed on piece by piece as the server sends it.
_STREAMING_FAMILIES = ("chattts", "cosyvoice", "fishaudio", "fishspeech")


class XinferenceTTSModel(TTSModel):
    async def _invoke(
        self,
        model: str,
        credentials: Credentials,
        content_text: str,
        voice: str,
        user: str | None = None,
    ) -> AsyncIterator[bytes]:
        connection = Connection.of(credentials)
        description = await describe_as(connection, self.model_type)
        payload: dict[str, object] = {
            "model": connection.model_uid,
            "input": content_text,
            "response_format": "mp3",
            "speed": 1.0,
            "stream": description.model_family.lower().startswith(_STREAMING_FAMILIES),
        }
        if voice:
            payload["voice"] = voice
        return self._audio(connection, payload)

    @staticmethod
    async def _audio(connection: Connection, payload: dict[str, object]) -> AsyncIterator[bytes]:
        async with open_stream(connection, "POST", "/v1/audio/speech", json=payload) as response:
            with http.upstream_errors():
                async for piece in response.aiter_bytes():
                    yield piece

    async def validate_credentials(self, model: str, credentials: Credentials) -> None:
        await validate(Connection.of(credentials), self.model_type)

    async def get_customizable_model_schema(
        self, model: str, credentials: Credentials
    ) -> AIModelEntity:
        return tts_schema(model, await describe_as(Connection.of(credentials), self.model_type))
