"""The one place where credentials are checked against a provider's credential form."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from providers.sdk.entities.schema import CredentialFormSchema, FormShowOnObject, FormType
from providers.sdk.errors import FieldViolation

# Injected while checking a model credential form, so `show_on` can depend on the model type.
MODEL_TYPE_VARIABLE = "__model_type"


def validate_credential_form(
    schemas: Iterable[CredentialFormSchema],
    credentials: Mapping[str, str],
    *,
    model_type: str | None = None,
) -> tuple[dict[str, str], list[FieldViolation]]:
    """Checks `credentials` against a form and returns the fields the provider may see.

    Fields whose `show_on` conditions do not hold are skipped; empty optional fields take their
    default; keys the form does not know are dropped (as Dify does). Violations name the field
    but never repeat a value, since any value may be a secret typed into the wrong field.
    """
    visible_to_show_on = dict(credentials)
    if model_type is not None:
        visible_to_show_on[MODEL_TYPE_VARIABLE] = model_type

    validated: dict[str, str] = {}
    violations: list[FieldViolation] = []
    for schema in schemas:
        if not _shown(schema.show_on, visible_to_show_on):
            continue
        field = f"credentials.{schema.variable}"
        value = credentials.get(schema.variable)
        if value is None or value == "":
            if schema.default not in (None, ""):
                validated[schema.variable] = str(schema.default)
            elif schema.required:
                violations.append(FieldViolation(field, "is required"))
            continue
        if schema.max_length and len(value) > schema.max_length:
            violations.append(
                FieldViolation(field, f"is longer than {schema.max_length} characters")
            )
            continue
        if schema.type in (FormType.SELECT, FormType.RADIO):
            allowed = [o.value for o in schema.options if _shown(o.show_on, visible_to_show_on)]
            if value not in allowed:
                violations.append(FieldViolation(field, f"should be one of {', '.join(allowed)}"))
                continue
        if schema.type is FormType.SWITCH and value not in ("true", "false"):
            violations.append(FieldViolation(field, "should be true or false"))
            continue
        validated[schema.variable] = value
    return validated, violations


def secret_values(
    schemas: Iterable[CredentialFormSchema], credentials: Mapping[str, str]
) -> list[str]:
    """The values of the secret fields, longest first, for scrubbing them out of messages."""
    secrets = {
        credentials[s.variable]
        for s in schemas
        if s.type is FormType.SECRET_INPUT and credentials.get(s.variable)
    }
    return sorted(secrets, key=len, reverse=True)


def without_secrets(
    schemas: Iterable[CredentialFormSchema], credentials: Mapping[str, str]
) -> dict[str, str]:
    secret_names = {s.variable for s in schemas if s.type is FormType.SECRET_INPUT}
    return {k: v for k, v in credentials.items() if k not in secret_names}


def scrub(text: str, secrets: Iterable[str]) -> str:
    """`text` with every secret value replaced by `***`."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def _shown(conditions: list[FormShowOnObject], values: Mapping[str, str]) -> bool:
    return all(values.get(c.variable) == c.value for c in conditions)
