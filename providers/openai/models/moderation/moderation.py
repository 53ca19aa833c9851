"""OpenAI moderation over `/moderations`: flagged when any piece of the text is flagged.

A long text is cut into pieces of the model's `max_characters_per_chunk`, sent `max_chunks`
pieces per request; the first flagged batch answers without sending the rest.
"""

from __future__ import annotations

from typing import Any

from providers.openai.models.common import OpenAIApi, OpenAICredentialCheck
from providers.sdk.errors import InvokeServerUnavailableError
from providers.sdk.model_types import ModerationModel
from providers.sdk.model_types.ai_model import Credentials

DEFAULT_PIECE_CHARS = 2000
DEFAULT_PIECES_PER_REQUEST = 32


class OpenAIModerationModel(OpenAICredentialCheck, ModerationModel):
    async def _invoke(
        self, model: str, credentials: Credentials, text: str, user: str | None = None
    ) -> bool:
        properties = self.predefined_models[model].model_properties
        piece_chars = properties.max_characters_per_chunk or DEFAULT_PIECE_CHARS
        per_request = properties.max_chunks or DEFAULT_PIECES_PER_REQUEST
        pieces = [text[i : i + piece_chars] for i in range(0, len(text), piece_chars)] or [""]
        api = OpenAIApi(credentials)
        for start in range(0, len(pieces), per_request):
            batch = pieces[start : start + per_request]
            answer = await api.post_json("/moderations", {"model": model, "input": batch})
            if any(result.get("flagged") for result in _results(answer, len(batch))):
                return True
        return False


def _results(answer: Any, expected: int) -> list[dict[str, Any]]:
    results = answer.get("results") if isinstance(answer, dict) else None
    if not isinstance(results, list) or len(results) != expected:
        raise InvokeServerUnavailableError(
            f"the upstream's moderation answer does not hold {expected} results"
        )
    return [r for r in results if isinstance(r, dict)]
