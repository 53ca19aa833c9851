from __future__ import annotations

from providers.sdk.concurrency import call_maybe_async
from providers.sdk.entities.schema import ModelType
from providers.sdk.model_types.ai_model import Credentials
from providers.sdk.provider import ModelProvider

# Provider credentials are proved on the cheapest current model: the check is free when the
# models list answers and costs one token of this model when it does not.
VALIDATION_MODEL = "claude-haiku-4-5-20251001"


class AnthropicProvider(ModelProvider):
    async def validate_provider_credentials(self, credentials: Credentials) -> None:
        llm = self.get_model_instance(ModelType.LLM)
        await call_maybe_async(llm.validate_credentials, VALIDATION_MODEL, credentials)
