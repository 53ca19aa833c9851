"""Speech to text through `POST {base}/audio/transcriptions` (multipart: `file`, `model`, and
the optional `language` and `prompt` from the credentials).

The answer is `{"text": ...}` (the default `json` format); servers that answer with a plain-text
body (whisper.cpp's `text` format, some gateways) are read too.
"""

from __future__ import annotations

import io
import json
import wave
from typing import IO

import httpx

from providers.sdk.entities.schema import (
    AIModelEntity,
    FetchFrom,
    ModelProperties,
    ModelType,
)
from providers.sdk.errors import InvokeServerUnavailableError
from providers.sdk.http import ErrorCheck, request, upstream_errors
from providers.sdk.model_types import Speech2TextModel
from providers.sdk.model_types.ai_model import Credentials
from providers.sdk.protocols import openai_wire

from .. import common

# What OpenAI's endpoint accepts; most compatible servers (whisper.cpp, faster-whisper,
# LocalAI) decode the same containers with ffmpeg.
SUPPORTED_EXTENSIONS = "flac,mp3,mp4,mpeg,mpga,m4a,ogg,wav,webm"
UPLOAD_LIMIT_MB = 25


class OpenAICompatibleSpeech2TextModel(Speech2TextModel):
    async def _invoke(
        self, model: str, credentials: Credentials, file: IO[bytes], user: str | None = None
    ) -> str:
        return await self._transcribe(model, credentials, file, common.check)

    async def _transcribe(
        self, model: str, credentials: Credentials, file: IO[bytes], check: ErrorCheck
    ) -> str:
        fields = {"model": common.upstream_model(model, credentials)}
        if language := credentials.get("language"):
            fields["language"] = language
        if prompt := credentials.get("initial_prompt"):
            fields["prompt"] = prompt
        name = getattr(file, "name", "") or "audio"
        response = await request(
            common.client(credentials),
            "POST",
            "audio/transcriptions",
            check=check,
            data=fields,
            files={"file": (name, file.read())},
            headers=common.headers(credentials),
        )
        return transcript(response)

    async def validate_credentials(self, model: str, credentials: Credentials) -> None:
        check = common.explained(common.check, credentials, "audio/transcriptions")
        await self._transcribe(model, credentials, _half_a_second_of_silence(), check)

    def get_customizable_model_schema(
        self, model: str, credentials: Credentials
    ) -> AIModelEntity | None:
        return AIModelEntity(
            model=model,
            label=common.label(model, credentials),
            model_type=ModelType.SPEECH2TEXT,
            fetch_from=FetchFrom.CUSTOMIZABLE_MODEL,
            model_properties=ModelProperties(
                file_upload_limit=UPLOAD_LIMIT_MB,
                supported_file_extensions=SUPPORTED_EXTENSIONS,
            ),
        )


def transcript(response: httpx.Response) -> str:
    """The text of a transcription answer: `{"text": ...}`, or a plain-text body."""
    if "json" not in response.headers.get("content-type", ""):
        return response.text.strip()
    with upstream_errors():
        body = json.loads(response.content)
    if isinstance(body, dict) and "error" in body:
        raise openai_wire.in_band_error(body)
    if not isinstance(body, dict) or not isinstance(body.get("text"), str):
        raise InvokeServerUnavailableError("the server's transcription answer has no text field")
    return str(body["text"])


def _half_a_second_of_silence() -> IO[bytes]:
    """A tiny valid WAV file: the cheapest audio every transcription server accepts."""
    audio = io.BytesIO()
    with wave.open(audio, "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(16000)
        writer.writeframes(b"\0\0" * 8000)
    audio.seek(0)
    audio.name = "validation.wav"
    return audio
