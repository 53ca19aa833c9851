"""A provider folder in Dify's model-plugin layout loads unchanged, keys we do not use included."""

from __future__ import annotations

from pathlib import Path
from textwrap import dedent

import pytest

from providers.sdk import ProviderRegistry
from providers.sdk.entities import ModelType
from providers.sdk.errors import ProviderNotFoundError, SchemaError
from providers.sdk.loader import load_provider
from providers.sdk.model_types import LargeLanguageModel

MODEL_CLASS = '''
from providers.sdk.model_types import LargeLanguageModel


class _SharedBase(LargeLanguageModel):
    """A helper base in the same module; the loader must pick the class derived from it."""


class AcmeLargeLanguageModel(_SharedBase):
    def _invoke(self, model, credentials, prompt_messages, model_parameters, tools=None,
                stop=None, stream=True, user=None):
        raise NotImplementedError

    def validate_credentials(self, model, credentials):
        pass
'''


def make_plugin(root: Path, *, with_model_class: bool = True) -> Path:
    folder = root / "acme"
    (folder / "provider").mkdir(parents=True)
    (folder / "models" / "llm").mkdir(parents=True)
    (folder / "_assets").mkdir()
    (folder / "manifest.yaml").write_text(
        dedent(
            """
            version: 0.1.0
            type: plugin
            author: acme
            name: acme
            label: {en_US: Acme}
            created_at: "2026-01-01T00:00:00Z"
            resource: {memory: 268435456, permission: {model: {enabled: true, llm: true}}}
            plugins: {models: [provider/acme.yaml]}
            meta:
              version: 0.0.1
              arch: [amd64, arm64]
              runner: {language: python, version: "3.12", entrypoint: main}
            """
        )
    )
    (folder / "provider" / "acme.yaml").write_text(
        dedent(
            """
            provider: acme
            label: {en_US: Acme, zh_Hans: 极致}
            description: {en_US: Models by Acme}
            icon_small: {en_US: icon_s_en.svg}
            icon_small_dark: {en_US: icon_s_dark.svg}
            icon_large: {en_US: icon_l_en.svg}
            icon_large_dark: {en_US: icon_l_dark.svg}
            background: "#FCEFEF"
            help:
              title: {en_US: Get your API key}
              url: {en_US: "https://acme.example/keys"}
            supported_model_types: [llm]
            configurate_methods: [predefined-model]
            provider_credential_schema:
              credential_form_schemas:
                - variable: acme_api_key
                  label: {en_US: API Key}
                  type: secret-input
                  required: true
                  help: {en_US: daemon-only key}
                  url: https://acme.example
            models:
              llm:
                predefined: ["models/llm/*.yaml"]
                position: "models/llm/_position.yaml"
            extra:
              python:
                provider_source: provider/acme.py
                model_sources: ["models/llm/llm.py"]
            """
        )
    )
    (folder / "models" / "llm" / "_position.yaml").write_text("- acme-large\n- acme-small\n")
    for name in ("acme-small", "acme-large"):
        (folder / "models" / "llm" / f"{name}.yaml").write_text(
            dedent(
                f"""
                model: {name}
                label: {{en_US: {name}}}
                model_type: llm
                features: [agent-thought, polling]
                model_properties: {{mode: chat, context_size: 200000}}
                parameter_rules:
                  - name: max_tokens
                    use_template: max_tokens
                    show_on: [{{variable: x, value: y}}]
                pricing: {{input: '3', output: '15', unit: '0.000001', currency: USD}}
                icon: acme.svg
                """
            )
        )
    if with_model_class:
        (folder / "models" / "llm" / "llm.py").write_text(MODEL_CLASS)
    return folder


def test_a_dify_plugin_folder_loads_unchanged(tmp_path: Path) -> None:
    provider = load_provider(make_plugin(tmp_path))
    assert provider.name == "acme"
    assert provider.schema.icon_small_dark is not None
    assert [m.model for m in provider.schema.models] == ["acme-large", "acme-small"]
    model = provider.get_model_instance(ModelType.LLM)
    assert isinstance(model, LargeLanguageModel)
    assert type(model).__name__ == "AcmeLargeLanguageModel"
    with pytest.raises(Exception, match="does not offer rerank"):
        provider.get_model_instance(ModelType.RERANK)


def test_registry_loads_builtin_and_extra_folders(tmp_path: Path) -> None:
    make_plugin(tmp_path)
    registry = ProviderRegistry.load([tmp_path])
    assert {"fake", "acme"} <= {p.name for p in registry.providers}
    with pytest.raises(ProviderNotFoundError, match="no provider named 'nope'"):
        registry.provider("nope")


def test_enabled_list_selects_and_orders_providers(tmp_path: Path) -> None:
    make_plugin(tmp_path)
    registry = ProviderRegistry.load([tmp_path], enabled=["acme", "fake"])
    assert [p.name for p in registry.providers] == ["acme", "fake"]
    with pytest.raises(SchemaError, match="enabled providers not found: ghost"):
        ProviderRegistry.load([tmp_path], enabled=["ghost"])


def test_a_supported_type_without_a_model_class_names_the_missing_file(tmp_path: Path) -> None:
    folder = make_plugin(tmp_path, with_model_class=False)
    with pytest.raises(SchemaError, match=r"supports llm but has no models/llm/llm\.py"):
        load_provider(folder)


def test_a_wrong_type_in_provider_yaml_names_the_file_and_key(tmp_path: Path) -> None:
    folder = make_plugin(tmp_path)
    path = folder / "provider" / "acme.yaml"
    path.write_text(path.read_text().replace("required: true", "required: [maybe]"))
    with pytest.raises(SchemaError) as raised:
        load_provider(folder)
    assert str(path) in str(raised.value)
    assert "provider_credential_schema.credential_form_schemas[0].required" in str(raised.value)
