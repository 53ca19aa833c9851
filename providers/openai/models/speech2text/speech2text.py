"""OpenAI transcription over `/audio/transcriptions` (multipart: `file`, `model`,
`response_format=json`).

OpenAI reads the audio format from the file name's extension, so a file sent without a known
extension is named after the format its first bytes show.
"""

from __future__ import annotations

import mimetypes
from typing import IO, Any

from providers.openai.models.common import OpenAIApi, OpenAICredentialCheck
from providers.sdk.errors import FieldViolation, InvalidRequestError, InvokeServerUnavailableError
from providers.sdk.model_types import Speech2TextModel
from providers.sdk.model_types.ai_model import Credentials

DEFAULT_EXTENSIONS = "flac,mp3,mp4,mpeg,mpga,m4a,ogg,wav,webm"
_MEGABYTE = 1024 * 1024

# Leading bytes of the formats OpenAI accepts, and the extension that names each.
_SIGNATURES: tuple[tuple[bytes, int, str], ...] = (
    (b"RIFF", 0, "wav"),
    (b"ID3", 0, "mp3"),
    (b"\xff\xfb", 0, "mp3"),
    (b"\xff\xf3", 0, "mp3"),
    (b"\xff\xf2", 0, "mp3"),
    (b"OggS", 0, "ogg"),
    (b"fLaC", 0, "flac"),
    (b"\x1a\x45\xdf\xa3", 0, "webm"),
    (b"ftyp", 4, "m4a"),
)


class OpenAISpeech2TextModel(OpenAICredentialCheck, Speech2TextModel):
    async def _invoke(
        self, model: str, credentials: Credentials, file: IO[bytes], user: str | None = None
    ) -> str:
        audio = file.read()
        properties = self.predefined_models[model].model_properties
        extensions = (properties.supported_file_extensions or DEFAULT_EXTENSIONS).split(",")
        limit = properties.file_upload_limit
        if limit and len(audio) > limit * _MEGABYTE:
            raise InvalidRequestError(
                [FieldViolation("file", f"is larger than {model}'s limit of {limit} MB")]
            )
        filename = _named_by_format(getattr(file, "name", "") or "audio", audio, extensions)
        content_type = mimetypes.guess_type(filename)[0] or "application/octet-stream"
        answer = await OpenAIApi(credentials).post_form_json(
            "/audio/transcriptions",
            data={"model": model, "response_format": "json"},
            files={"file": (filename, audio, content_type)},
        )
        return _transcript(answer)


def _named_by_format(filename: str, audio: bytes, extensions: list[str]) -> str:
    extension = filename.rpartition(".")[2].lower() if "." in filename else ""
    if extension in extensions:
        return filename
    for signature, offset, sniffed in _SIGNATURES:
        if audio[offset : offset + len(signature)] == signature:
            return f"{filename}.{sniffed}"
    return filename


def _transcript(answer: Any) -> str:
    text = answer.get("text") if isinstance(answer, dict) else None
    if not isinstance(text, str):
        raise InvokeServerUnavailableError("the upstream's transcription answer has no text")
    return text
