"""The provider SDK: what a provider implements and what the runtime does for it.

A provider is a folder of YAML (what it offers) and model classes that subclass one base class
per model type (`providers.sdk.model_types`) and implement the seed's methods. The base classes
check credentials and parameters, map errors, stream, time and price; see the README's
"Adding a provider".
"""

from providers.sdk.registry import ProviderRegistry

__all__ = ["ProviderRegistry"]
