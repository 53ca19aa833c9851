"""Parameter validation against rules: the one place it happens."""

from __future__ import annotations

from typing import Any

import pytest

from providers.sdk.entities import ParameterRule
from providers.sdk.parameters import validate_parameters

RULES = [
    ParameterRule.of("temperature", use_template="temperature"),
    ParameterRule.of("max_output_tokens", use_template="max_tokens", max=8192),
    ParameterRule.of("response_format", use_template="response_format"),
    ParameterRule.of("stream_reasoning", type="boolean"),
    ParameterRule.of("seed", type="int", required=True),
]


def check(params: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    validated, violations = validate_parameters(RULES, params)
    return validated, {v.field: v.description for v in violations}


def test_defaults_are_applied_to_optional_parameters() -> None:
    validated, violations = check({"seed": 7})
    assert violations == {}
    assert validated == {"temperature": 0.0, "max_output_tokens": 64, "seed": 7}


def test_explicit_zero_and_false_are_kept() -> None:
    validated, violations = check({"seed": 0, "temperature": 0, "stream_reasoning": False})
    assert violations == {}
    assert validated["seed"] == 0
    assert validated["temperature"] == 0.0 and isinstance(validated["temperature"], float)
    assert validated["stream_reasoning"] is False


def test_a_template_name_is_accepted_for_the_rule_using_it() -> None:
    validated, violations = check({"seed": 1, "max_tokens": 4096})
    assert violations == {}
    assert validated["max_output_tokens"] == 4096


@pytest.mark.parametrize(
    ("params", "field", "says"),
    [
        ({"temperature": 1.5}, "model_parameters.temperature", "less than or equal to 1"),
        ({"temperature": -0.1}, "model_parameters.temperature", "greater than or equal to 0"),
        ({"temperature": 0.123}, "model_parameters.temperature", "2 decimal places"),
        ({"temperature": "hot"}, "model_parameters.temperature", "should be float, got string"),
        ({"temperature": True}, "model_parameters.temperature", "should be float, got bool"),
        ({"max_output_tokens": 1.5}, "model_parameters.max_output_tokens", "should be int"),
        ({"max_output_tokens": 9000}, "model_parameters.max_output_tokens", "8192"),
        ({"max_tokens": 0}, "model_parameters.max_tokens", "greater than or equal to 1"),
        ({"response_format": "YAML"}, "model_parameters.response_format", "one of JSON, XML"),
        ({"stream_reasoning": "yes"}, "model_parameters.stream_reasoning", "should be bool"),
        ({"frobnicate": 1}, "model_parameters.frobnicate", "allowed: max_output_tokens"),
    ],
)
def test_each_violation_names_its_field(params: dict[str, Any], field: str, says: str) -> None:
    _, violations = check({"seed": 1, **params})
    assert list(violations) == [field]
    assert says in violations[field]


def test_a_missing_required_parameter_is_reported() -> None:
    _, violations = check({})
    assert violations == {"model_parameters.seed": "is required"}


def test_all_violations_are_reported_together() -> None:
    _, violations = check({"temperature": 9, "bogus": 1})
    assert set(violations) == {
        "model_parameters.temperature",
        "model_parameters.bogus",
        "model_parameters.seed",
    }
