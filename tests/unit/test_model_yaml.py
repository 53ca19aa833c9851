"""Loading model YAML in Dify's format: templates, defaults, errors naming file and key."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from providers.sdk.entities import ModelFeature, ModelType, ParameterType
from providers.sdk.errors import SchemaError
from providers.sdk.loader import load_model_yaml


def write(tmp_path: Path, text: str, name: str = "model.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_template_fills_what_the_rule_leaves_out(tmp_path: Path) -> None:
    model = load_model_yaml(
        write(
            tmp_path,
            """
model: m
model_type: llm
model_properties: {mode: chat, context_size: 8192}
parameter_rules:
  - name: temperature
    use_template: temperature
  - name: max_tokens
    use_template: max_tokens
    default: 1024
    max: 8192
""",
        )
    )
    temperature, max_tokens = model.parameter_rules
    assert (temperature.type, temperature.default, temperature.min, temperature.max) == (
        ParameterType.FLOAT,
        0.0,
        0.0,
        1.0,
    )
    assert temperature.precision == 2
    assert temperature.label.en_US == "Temperature" and temperature.label.zh_Hans == "温度"
    assert (max_tokens.default, max_tokens.min, max_tokens.max) == (1024, 1, 8192)


def test_explicit_zero_and_false_survive_the_template(tmp_path: Path) -> None:
    # Dify's customizable path replaced falsy values with the template's: 0 became 1, false became
    # the template's value. Ours keeps what the rule says.
    model = load_model_yaml(
        write(
            tmp_path,
            """
model: m
model_type: llm
parameter_rules:
  - name: max_tokens
    use_template: max_tokens
    min: 0
    default: 0
  - name: top_p
    use_template: top_p
    required: false
    precision: 0
""",
        )
    )
    max_tokens, top_p = model.parameter_rules
    assert max_tokens.min == 0 and max_tokens.default == 0
    assert top_p.required is False and top_p.precision == 0


def test_defaults_label_fetch_from_and_pricing(tmp_path: Path) -> None:
    model = load_model_yaml(
        write(
            tmp_path,
            """
model: embed-1
model_type: text-embedding
fetch_from: customizable-model
model_properties: {context_size: 512, max_chunks: 16}
pricing: {input: '0.13', unit: '0.000001', currency: USD}
unknown_key_dify_ignores: 1
""",
        ),
        ModelType.TEXT_EMBEDDING,
    )
    assert model.label.en_US == "embed-1"
    assert model.fetch_from.value == "predefined-model"  # a YAML model is predefined, always
    assert model.pricing is not None and model.pricing.input == Decimal("0.13")
    assert model.model_properties.max_chunks == 16


def test_json_schema_rule_implies_structured_output(tmp_path: Path) -> None:
    model = load_model_yaml(
        write(
            tmp_path,
            "model: m\nmodel_type: llm\nparameter_rules:\n  - name: json_schema\n"
            "    use_template: json_schema\n",
        )
    )
    assert model.features == [ModelFeature.STRUCTURED_OUTPUT]
    assert model.parameter_rules[0].type is ParameterType.TEXT


@pytest.mark.parametrize(
    ("body", "key", "says"),
    [
        (
            "model: m\nmodel_type: llm\nparameter_rules:\n  - name: t\n    type: float\n"
            "    max: lots\n",
            "parameter_rules[0].max",
            "number",
        ),
        ("model: m\nmodel_type: chat\n", "model_type", "llm"),
        ("model_type: llm\n", "model", "required"),
        ("model: m\nmodel_type: llm\nmodel_properties: {context_size: big}\n", "context_size", ""),
        ("model: m\nmodel_type: llm\npricing: {input: 1}\n", "pricing.unit", "required"),
        ("model: m\nmodel_type: llm\nfeatures: [telepathy]\n", "features[0]", ""),
    ],
)
def test_a_malformed_model_is_rejected_naming_file_and_key(
    tmp_path: Path, body: str, key: str, says: str
) -> None:
    path = write(tmp_path, body, "broken-model.yaml")
    with pytest.raises(SchemaError) as raised:
        load_model_yaml(path)
    message = str(raised.value)
    assert str(path) in message
    assert key in message
    assert says in message


def test_a_model_in_the_wrong_folder_is_rejected(tmp_path: Path) -> None:
    path = write(tmp_path, "model: m\nmodel_type: rerank\n")
    with pytest.raises(SchemaError, match=r"model_type: 'rerank' in a llm folder"):
        load_model_yaml(path, ModelType.LLM)


def test_yaml_that_is_not_a_mapping_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(SchemaError, match="expected a mapping"):
        load_model_yaml(write(tmp_path, "- just\n- a list\n"))
    with pytest.raises(SchemaError, match="not valid YAML"):
        load_model_yaml(write(tmp_path, "model: [unclosed\n"))
