"""The text-to-speech base class."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping

from providers.sdk.concurrency import iterate
from providers.sdk.entities.schema import AIModelEntity, ModelType
from providers.sdk.errors import FieldViolation, InvalidRequestError
from providers.sdk.model_types.ai_model import AIModel, Credentials, MaybeAwaitable

_MIME_TYPES = {
    "mp3": "audio/mpeg",
    "wav": "audio/wav",
    "ogg": "audio/ogg",
    "opus": "audio/ogg",
    "aac": "audio/aac",
    "flac": "audio/flac",
    "mp4": "audio/mp4",
    "pcm": "audio/pcm",
}

AudioResult = bytes | Iterator[bytes] | AsyncIterator[bytes]


class TTSModel(AIModel):
    """Implement `_invoke(model, credentials, content_text, voice, user=None)` returning the
    audio as bytes or as a (sync or async) generator of byte pieces, and
    `validate_credentials`. The voice has been checked against the model's `voices` and
    defaulted to its `default_voice`."""

    model_type = ModelType.TTS

    def _invoke(
        self,
        model: str,
        credentials: Credentials,
        content_text: str,
        voice: str,
        user: str | None = None,
    ) -> MaybeAwaitable[AudioResult]:
        raise NotImplementedError

    async def invoke(
        self,
        model: str,
        credentials: Mapping[str, str],
        content_text: str,
        voice: str = "",
        user: str | None = None,
    ) -> tuple[str, AsyncIterator[bytes]]:
        """The audio's MIME type and its bytes, piece by piece as the upstream produces them."""
        schema, checked, _ = await self.prepare(model, credentials, None)
        voice = self._checked_voice(schema, voice)
        audio = await self.call_impl(
            model, checked, self._invoke, model, checked, content_text, voice, user
        )
        return self.mime_type(schema), self._pieces(model, checked, audio)

    @staticmethod
    def mime_type(schema: AIModelEntity) -> str:
        audio_type = (schema.model_properties.audio_type or "mp3").lower()
        return _MIME_TYPES.get(audio_type, f"audio/{audio_type}")

    def _checked_voice(self, schema: AIModelEntity, voice: str) -> str:
        properties = schema.model_properties
        voice = voice or properties.default_voice or ""
        offered = [v.mode for v in properties.voices]
        if offered and voice not in offered:
            raise InvalidRequestError(
                [FieldViolation("voice", f"should be one of {', '.join(offered)}")],
                provider=self.provider_name,
                model=schema.model,
            )
        return voice

    async def _pieces(
        self, model: str, credentials: Credentials, audio: AudioResult
    ) -> AsyncIterator[bytes]:
        if isinstance(audio, bytes | bytearray):
            yield bytes(audio)
            return
        pieces = iterate(audio)
        try:
            with self.mapped_errors(model, credentials):
                async for piece in pieces:
                    if piece:
                        yield piece
        finally:
            await pieces.aclose()
