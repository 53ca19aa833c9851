from __future__ import annotations

from providers.fake.upstream import check_call
from providers.sdk.errors import CredentialsValidateFailedError, InvokeError
from providers.sdk.model_types.ai_model import Credentials
from providers.sdk.provider import ModelProvider


class FakeProvider(ModelProvider):
    async def validate_provider_credentials(self, credentials: Credentials) -> None:
        try:
            check_call(credentials)
        except InvokeError as exc:
            raise CredentialsValidateFailedError(str(exc)) from exc
