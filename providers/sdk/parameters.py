"""The one place where model parameters are checked against a model's parameter rules."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from providers.sdk.entities.schema import ParameterRule, ParameterType
from providers.sdk.errors import FieldViolation


def validate_parameters(
    rules: list[ParameterRule], parameters: Mapping[str, Any]
) -> tuple[dict[str, Any], list[FieldViolation]]:
    """Checks `parameters` against `rules` and fills in defaults.

    Returns the parameters to pass to the provider, keyed by rule name, and the violations
    (unknown names, wrong types, out of range, not an option, missing required). A value given
    under a rule's template name (`max_tokens` for a rule `max_output_tokens` using that
    template) counts as that rule's value, as in Dify.
    """
    violations: list[FieldViolation] = []
    by_name = {rule.name: rule for rule in rules}
    aliases = {
        rule.use_template: rule.name
        for rule in rules
        if rule.use_template and rule.use_template not in by_name
    }
    for name in parameters:
        if name not in by_name and name not in aliases:
            allowed = ", ".join(sorted(by_name)) or "none"
            violations.append(
                FieldViolation(
                    f"model_parameters.{name}",
                    f"unknown parameter for this model; allowed: {allowed}",
                )
            )

    validated: dict[str, Any] = {}
    for rule in rules:
        given_as = rule.name
        value = parameters.get(rule.name)
        if value is None and rule.use_template in aliases and rule.use_template in parameters:
            given_as = rule.use_template
            value = parameters[given_as]
        if value is None:
            if rule.default is not None:
                validated[rule.name] = _default_of(rule)
            elif rule.required:
                violations.append(FieldViolation(f"model_parameters.{rule.name}", "is required"))
            continue
        problem = _check_value(rule, value)
        if problem is None:
            validated[rule.name] = float(value) if rule.type is ParameterType.FLOAT else value
        else:
            violations.append(FieldViolation(f"model_parameters.{given_as}", problem))
    return validated, violations


def _default_of(rule: ParameterRule) -> Any:
    # YAML often writes float defaults as integers (`default: 1`).
    if rule.type is ParameterType.FLOAT and isinstance(rule.default, int | float):
        return float(rule.default)
    return rule.default


def _check_value(rule: ParameterRule, value: Any) -> str | None:
    """What is wrong with `value` under `rule`, or None. Messages follow Dify's wording."""
    kind = rule.type
    if kind is ParameterType.INT:
        if isinstance(value, bool) or not isinstance(value, int):
            return f"should be int, got {_type_name(value)}"
        return _check_range(rule, value)
    if kind is ParameterType.FLOAT:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return f"should be float, got {_type_name(value)}"
        if rule.precision is not None and abs(value - round(value, rule.precision)) > 1e-9:
            return f"should be rounded to {rule.precision} decimal places"
        return _check_range(rule, value)
    if kind is ParameterType.BOOLEAN:
        return None if isinstance(value, bool) else f"should be bool, got {_type_name(value)}"
    if kind in (ParameterType.STRING, ParameterType.TEXT):
        if not isinstance(value, str):
            return f"should be string, got {_type_name(value)}"
        if kind is ParameterType.STRING and rule.options and value not in rule.options:
            return f"should be one of {', '.join(rule.options)}"
        return None
    return f"type {kind} is not supported"


def _check_range(rule: ParameterRule, value: float) -> str | None:
    if rule.min is not None and value < rule.min:
        return f"should be greater than or equal to {_number(rule.min)}"
    if rule.max is not None and value > rule.max:
        return f"should be less than or equal to {_number(rule.max)}"
    return None


def _number(bound: float) -> str:
    # "12288", not "12288.0" (dify #13451).
    return str(int(bound)) if float(bound).is_integer() else str(bound)


def _type_name(value: Any) -> str:
    return {bool: "bool", int: "int", float: "float", str: "string"}.get(
        type(value), type(value).__name__
    )
