"""OpenAI speech over `/audio/speech`: the audio is passed on piece by piece as it arrives.

OpenAI takes at most the model's `word_limit` characters per request; a longer text is sent
in several requests, cut after sentences, and their audio follows one after another (MP3
frames play back to back).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

from providers.openai.models.common import OpenAIApi, OpenAICredentialCheck
from providers.sdk.model_types import TTSModel
from providers.sdk.model_types.ai_model import Credentials

DEFAULT_CHARS_PER_REQUEST = 4096
# A sentence with the punctuation and whitespace that end it (or the text's unended tail).
_SENTENCE = re.compile(r".+?(?:[.!?。！？\n]+\s*|$)", re.DOTALL)


def split_text(text: str, limit: int) -> list[str]:
    """`text` in pieces of at most `limit` characters, cut after sentences where possible."""
    pieces: list[str] = []
    current = ""
    for sentence in _SENTENCE.findall(text):
        if current and len(current) + len(sentence) > limit:
            pieces.append(current)
            current = ""
        while len(sentence) > limit:
            pieces.append(sentence[:limit])
            sentence = sentence[limit:]
        current += sentence
    pieces.append(current)
    return [piece.strip() for piece in pieces if piece.strip()] or [text]


class OpenAITTSModel(OpenAICredentialCheck, TTSModel):
    async def _invoke(
        self,
        model: str,
        credentials: Credentials,
        content_text: str,
        voice: str,
        user: str | None = None,
    ) -> AsyncIterator[bytes]:
        schema = self.predefined_models[model]
        properties = schema.model_properties
        texts = split_text(content_text, properties.word_limit or DEFAULT_CHARS_PER_REQUEST)
        audio_format = (properties.audio_type or "mp3").lower()
        return self._audio(OpenAIApi(credentials), model, voice, audio_format, texts)

    async def _audio(
        self, api: OpenAIApi, model: str, voice: str, audio_format: str, texts: list[str]
    ) -> AsyncIterator[bytes]:
        for text in texts:
            body = {"model": model, "input": text, "voice": voice, "response_format": audio_format}
            async with api.stream("/audio/speech", body) as response:
                async for piece in response.aiter_bytes():
                    yield piece
