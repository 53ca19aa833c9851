"""The schema of a launched Xinference model, built from the server's description of it.

Sampling parameters have no defaults here on purpose: a parameter the caller leaves out is not
sent, so the model's own generation config (what its authors recommend) applies, instead of a
runtime-wide guess such as temperature 0 or 512 tokens.
"""

from __future__ import annotations

from typing import Any

from providers.sdk.entities.llm import LLMMode
from providers.sdk.entities.schema import (
    AIModelEntity,
    FetchFrom,
    I18nObject,
    ModelFeature,
    ModelProperties,
    ModelType,
    ParameterRule,
    Voice,
)
from providers.xinference.api import ModelDescription

# When the description gives no context length (old servers), the smallest any current model
# has, so max_tokens is never allowed beyond what the model can hold.
FALLBACK_CONTEXT_LENGTH = 2048
EMBEDDING_BATCH = 32

# Which sampling parameters each inference engine passes on (model_engine in the description,
# lower-cased). An engine not listed gets only temperature, top_p and max_tokens.
_ENGINE_PARAMETERS: dict[str, tuple[str, ...]] = {
    "transformers": ("top_k", "repetition_penalty"),
    "vllm": ("top_k", "repetition_penalty", "presence_penalty", "frequency_penalty"),
    "sglang": ("top_k", "repetition_penalty", "presence_penalty", "frequency_penalty"),
    "llama.cpp": ("top_k", "presence_penalty", "frequency_penalty"),
    "mlx": ("top_k", "repetition_penalty"),
    "lmdeploy": ("top_k", "repetition_penalty"),
}

# Families whose chat templates write tool calls as `<tool_call>{json}</tool_call>` text.
_TAGGED_TOOL_CALL_FAMILIES = ("qwen", "qwq")

# Speakers of the text-to-speech models whose voices are a fixed list (model_name, lower-cased
# prefix). Other models take any voice the server understands (a seed, a speaker id, ...).
_TTS_VOICES: dict[str, tuple[str, list[Voice]]] = {
    "cosyvoice-300m-sft": (
        "中文女",
        [
            Voice(mode="中文女", name="Chinese (female)", language=["zh-Hans"]),
            Voice(mode="中文男", name="Chinese (male)", language=["zh-Hans"]),
            Voice(mode="粤语女", name="Cantonese (female)", language=["zh-Hant"]),
            Voice(mode="英文女", name="English (female)", language=["en-US"]),
            Voice(mode="英文男", name="English (male)", language=["en-US"]),
            Voice(mode="日语男", name="Japanese (male)", language=["ja-JP"]),
            Voice(mode="韩语女", name="Korean (female)", language=["ko-KR"]),
        ],
    ),
}


def _customizable(model: str, model_type: ModelType, **fields: Any) -> AIModelEntity:
    return AIModelEntity(
        model=model,
        label=I18nObject(en_US=model),
        model_type=model_type,
        fetch_from=FetchFrom.CUSTOMIZABLE_MODEL,
        **fields,
    )


def _without_default(rule: ParameterRule) -> ParameterRule:
    return rule.model_copy(update={"default": None})


