from __future__ import annotations

from providers.sdk.model_types.ai_model import Credentials
from providers.sdk.provider import ModelProvider


class XinferenceProvider(ModelProvider):
    async def validate_provider_credentials(self, credentials: Credentials) -> None:
        """Nothing to check: Xinference has no provider-level credentials. Each model carries
        its own server URL, model UID and key, and is validated on its own."""
