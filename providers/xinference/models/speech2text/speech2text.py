"""Xinference speech-to-text models (Whisper, SenseVoice, Paraformer, ...):
multipart `POST /v1/audio/transcriptions`."""

from __future__ import annotations

from typing import IO

from providers.sdk.entities.schema import AIModelEntity
from providers.sdk.errors import InvokeServerUnavailableError
from providers.sdk.model_types import Speech2TextModel
from providers.sdk.model_types.ai_model import Credentials
from providers.xinference.api import Connection, describe_as, request_json, validate
from providers.xinference.schemas import speech2text_schema


class XinferenceSpeech2TextModel(Speech2TextModel):
    async def _invoke(
        self, model: str, credentials: Credentials, file: IO[bytes], user: str | None = None
    ) -> str:
        connection = Connection.of(credentials)
        await describe_as(connection, self.model_type)
        # Bytes, not the file object, so a retried request sends the audio again.
        audio = file.read()
        body = await request_json(
            connection,
            "POST",
            "/v1/audio/transcriptions",
            data={"model": connection.model_uid, "response_format": "json"},
            files={"file": (getattr(file, "name", "audio"), audio, "application/octet-stream")},
        )
        text = body.get("text") if isinstance(body, dict) else None
        if not isinstance(text, str):
            raise InvokeServerUnavailableError("the Xinference transcription has no text")
        return text

    async def validate_credentials(self, model: str, credentials: Credentials) -> None:
        await validate(Connection.of(credentials), self.model_type)

    async def get_customizable_model_schema(
        self, model: str, credentials: Credentials
    ) -> AIModelEntity:
        description = await describe_as(Connection.of(credentials), self.model_type)
        return speech2text_schema(model, description)
