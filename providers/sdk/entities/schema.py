"""What providers and models are: the entities read from provider and model YAML files.

These are pydantic models because they are parsed from files written by people: a wrong type
must be reported with the key that holds it. Keys and spellings are Dify's, so a Dify model
plugin's YAML loads unchanged; keys we do not use are ignored.
"""

from __future__ import annotations

import contextlib
from decimal import Decimal
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from providers.sdk.entities.llm import LLMMode
from providers.sdk.templates import apply_template


class ModelType(StrEnum):
    LLM = "llm"
    TEXT_EMBEDDING = "text-embedding"
    RERANK = "rerank"
    SPEECH2TEXT = "speech2text"
    TTS = "tts"
    MODERATION = "moderation"

    @classmethod
    def value_of(cls, value: str) -> ModelType:
        """Accepts the YAML value, the `models/<folder>` spelling and Dify's origin names."""
        found = _MODEL_TYPE_ALIASES.get(value)
        if found is None:
            raise ValueError(f"unknown model type {value!r}")
        return found

    @property
    def folder(self) -> str:
        """The folder name under `models/` (`text_embedding` for text-embedding)."""
        return self.value.replace("-", "_")


_MODEL_TYPE_ALIASES: dict[str, ModelType] = {
    **{t.value: t for t in ModelType},
    **{t.value.replace("-", "_"): t for t in ModelType},
    "text-generation": ModelType.LLM,
    "embeddings": ModelType.TEXT_EMBEDDING,
    "reranking": ModelType.RERANK,
}


class ConfigurateMethod(StrEnum):
    PREDEFINED_MODEL = "predefined-model"
    CUSTOMIZABLE_MODEL = "customizable-model"


# `fetch_from` of a model uses the same two words.
FetchFrom = ConfigurateMethod


class ModelFeature(StrEnum):
    TOOL_CALL = "tool-call"
    MULTI_TOOL_CALL = "multi-tool-call"
    AGENT_THOUGHT = "agent-thought"
    VISION = "vision"
    STREAM_TOOL_CALL = "stream-tool-call"
    DOCUMENT = "document"
    VIDEO = "video"
    AUDIO = "audio"
    STRUCTURED_OUTPUT = "structured-output"
    POLLING = "polling"


class ParameterType(StrEnum):
    FLOAT = "float"
    INT = "int"
    STRING = "string"
    BOOLEAN = "boolean"
    TEXT = "text"


class FormType(StrEnum):
    TEXT_INPUT = "text-input"
    SECRET_INPUT = "secret-input"
    SELECT = "select"
    RADIO = "radio"
    SWITCH = "switch"


class PriceType(StrEnum):
    INPUT = "input"
    OUTPUT = "output"


class _Entity(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=False, protected_namespaces=())


