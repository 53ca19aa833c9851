"""Xorbits Inference (Xinference): self-hosted models behind its OpenAI-shaped REST API."""
