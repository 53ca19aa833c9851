"""Fakes of upstream wire protocols, scriptable per test (built on ../upstream.py)."""