def llm_schema(model: str, description: ModelDescription) -> AIModelEntity:
    context_length = description.context_length or FALLBACK_CONTEXT_LENGTH
    rules = [
        ParameterRule.of("temperature", use_template="temperature", max=2.0),
        ParameterRule.of("top_p", use_template="top_p"),
        ParameterRule.of("max_tokens", use_template="max_tokens", max=context_length),
    ]
    engine_parameters = _ENGINE_PARAMETERS.get(description.engine.lower(), ())
    if "top_k" in engine_parameters:
        rules.append(ParameterRule.of("top_k", use_template="top_k"))
    if "repetition_penalty" in engine_parameters:
        rules.append(
            ParameterRule.of(
                "repetition_penalty",
                label={"en_US": "Repetition Penalty", "zh_Hans": "重复惩罚"},
                help={
                    "en_US": "Above 1 makes repeating earlier tokens less likely; 1 is neutral.",
                    "zh_Hans": "大于 1 时降低重复已出现标记的概率;1 表示不惩罚。",
                },
                type="float",
                min=0.01,
                max=2.0,
                precision=2,
            )
        )
    for penalty in ("presence_penalty", "frequency_penalty"):
        if penalty in engine_parameters:
            rules.append(ParameterRule.of(penalty, use_template=penalty, min=-2.0, max=2.0))
    abilities = description.abilities
    if "hybrid" in abilities:
        # Hybrid models think or not as asked (Dify's parameter name, for stored app configs).
        rules.append(
            ParameterRule.of(
                "think",
                label={"en_US": "Thinking", "zh_Hans": "思考模式"},
                help={
                    "en_US": "Whether the model reasons before it answers; left out, the "
                    "model's chat template decides.",
                    "zh_Hans": "模型回答前是否先推理;不设置时由模型的对话模板决定。",
                },
                type="boolean",
            )
        )
    features: list[ModelFeature] = []
    if "tools" in abilities:
        features += [ModelFeature.TOOL_CALL, ModelFeature.MULTI_TOOL_CALL]
        if writes_tagged_tool_calls(description):
            # Read out of the streamed text as they arrive (see models/llm/tool_tags.py);
            # other families' tool calls come whole, from a call made without streaming.
            features.append(ModelFeature.STREAM_TOOL_CALL)
    if "vision" in abilities or "omni" in abilities:
        features.append(ModelFeature.VISION)
    if "audio" in abilities or "omni" in abilities:
        features.append(ModelFeature.AUDIO)
    if "reasoning" in abilities or "hybrid" in abilities:
        features.append(ModelFeature.AGENT_THOUGHT)
    return _customizable(
        model,
        ModelType.LLM,
        features=features,
        model_properties=ModelProperties(
            mode=LLMMode.CHAT if description.chats else LLMMode.COMPLETION,
            context_size=context_length,
        ),
        parameter_rules=[_without_default(rule) for rule in rules],
    )


def writes_tagged_tool_calls(description: ModelDescription) -> bool:
    """Whether the model's chat template writes tool calls as `<tool_call>{json}</tool_call>`
    text (Hermes style: the Qwen family), which a stream can be read for."""
    return description.model_family.lower().startswith(_TAGGED_TOOL_CALL_FAMILIES)


def text_embedding_schema(model: str, description: ModelDescription) -> AIModelEntity:
    return _customizable(
        model,
        ModelType.TEXT_EMBEDDING,
        model_properties=ModelProperties(
            context_size=description.max_tokens or description.context_length or 512,
            max_chunks=EMBEDDING_BATCH,
        ),
    )


def rerank_schema(model: str, description: ModelDescription) -> AIModelEntity:
    return _customizable(model, ModelType.RERANK)


def speech2text_schema(model: str, description: ModelDescription) -> AIModelEntity:
    return _customizable(
        model,
        ModelType.SPEECH2TEXT,
        model_properties=ModelProperties(
            file_upload_limit=25,
            supported_file_extensions="flac,m4a,mp3,mp4,mpeg,mpga,ogg,wav,webm",
        ),
    )


def tts_voices(description: ModelDescription) -> tuple[str | None, list[Voice]]:
    """The default voice and the fixed voices of the model, if it has a fixed list."""
    name = description.model_name.lower()
    for prefix, (default, voices) in _TTS_VOICES.items():
        if name.startswith(prefix):
            return default, voices
    return None, []


def tts_schema(model: str, description: ModelDescription) -> AIModelEntity:
    default_voice, voices = tts_voices(description)
    return _customizable(
        model,
        ModelType.TTS,
        model_properties=ModelProperties(
            default_voice=default_voice,
            voices=voices,
            audio_type="mp3",
            word_limit=3500,
            max_workers=5,
        ),
    )
