"""Credential forms: required fields, show_on, options, defaults, secrets never echoed."""

from __future__ import annotations

from providers.sdk.credentials import scrub, secret_values, validate_credential_form
from providers.sdk.entities import CredentialFormSchema

FORM = [
    CredentialFormSchema.model_validate(spec)
    for spec in [
        {"variable": "api_key", "label": "Key", "type": "secret-input"},
        {
            "variable": "mode",
            "label": "Mode",
            "type": "select",
            "required": False,
            "default": "chat",
            "options": [{"value": "chat"}, {"value": "completion"}],
        },
        {
            "variable": "context_size",
            "label": "Context",
            "type": "text-input",
            "show_on": [{"variable": "__model_type", "value": "llm"}],
        },
        {"variable": "vision", "label": "Vision", "type": "switch", "required": False},
        {
            "variable": "org",
            "label": "Org",
            "type": "text-input",
            "required": False,
            "max_length": 8,
        },
    ]
]


def test_valid_credentials_keep_only_form_fields_and_take_defaults() -> None:
    validated, violations = validate_credential_form(
        FORM, {"api_key": "fake-k", "context_size": "4096", "extra": "x"}, model_type="llm"
    )
    assert violations == []
    assert validated == {"api_key": "fake-k", "mode": "chat", "context_size": "4096"}


def test_show_on_hides_a_required_field_for_other_model_types() -> None:
    _, violations = validate_credential_form(FORM, {"api_key": "fake-k"}, model_type="rerank")
    assert violations == []
    _, violations = validate_credential_form(FORM, {"api_key": "fake-k"}, model_type="llm")
    assert [(v.field, v.description) for v in violations] == [
        ("credentials.context_size", "is required")
    ]


def test_violations_name_the_field_and_never_repeat_the_value() -> None:
    secret = "sk-typed-into-the-wrong-field"
    _, violations = validate_credential_form(
        FORM,
        {"mode": secret, "vision": "maybe", "org": secret},
        model_type="rerank",
    )
    fields = {v.field: v.description for v in violations}
    assert set(fields) == {
        "credentials.api_key",
        "credentials.mode",
        "credentials.vision",
        "credentials.org",
    }
    assert fields["credentials.mode"] == "should be one of chat, completion"
    assert all(secret not in v.description for v in violations)


def test_secret_values_are_scrubbed_from_messages() -> None:
    secrets = secret_values(FORM, {"api_key": "fake-abc123", "mode": "chat"})
    assert secrets == ["fake-abc123"]
    assert scrub("Incorrect API key provided: fake-abc123.", secrets) == (
        "Incorrect API key provided: ***."
    )
