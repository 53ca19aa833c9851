"""The OpenAI provider: its credentials are checked by reading a model card (free)."""

from __future__ import annotations

from providers.openai.models.common import check_credentials
from providers.sdk.model_types.ai_model import Credentials
from providers.sdk.provider import ModelProvider


class OpenAIProvider(ModelProvider):
    async def validate_provider_credentials(self, credentials: Credentials) -> None:
        # `validate_model` (Dify's field) names the model to check; without it the model list
        # proves the key, organization and base URL.
        await check_credentials(credentials, credentials.get("validate_model") or None)
