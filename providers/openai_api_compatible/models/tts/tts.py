"""Text to speech through `POST {base}/audio/speech`; the audio is passed on piece by piece as
the server sends it. The voices are the `voices` credential (comma-separated; the first is the
default), since a compatible server cannot be asked which voices it has.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator

from providers.sdk.entities.schema import (
    AIModelEntity,
    FetchFrom,
    ModelProperties,
    ModelType,
    Voice,
)
from providers.sdk.http import ErrorCheck, open_stream
from providers.sdk.model_types import TTSModel
from providers.sdk.model_types.ai_model import Credentials

from .. import common

AUDIO_FORMAT = "mp3"
DEFAULT_VOICE = "alloy"


class OpenAICompatibleTTSModel(TTSModel):
    async def _invoke(
        self,
        model: str,
        credentials: Credentials,
        content_text: str,
        voice: str,
        user: str | None = None,
    ) -> AsyncIterator[bytes]:
        return self._speak(model, credentials, content_text, voice, common.check)

    async def _speak(
        self,
        model: str,
        credentials: Credentials,
        content_text: str,
        voice: str,
        check: ErrorCheck,
    ) -> AsyncGenerator[bytes, None]:
        payload = {
            "model": common.upstream_model(model, credentials),
            "input": content_text,
            "voice": voice or voices(credentials)[0],
            "response_format": AUDIO_FORMAT,
        }
        async with open_stream(
            common.client(credentials),
            "POST",
            "audio/speech",
            check=check,
            json=payload,
            headers=common.headers(credentials),
        ) as response:
            async for piece in response.aiter_bytes():
                yield piece

    async def validate_credentials(self, model: str, credentials: Credentials) -> None:
        check = common.explained(common.check, credentials, "audio/speech")
        audio = self._speak(model, credentials, "Test.", voices(credentials)[0], check)
        try:
            # The first bytes prove the server speaks; the rest need not be generated.
            async for _piece in audio:
                break
        finally:
            await audio.aclose()

    def get_customizable_model_schema(
        self, model: str, credentials: Credentials
    ) -> AIModelEntity | None:
        offered = voices(credentials)
        return AIModelEntity(
            model=model,
            label=common.label(model, credentials),
            model_type=ModelType.TTS,
            fetch_from=FetchFrom.CUSTOMIZABLE_MODEL,
            model_properties=ModelProperties(
                default_voice=offered[0],
                voices=[Voice(mode=name, name=name) for name in offered],
                audio_type=AUDIO_FORMAT,
            ),
        )


def voices(credentials: Credentials) -> list[str]:
    names = [name.strip() for name in (credentials.get("voices") or "").split(",")]
    return [name for name in names if name] or [DEFAULT_VOICE]
