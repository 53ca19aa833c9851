"""The fake speech-to-text model: reads back the text the fake TTS wrote into its WAV files;
any other audio is described by its size."""

from __future__ import annotations

from typing import IO

from providers.fake.models.tts.wav import text_in_wav
from providers.fake.upstream import check_call
from providers.sdk.errors import InvokeBadRequestError
from providers.sdk.model_types import Speech2TextModel
from providers.sdk.model_types.ai_model import Credentials


class FakeSpeech2TextModel(Speech2TextModel):
    async def _invoke(
        self, model: str, credentials: Credentials, file: IO[bytes], user: str | None = None
    ) -> str:
        check_call(credentials)
        audio = file.read()
        if not audio:
            raise InvokeBadRequestError("the audio file is empty")
        text = text_in_wav(audio)
        return text if text is not None else f"[{len(audio)} bytes of audio]"

    async def validate_credentials(self, model: str, credentials: Credentials) -> None:
        # A refusal becomes CREDENTIALS_VALIDATE_FAILED in the base class; an outage stays one.
        check_call(credentials)