class I18nObject(_Entity):
    """A text in several languages; languages left out fall back to English."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    en_US: str
    zh_Hans: str | None = None
    pt_BR: str | None = None
    ja_JP: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _from_string(cls, data: Any) -> Any:
        # A bare string is accepted as the English text.
        return {"en_US": data} if isinstance(data, str) else data

    @model_validator(mode="after")
    def _fill_from_english(self) -> I18nObject:
        self.zh_Hans = self.zh_Hans or self.en_US
        self.pt_BR = self.pt_BR or self.en_US
        self.ja_JP = self.ja_JP or self.en_US
        return self


class ParameterRule(_Entity):
    """One model parameter's rule, after its `use_template` was merged in (see `parameters`)."""

    name: str
    use_template: str | None = None
    label: I18nObject
    type: ParameterType
    help: I18nObject | None = None
    required: bool = False
    default: Any = None
    min: float | None = None
    max: float | None = None
    precision: int | None = None
    options: list[str] = Field(default_factory=list)

    @classmethod
    def of(cls, name: str, **fields: Any) -> ParameterRule:
        """A rule built in code, e.g. `ParameterRule.of("max_tokens", use_template="max_tokens",
        max=8192)`; the template fills what is not given, as it does for YAML."""
        return cls.model_validate({"name": name, **fields})

    @model_validator(mode="before")
    @classmethod
    def _merge_template(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = apply_template(data)
        if data.get("label") is None and "name" in data:
            data["label"] = {"en_US": data["name"]}
        return data


class PriceConfig(_Entity):
    input: Decimal
    output: Decimal | None = None
    unit: Decimal
    currency: str


class PriceInfo(_Entity):
    unit_price: Decimal
    unit: Decimal
    total_amount: Decimal
    currency: str


class Voice(_Entity):
    mode: str
    name: str
    language: list[str] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _language_as_list(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("language"), str):
            return {**data, "language": [data["language"]]}
        return data


class ModelProperties(_Entity):
    """`model_properties`; which keys apply depends on the model type."""

    mode: LLMMode | None = None
    context_size: int | None = None
    max_chunks: int | None = None
    file_upload_limit: int | None = None
    supported_file_extensions: str | None = None
    max_characters_per_chunk: int | None = None
    default_voice: str | None = None
    voices: list[Voice] = Field(default_factory=list)
    word_limit: int | None = None
    audio_type: str | None = None
    max_workers: int | None = None


class AIModelEntity(_Entity):
    """A model: what it is, what it can do, its parameter rules and its price."""

    model: str
    label: I18nObject
    model_type: ModelType
    features: list[ModelFeature] | None = None
    fetch_from: FetchFrom = FetchFrom.PREDEFINED_MODEL
    model_properties: ModelProperties = Field(default_factory=ModelProperties)
    deprecated: bool = False
    parameter_rules: list[ParameterRule] = Field(default_factory=list)
    pricing: PriceConfig | None = None

    @model_validator(mode="before")
    @classmethod
    def _defaults_from_yaml(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        if data.get("label") is None and "model" in data:
            data["label"] = {"en_US": data["model"]}
        if isinstance(data.get("model_type"), str):
            # An unknown value is left for pydantic to report with the key.
            with contextlib.suppress(ValueError):
                data["model_type"] = ModelType.value_of(data["model_type"])
        if data.get("model_properties") is None:
            data["model_properties"] = {}
        return data

    @model_validator(mode="after")
    def _structured_output_from_rules(self) -> AIModelEntity:
        # As GRAPHON does: a model with a json_schema rule and no features can hold a schema.
        if self.features is None and any(r.name == "json_schema" for r in self.parameter_rules):
            self.features = [ModelFeature.STRUCTURED_OUTPUT]
        return self

    def has_feature(self, feature: ModelFeature) -> bool:
        return feature in (self.features or ())


class FormShowOnObject(_Entity):
    variable: str
    value: str


class FormOption(_Entity):
    label: I18nObject
    value: str
    show_on: list[FormShowOnObject] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _label_defaults_to_value(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("label") is None and "value" in data:
            return {**data, "label": {"en_US": str(data["value"])}}
        return data


class CredentialFormSchema(_Entity):
    variable: str
    label: I18nObject
    type: FormType
    required: bool = True
    default: str | None = None
    options: list[FormOption] = Field(default_factory=list)
    placeholder: I18nObject | None = None
    max_length: int = 0
    show_on: list[FormShowOnObject] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _nulls_to_defaults(cls, data: Any) -> Any:
        if isinstance(data, dict):
            data = {
                k: v for k, v in data.items() if not (k in ("options", "show_on") and v is None)
            }
            if isinstance(data.get("default"), bool | int | float):
                data["default"] = str(data["default"]).lower()
        return data


class ProviderCredentialSchema(_Entity):
    credential_form_schemas: list[CredentialFormSchema] = Field(default_factory=list)


class FieldModelSchema(_Entity):
    label: I18nObject
    placeholder: I18nObject | None = None


class ModelCredentialSchema(_Entity):
    model: FieldModelSchema
    credential_form_schemas: list[CredentialFormSchema] = Field(default_factory=list)


class ProviderHelp(_Entity):
    title: I18nObject
    url: I18nObject


class ProviderEntity(_Entity):
    """A provider as its YAML describes it, with the predefined models found beside it."""

    provider: str
    label: I18nObject
    description: I18nObject | None = None
    icon_small: I18nObject | None = None
    icon_large: I18nObject | None = None
    icon_small_dark: I18nObject | None = None
    icon_large_dark: I18nObject | None = None
    background: str | None = None
    help: ProviderHelp | None = None
    supported_model_types: list[ModelType]
    configurate_methods: list[ConfigurateMethod]
    provider_credential_schema: ProviderCredentialSchema | None = None
    model_credential_schema: ModelCredentialSchema | None = None
    # Filled by the loader, not read from the provider YAML.
    models: list[AIModelEntity] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _model_types_by_any_name(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("supported_model_types"), list):
            types = []
            for value in data["supported_model_types"]:
                try:
                    types.append(ModelType.value_of(value) if isinstance(value, str) else value)
                except ValueError:
                    types.append(value)  # left for pydantic to report with the key
            data = {**data, "supported_model_types": types}
        return data
