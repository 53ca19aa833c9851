"""The loaded providers, looked up by name and model type: the runtime's entry point."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path
from typing import TypeVar

from providers.sdk.entities.schema import ModelType
from providers.sdk.errors import ProviderNotFoundError, SchemaError
from providers.sdk.loader import builtin_provider_folders, load_provider, provider_folders
from providers.sdk.model_types import AIModel
from providers.sdk.provider import ModelProvider

logger = logging.getLogger(__name__)

M = TypeVar("M", bound=AIModel)


class ProviderRegistry:
    def __init__(self, providers: Iterable[ModelProvider]) -> None:
        self._providers: dict[str, ModelProvider] = {}
        for provider in providers:
            if provider.name in self._providers:
                raise SchemaError(f"two providers are named {provider.name!r}")
            self._providers[provider.name] = provider

    @classmethod
    def load(
        cls,
        extra_paths: Iterable[Path] = (),
        *,
        include_builtin: bool = True,
        enabled: Iterable[str] | None = None,
    ) -> ProviderRegistry:
        """Loads the built-in providers and the folders in `extra_paths`; `enabled`, when
        given, keeps only those providers, in that order."""
        folders = builtin_provider_folders() if include_builtin else []
        folders += provider_folders(extra_paths)
        providers = [load_provider(folder) for folder in folders]
        if enabled is not None:
            by_name = {p.name: p for p in providers}
            missing = [name for name in enabled if name not in by_name]
            if missing:
                raise SchemaError(f"enabled providers not found: {', '.join(missing)}")
            providers = [by_name[name] for name in enabled]
        for provider in providers:
            logger.info(
                "loaded provider %s (%s)",
                provider.name,
                ", ".join(t.value for t in provider.schema.supported_model_types),
            )
        return cls(providers)

    @property
    def providers(self) -> list[ModelProvider]:
        return list(self._providers.values())

    def provider(self, name: str) -> ModelProvider:
        provider = self._providers.get(name)
        if provider is None:
            known = ", ".join(self._providers) or "none"
            raise ProviderNotFoundError(
                f"no provider named {name!r}; loaded: {known}", provider=name or None
            )
        return provider

    def model(self, provider: str, model_type: ModelType, kind: type[M]) -> M:
        instance = self.provider(provider).get_model_instance(model_type)
        assert isinstance(instance, kind)
        return instance
