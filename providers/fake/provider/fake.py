from __future__ import annotations

from providers.fake.upstream import check_call
from providers.sdk.model_types.ai_model import Credentials
from providers.sdk.provider import ModelProvider


class FakeProvider(ModelProvider):
    async def validate_provider_credentials(self, credentials: Credentials) -> None:
        # A refusal becomes CREDENTIALS_VALIDATE_FAILED in the base class; an outage stays one.
        check_call(credentials)
