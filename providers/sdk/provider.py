"""The provider base class: one provider YAML, one model class per supported model type."""

from __future__ import annotations

from collections.abc import Mapping

from providers.sdk.concurrency import call_maybe_async
from providers.sdk.credentials import validate_credential_form, without_secrets
from providers.sdk.entities.schema import ModelType, ProviderEntity
from providers.sdk.errors import InvalidCredentialsError, ModelTypeNotSupportedError
from providers.sdk.model_types.ai_model import AIModel, Credentials, MaybeAwaitable


class ModelProvider:
    """Subclass it in `provider/<name>.py` to check provider credentials against the upstream.

    Without an override, provider credentials are checked the way most of Dify's providers do
    it by hand: by validating them on the provider's first predefined model.
    """

    def __init__(self, schema: ProviderEntity, models: Mapping[ModelType, AIModel]) -> None:
        self.schema = schema
        self.name = schema.provider
        self.models = dict(models)

    def validate_provider_credentials(self, credentials: Credentials) -> MaybeAwaitable[None]:
        raise NotImplementedError

    def get_model_instance(self, model_type: ModelType) -> AIModel:
        model = self.models.get(model_type)
        if model is None:
            raise ModelTypeNotSupportedError(
                f"provider {self.name} does not offer {model_type.value} models",
                provider=self.name,
            )
        return model

    async def validate(self, credentials: Mapping[str, str]) -> Credentials:
        """ValidateProviderCredentials: the form, then the upstream."""
        form = self.schema.provider_credential_schema
        fields = list(form.credential_form_schemas) if form else []
        checked, violations = validate_credential_form(fields, credentials)
        if violations:
            raise InvalidCredentialsError(violations, provider=self.name)
        implemented = type(self).validate_provider_credentials is not (
            ModelProvider.validate_provider_credentials
        )
        if implemented:
            model = next(iter(self.models.values()), None)
            if model is None:
                await call_maybe_async(self.validate_provider_credentials, checked)
            else:
                # The provider form decides which values are secrets to scrub.
                with model.mapped_errors("", checked, validating=True, form=fields):
                    await call_maybe_async(self.validate_provider_credentials, checked)
        else:
            await self._validate_on_first_model(checked)
        return without_secrets(fields, checked)

    async def _validate_on_first_model(self, credentials: Credentials) -> None:
        # A provider with only customizable models has nothing to check at the provider level
        # beyond its form (as Dify's Xinference provider); its models are validated one by one.
        for model in self.models.values():
            first = next(iter(model.predefined_models), None)
            if first is not None:
                await model.validate(first, credentials)
                return
