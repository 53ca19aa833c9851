"""The OpenAI provider: chat, embeddings, moderation, transcription and speech over its HTTP API."""
