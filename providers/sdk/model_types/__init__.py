"""Base classes of the six model types; a provider's model class subclasses one of them."""

from providers.sdk.entities.schema import ModelType
from providers.sdk.model_types.ai_model import AIModel
from providers.sdk.model_types.large_language_model import ChunkCollector, LargeLanguageModel
from providers.sdk.model_types.moderation_model import ModerationModel
from providers.sdk.model_types.rerank_model import RerankModel
from providers.sdk.model_types.speech2text_model import Speech2TextModel
from providers.sdk.model_types.text_embedding_model import TextEmbeddingModel
from providers.sdk.model_types.tts_model import TTSModel

BASE_CLASS_BY_MODEL_TYPE: dict[ModelType, type[AIModel]] = {
    ModelType.LLM: LargeLanguageModel,
    ModelType.TEXT_EMBEDDING: TextEmbeddingModel,
    ModelType.RERANK: RerankModel,
    ModelType.SPEECH2TEXT: Speech2TextModel,
    ModelType.TTS: TTSModel,
    ModelType.MODERATION: ModerationModel,
}

__all__ = [
    "BASE_CLASS_BY_MODEL_TYPE",
    "AIModel",
    "ChunkCollector",
    "LargeLanguageModel",
    "ModerationModel",
    "RerankModel",
    "Speech2TextModel",
    "TTSModel",
    "TextEmbeddingModel",
]
