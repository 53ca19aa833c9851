"""The provider of OpenAI-API-compatible servers. Every model is customizable and carries its
own server URL and key, so there is nothing to check at the provider level: each model's
credentials are validated on their own (ValidateModelCredentials)."""

from __future__ import annotations

from providers.sdk.model_types.ai_model import Credentials
from providers.sdk.provider import ModelProvider


class OpenAICompatibleProvider(ModelProvider):
    async def validate_provider_credentials(self, credentials: Credentials) -> None:
        return None
