from providers.sdk.provider import ModelProvider


class SeedStyleProvider(ModelProvider):
    def validate_provider_credentials(self, credentials: dict) -> None:
        pass
