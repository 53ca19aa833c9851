"""The fake moderation model: flags a text containing any word of a fixed list."""

from __future__ import annotations

import re

from providers.fake.upstream import check_call
from providers.sdk.model_types import ModerationModel
from providers.sdk.model_types.ai_model import Credentials

FLAGGED_WORDS = frozenset({"attack", "bomb", "kill", "weapon"})
_WORD = re.compile(r"\w+")


class FakeModerationModel(ModerationModel):
    async def _invoke(
        self, model: str, credentials: Credentials, text: str, user: str | None = None
    ) -> bool:
        check_call(credentials)
        return not FLAGGED_WORDS.isdisjoint(_WORD.findall(text.lower()))

    async def validate_credentials(self, model: str, credentials: Credentials) -> None:
        # A refusal becomes CREDENTIALS_VALIDATE_FAILED in the base class; an outage stays one.
        check_call(credentials)
