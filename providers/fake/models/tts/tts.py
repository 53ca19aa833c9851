"""The fake TTS model: a WAV of silence, a tenth of a second per word, carrying the text."""

from __future__ import annotations

from collections.abc import AsyncIterator

from providers.fake.models.tts.wav import wav_with_text
from providers.fake.upstream import check_call
from providers.sdk.model_types import TTSModel
from providers.sdk.model_types.ai_model import Credentials

PIECE_BYTES = 4096


class FakeTTSModel(TTSModel):
    async def _invoke(
        self,
        model: str,
        credentials: Credentials,
        content_text: str,
        voice: str,
        user: str | None = None,
    ) -> AsyncIterator[bytes]:
        check_call(credentials)
        return self._pieces_of(wav_with_text(content_text, 0.1 * len(content_text.split())))

    @staticmethod
    async def _pieces_of(audio: bytes) -> AsyncIterator[bytes]:
        for start in range(0, len(audio), PIECE_BYTES):
            yield audio[start : start + PIECE_BYTES]

    async def validate_credentials(self, model: str, credentials: Credentials) -> None:
        # A refusal becomes CREDENTIALS_VALIDATE_FAILED in the base class; an outage stays one.
        check_call(credentials)
