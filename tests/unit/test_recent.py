"""What a model keeps per credentials: the checked form and the customizable schema, so repeated
calls with the same credentials skip that work (providers.sdk.recent)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from providers.sdk.entities import ModelType
from providers.sdk.loader import load_provider
from providers.sdk.recent import Recent, credentials_key

COMPATIBLE = Path(__file__).resolve().parents[2] / "providers" / "openai_api_compatible"
CREDENTIALS = {
    "endpoint_url": "http://127.0.0.1:1/v1",
    "api_key": "sk-fake-recent-test",
    "mode": "chat",
    "context_size": "4096",
}


def test_the_least_recently_used_entry_goes_first() -> None:
    recent: Recent[str] = Recent(2)
    recent.put(b"a", "A")
    recent.put(b"b", "B")
    assert recent.get(b"a") == "A"  # now b is the least recently used
    recent.put(b"c", "C")
    assert (recent.get(b"a"), recent.get(b"b"), recent.get(b"c")) == ("A", None, "C")


def test_an_entry_older_than_its_max_age_is_gone() -> None:
    recent: Recent[str] = Recent(4, max_age=0.05)
    recent.put(b"a", "A")
    assert recent.get(b"a") == "A"
    time.sleep(0.06)
    assert recent.get(b"a") is None


def test_the_key_tells_credentials_apart_and_holds_no_secret() -> None:
    key = credentials_key("m", CREDENTIALS)
    assert key == credentials_key("m", dict(reversed(CREDENTIALS.items())))
    assert key != credentials_key("m", {**CREDENTIALS, "api_key": "sk-fake-other"})
    assert key != credentials_key("other", CREDENTIALS)
    assert b"sk-fake" not in key


def _llm() -> Any:
    return load_provider(COMPATIBLE).get_model_instance(ModelType.LLM)


def test_each_call_gets_its_own_copy_of_the_checked_credentials() -> None:
    llm = _llm()
    first = llm.check_credential_form("mine", CREDENTIALS)
    first["api_key"] = "changed by a provider"
    assert llm.check_credential_form("mine", CREDENTIALS)["api_key"] == "sk-fake-recent-test"


def test_a_customizable_schema_is_built_once_per_credentials() -> None:
    llm = _llm()
    built: list[str] = []
    build = llm.get_customizable_model_schema

    def counting(model: str, credentials: dict[str, str]) -> Any:
        built.append(credentials["context_size"])
        return build(model, credentials)

    llm.get_customizable_model_schema = counting

    async def schemas() -> list[Any]:
        checked = llm.check_credential_form("mine", CREDENTIALS)
        other = llm.check_credential_form("mine", {**CREDENTIALS, "context_size": "8192"})
        return [
            await llm.model_schema("mine", checked),
            await llm.model_schema("mine", dict(checked)),
            await llm.model_schema("mine", other),
        ]

    first, again, other = asyncio.run(schemas())
    assert first is again
    assert built == ["4096", "8192"]
    assert other.model_properties != first.model_properties
