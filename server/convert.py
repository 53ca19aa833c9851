"""Pure conversions between the contract's messages and the provider SDK's entities.

Requests are checked while converting: anything malformed becomes an InvalidRequestError whose
violations name the field by its path in the request.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from google.protobuf import json_format, struct_pb2

from modelruntime.v1 import (
    llm_pb2,
    schema_pb2,
    value_pb2,
)
from modelruntime.v1 import (
    model_runtime_service_pb2 as service_pb2,
)
from providers.sdk import entities as e
from providers.sdk.errors import FieldViolation, InvalidRequestError

# ---- enums -------------------------------------------------------------------------------------

_MODEL_TYPE_TO_PB = {
    e.ModelType.LLM: schema_pb2.MODEL_TYPE_LLM,
    e.ModelType.TEXT_EMBEDDING: schema_pb2.MODEL_TYPE_TEXT_EMBEDDING,
    e.ModelType.RERANK: schema_pb2.MODEL_TYPE_RERANK,
    e.ModelType.SPEECH2TEXT: schema_pb2.MODEL_TYPE_SPEECH2TEXT,
    e.ModelType.TTS: schema_pb2.MODEL_TYPE_TTS,
    e.ModelType.MODERATION: schema_pb2.MODEL_TYPE_MODERATION,
}
_MODEL_TYPE_FROM_PB = {v: k for k, v in _MODEL_TYPE_TO_PB.items()}
_CONFIGURATE_TO_PB = {
    e.ConfigurateMethod.PREDEFINED_MODEL: schema_pb2.CONFIGURATE_METHOD_PREDEFINED_MODEL,
    e.ConfigurateMethod.CUSTOMIZABLE_MODEL: schema_pb2.CONFIGURATE_METHOD_CUSTOMIZABLE_MODEL,
}
_FEATURE_TO_PB = {
    f: schema_pb2.ModelFeature.Value("MODEL_FEATURE_" + f.name) for f in e.ModelFeature
}
_PARAMETER_TYPE_TO_PB = {
    t: schema_pb2.ParameterType.Value("PARAMETER_TYPE_" + t.name) for t in e.ParameterType
}
_FORM_TYPE_TO_PB = {t: schema_pb2.FormType.Value("FORM_TYPE_" + t.name) for t in e.FormType}
_MODE_TO_PB = {
    e.LLMMode.CHAT: schema_pb2.LLM_MODE_CHAT,
    e.LLMMode.COMPLETION: schema_pb2.LLM_MODE_COMPLETION,
}
_ROLE_FROM_PB = {
    llm_pb2.PROMPT_MESSAGE_ROLE_SYSTEM: e.PromptMessageRole.SYSTEM,
    llm_pb2.PROMPT_MESSAGE_ROLE_USER: e.PromptMessageRole.USER,
    llm_pb2.PROMPT_MESSAGE_ROLE_ASSISTANT: e.PromptMessageRole.ASSISTANT,
    llm_pb2.PROMPT_MESSAGE_ROLE_TOOL: e.PromptMessageRole.TOOL,
    llm_pb2.PROMPT_MESSAGE_ROLE_DEVELOPER: e.PromptMessageRole.DEVELOPER,
}
_INPUT_TYPE_FROM_PB = {
    service_pb2.EMBEDDING_INPUT_TYPE_UNSPECIFIED: e.EmbeddingInputType.DOCUMENT,
    service_pb2.EMBEDDING_INPUT_TYPE_DOCUMENT: e.EmbeddingInputType.DOCUMENT,
    service_pb2.EMBEDDING_INPUT_TYPE_QUERY: e.EmbeddingInputType.QUERY,
}
_MEDIA_TYPES = {
    "image": e.PromptMessageContentType.IMAGE,
    "audio": e.PromptMessageContentType.AUDIO,
    "video": e.PromptMessageContentType.VIDEO,
    "document": e.PromptMessageContentType.DOCUMENT,
}


def model_type_from_pb(
    value: int, *, field: str = "model_type", optional: bool = False
) -> e.ModelType | None:
    model_type = _MODEL_TYPE_FROM_PB.get(schema_pb2.ModelType.ValueType(value))
    if model_type is None and not (optional and value == schema_pb2.MODEL_TYPE_UNSPECIFIED):
        raise InvalidRequestError([FieldViolation(field, "must be one of the six model types")])
    return model_type


def required_model_type(value: int) -> e.ModelType:
    model_type = model_type_from_pb(value)
    assert model_type is not None
    return model_type


def input_type_from_pb(value: int) -> e.EmbeddingInputType:
    input_type = _INPUT_TYPE_FROM_PB.get(service_pb2.EmbeddingInputType.ValueType(value))
    if input_type is None:
        raise InvalidRequestError([FieldViolation("input_type", "unknown value")])
    return input_type


def require_fields(request: Any, *names: str) -> None:
    """Fails with one violation per empty field among `names`."""
    missing = [FieldViolation(name, "is required") for name in names if not getattr(request, name)]
    if missing:
        raise InvalidRequestError(missing)


# ---- requests ----------------------------------------------------------------------------------


def parameters_from_pb(parameters: Mapping[str, value_pb2.ParameterValue]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    violations = []
    for name, value in parameters.items():
        kind = value.WhichOneof("kind")
        if kind is None:
            violations.append(FieldViolation(f"model_parameters.{name}", "has no value set"))
        else:
            values[name] = getattr(value, kind)
    if violations:
        raise InvalidRequestError(violations)
    return values


def prompt_messages_from_pb(messages: Iterable[llm_pb2.PromptMessage]) -> list[e.PromptMessage]:
    converted: list[e.PromptMessage] = []
    violations: list[FieldViolation] = []
    for i, message in enumerate(messages):
        where = f"prompt_messages[{i}]"
        role = _ROLE_FROM_PB.get(message.role)
        if role is None:
            violations.append(FieldViolation(f"{where}.role", "must be set"))
            continue
        content: str | list[e.PromptMessageContent] | None = message.content or None
        if message.content_parts:
            if message.content:
                violations.append(
                    FieldViolation(where, "set either content or content_parts, not both")
                )
                continue
            content = _content_parts_from_pb(message.content_parts, where, violations)
        name = message.name or None
        if role is e.PromptMessageRole.ASSISTANT:
            converted.append(
                e.AssistantPromptMessage(
                    content=content,
                    name=name,
                    tool_calls=[
                        e.ToolCall(
                            id=call.id,
                            type=call.type or "function",
                            function=e.ToolCallFunction(
                                call.function.name, call.function.arguments
                            ),
                        )
                        for call in message.tool_calls
                    ],
                    opaque_body=_struct_to_dict(message.opaque_body)
                    if message.HasField("opaque_body")
                    else None,
                )
            )
        elif role is e.PromptMessageRole.TOOL:
            if not message.tool_call_id:
                violations.append(
                    FieldViolation(f"{where}.tool_call_id", "is required for tool messages")
                )
                continue
            converted.append(
                e.ToolPromptMessage(content=content, name=name, tool_call_id=message.tool_call_id)
            )
        else:
            converted.append(e.PROMPT_MESSAGE_CLASSES[role](role=role, content=content, name=name))
    if violations:
        raise InvalidRequestError(violations)
    return converted


def _content_parts_from_pb(
    parts: Iterable[llm_pb2.PromptMessageContent], where: str, violations: list[FieldViolation]
) -> list[e.PromptMessageContent]:
    converted: list[e.PromptMessageContent] = []
    for j, part in enumerate(parts):
        kind = part.WhichOneof("content")
        field = f"{where}.content_parts[{j}]"
        if kind is None:
            violations.append(FieldViolation(field, "has no content set"))
        elif kind == "text":
            converted.append(e.TextPromptMessageContent(part.text))
        else:
            media: llm_pb2.MediaContent = getattr(part, kind)
            if media.WhichOneof("source") is None:
                violations.append(FieldViolation(f"{field}.{kind}", "needs base64_data or url"))
                continue
            if not media.mime_type:
                violations.append(FieldViolation(f"{field}.{kind}.mime_type", "is required"))
                continue
            converted.append(
                e.MultiModalPromptMessageContent(
                    type=_MEDIA_TYPES[kind],
                    mime_type=media.mime_type,
                    format=media.format or media.mime_type.rpartition("/")[2],
                    base64_data=media.base64_data,
                    url=media.url,
                    filename=media.filename,
                    detail=e.ImageDetail.HIGH
                    if media.detail == llm_pb2.IMAGE_DETAIL_HIGH
                    else e.ImageDetail.LOW,
                )
            )
    return converted


def tools_from_pb(tools: Iterable[llm_pb2.PromptMessageTool]) -> list[e.PromptMessageTool] | None:
    converted = [
        e.PromptMessageTool(
            name=tool.name,
            description=tool.description,
            parameters=_struct_to_dict(tool.parameters),
        )
        for tool in tools
    ]
    nameless = [
        FieldViolation(f"tools[{i}].name", "is required")
        for i, t in enumerate(converted)
        if not t.name
    ]
    if nameless:
        raise InvalidRequestError(nameless)
    return converted or None


def _struct_to_dict(struct: struct_pb2.Struct) -> dict[str, Any]:
    # Struct numbers are doubles; JSON Schema wants 1, not 1.0, for minItems and the like.
    return _whole_numbers_as_int(json_format.MessageToDict(struct))  # type: ignore[no-any-return]


def _whole_numbers_as_int(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _whole_numbers_as_int(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_whole_numbers_as_int(v) for v in value]
    return value


# ---- results -----------------------------------------------------------------------------------


def _decimal(value: Decimal) -> str:
    return format(value, "f")


def usage_to_pb(usage: e.LLMUsage) -> llm_pb2.LLMUsage:
    return llm_pb2.LLMUsage(
        prompt_tokens=usage.prompt_tokens,
        prompt_unit_price=_decimal(usage.prompt_unit_price),
        prompt_price_unit=_decimal(usage.prompt_price_unit),
        prompt_price=_decimal(usage.prompt_price),
        completion_tokens=usage.completion_tokens,
        completion_unit_price=_decimal(usage.completion_unit_price),
        completion_price_unit=_decimal(usage.completion_price_unit),
        completion_price=_decimal(usage.completion_price),
        total_tokens=usage.total_tokens,
        total_price=_decimal(usage.total_price),
        currency=usage.currency,
        latency=usage.latency,
        time_to_first_token=usage.time_to_first_token,
        time_to_generate=usage.time_to_generate,
        cached_prompt_tokens=usage.cached_prompt_tokens,
        reasoning_tokens=usage.reasoning_tokens,
    )


def chunk_to_pb(chunk: e.LLMResultChunk) -> llm_pb2.LLMResultChunk:
    pb_chunk = llm_pb2.LLMResultChunk()
    fill_chunk_pb(pb_chunk, chunk)
    return pb_chunk


def fill_chunk_pb(target: llm_pb2.LLMResultChunk, chunk: e.LLMResultChunk) -> None:
    """The per-chunk conversion, into an empty message (such as `response.chunks.add()`): only
    the fields the chunk sets are touched, in place. Building each sub-message on its own and
    handing it to its parent copies it: 3.4 us a chunk, against 1 us this way."""
    delta = chunk.delta
    message = delta.message
    target.model = chunk.model
    if chunk.system_fingerprint:
        target.system_fingerprint = chunk.system_fingerprint
    pb_delta = target.delta
    pb_delta.SetInParent()
    pb_delta.index = delta.index
    if delta.finish_reason:
        pb_delta.finish_reason = delta.finish_reason
    pb_message = pb_delta.message
    pb_message.SetInParent()
    if message.content:
        pb_message.content = message.content
    if message.reasoning_content:
        pb_message.reasoning_content = message.reasoning_content
    if message.refusal:
        pb_message.refusal = message.refusal
    for call in message.tool_calls:
        pb_call = pb_message.tool_calls.add(index=call.index, id=call.id, type=call.type)
        pb_call.function.SetInParent()
        pb_call.function.name = call.function.name
        pb_call.function.arguments = call.function.arguments
    if message.opaque_body is not None:
        pb_message.opaque_body.update(message.opaque_body)
    if delta.usage is not None:
        pb_delta.usage.CopyFrom(usage_to_pb(delta.usage))


def result_to_pb(result: e.LLMResult) -> llm_pb2.LLMResult:
    message = result.message
    pb_message = llm_pb2.PromptMessage(
        role=llm_pb2.PROMPT_MESSAGE_ROLE_ASSISTANT,
        content=message.get_text_content(),
        tool_calls=[
            llm_pb2.ToolCall(
                id=call.id,
                type=call.type,
                function=llm_pb2.ToolCallFunction(
                    name=call.function.name, arguments=call.function.arguments
                ),
            )
            for call in message.tool_calls
        ],
    )
    if message.opaque_body is not None:
        pb_message.opaque_body.update(message.opaque_body)
    return llm_pb2.LLMResult(
        id=result.id or "",
        model=result.model,
        message=pb_message,
        usage=usage_to_pb(result.usage),
        system_fingerprint=result.system_fingerprint or "",
        reasoning_content=result.reasoning_content,
        refusal=result.refusal,
        finish_reason=result.finish_reason or "",
    )


def embedding_result_to_pb(
    result: e.TextEmbeddingResult,
) -> service_pb2.InvokeTextEmbeddingResponse:
    usage = result.usage
    return service_pb2.InvokeTextEmbeddingResponse(
        model=result.model,
        embeddings=[service_pb2.Embedding(values=vector) for vector in result.embeddings],
        usage=service_pb2.EmbeddingUsage(
            tokens=usage.tokens,
            total_tokens=usage.total_tokens,
            unit_price=_decimal(usage.unit_price),
            price_unit=_decimal(usage.price_unit),
            total_price=_decimal(usage.total_price),
            currency=usage.currency,
            latency=usage.latency,
        ),
    )


def rerank_result_to_pb(result: e.RerankResult) -> service_pb2.InvokeRerankResponse:
    return service_pb2.InvokeRerankResponse(
        model=result.model,
        docs=[
            service_pb2.RerankDocument(index=d.index, text=d.text, score=d.score)
            for d in result.docs
        ],
    )


# ---- schemas -----------------------------------------------------------------------------------


def i18n_to_pb(value: e.I18nObject | None) -> schema_pb2.I18nObject | None:
    if value is None:
        return None
    return schema_pb2.I18nObject(
        en_us=value.en_US,
        zh_hans=value.zh_Hans or "",
        pt_br=value.pt_BR or "",
        ja_jp=value.ja_JP or "",
    )


def parameter_value_to_pb(value: Any) -> value_pb2.ParameterValue | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return value_pb2.ParameterValue(bool_value=value)
    if isinstance(value, int):
        return value_pb2.ParameterValue(int_value=value)
    if isinstance(value, float):
        return value_pb2.ParameterValue(float_value=value)
    return value_pb2.ParameterValue(string_value=str(value))


def parameter_rule_to_pb(rule: e.ParameterRule) -> schema_pb2.ParameterRule:
    default = rule.default
    if (
        rule.type is e.ParameterType.FLOAT
        and isinstance(default, int)
        and not isinstance(default, bool)
    ):
        default = float(default)
    return schema_pb2.ParameterRule(
        name=rule.name,
        use_template=rule.use_template or "",
        label=i18n_to_pb(rule.label),
        type=_PARAMETER_TYPE_TO_PB[rule.type],
        help=i18n_to_pb(rule.help),
        required=rule.required,
        default=parameter_value_to_pb(default),
        min=rule.min,
        max=rule.max,
        precision=rule.precision,
        options=rule.options,
    )


def model_entity_to_pb(model: e.AIModelEntity) -> schema_pb2.AIModelEntity:
    props = model.model_properties
    return schema_pb2.AIModelEntity(
        model=model.model,
        label=i18n_to_pb(model.label),
        model_type=_MODEL_TYPE_TO_PB[model.model_type],
        features=[_FEATURE_TO_PB[f] for f in model.features or ()],
        fetch_from=_CONFIGURATE_TO_PB[model.fetch_from],
        model_properties=schema_pb2.ModelProperties(
            mode=_MODE_TO_PB[props.mode] if props.mode else schema_pb2.LLM_MODE_UNSPECIFIED,
            context_size=props.context_size or 0,
            max_chunks=props.max_chunks or 0,
            file_upload_limit=props.file_upload_limit or 0,
            supported_file_extensions=props.supported_file_extensions or "",
            max_characters_per_chunk=props.max_characters_per_chunk or 0,
            default_voice=props.default_voice or "",
            voices=[
                schema_pb2.Voice(mode=v.mode, name=v.name, language=v.language)
                for v in props.voices
            ],
            word_limit=props.word_limit or 0,
            audio_type=props.audio_type or "",
            max_workers=props.max_workers or 0,
        ),
        deprecated=model.deprecated,
        parameter_rules=[parameter_rule_to_pb(r) for r in model.parameter_rules],
        pricing=schema_pb2.PriceConfig(
            input=_decimal(model.pricing.input),
            output=_decimal(model.pricing.output) if model.pricing.output is not None else "",
            unit=_decimal(model.pricing.unit),
            currency=model.pricing.currency,
        )
        if model.pricing
        else None,
    )


def _form_to_pb(form: e.CredentialFormSchema) -> schema_pb2.CredentialFormSchema:
    return schema_pb2.CredentialFormSchema(
        variable=form.variable,
        label=i18n_to_pb(form.label),
        type=_FORM_TYPE_TO_PB[form.type],
        required=form.required,
        default=form.default or "",
        options=[
            schema_pb2.FormOption(
                label=i18n_to_pb(o.label),
                value=o.value,
                show_on=[_show_on_to_pb(s) for s in o.show_on],
            )
            for o in form.options
        ],
        placeholder=i18n_to_pb(form.placeholder),
        max_length=form.max_length,
        show_on=[_show_on_to_pb(s) for s in form.show_on],
    )


def _show_on_to_pb(show_on: e.FormShowOnObject) -> schema_pb2.FormShowOnObject:
    return schema_pb2.FormShowOnObject(variable=show_on.variable, value=show_on.value)


def provider_to_pb(provider: e.ProviderEntity) -> schema_pb2.ProviderEntity:
    pcs = provider.provider_credential_schema
    mcs = provider.model_credential_schema
    return schema_pb2.ProviderEntity(
        provider=provider.provider,
        label=i18n_to_pb(provider.label),
        description=i18n_to_pb(provider.description),
        icon_small=i18n_to_pb(provider.icon_small),
        icon_large=i18n_to_pb(provider.icon_large),
        background=provider.background or "",
        help=schema_pb2.ProviderHelp(
            title=i18n_to_pb(provider.help.title), url=i18n_to_pb(provider.help.url)
        )
        if provider.help
        else None,
        supported_model_types=[_MODEL_TYPE_TO_PB[t] for t in provider.supported_model_types],
        configurate_methods=[_CONFIGURATE_TO_PB[m] for m in provider.configurate_methods],
        provider_credential_schema=schema_pb2.ProviderCredentialSchema(
            credential_form_schemas=[_form_to_pb(f) for f in pcs.credential_form_schemas]
        )
        if pcs
        else None,
        model_credential_schema=schema_pb2.ModelCredentialSchema(
            model=schema_pb2.FieldModelSchema(
                label=i18n_to_pb(mcs.model.label), placeholder=i18n_to_pb(mcs.model.placeholder)
            ),
            credential_form_schemas=[_form_to_pb(f) for f in mcs.credential_form_schemas],
        )
        if mcs
        else None,
    )
