"""A model provider folder in the exact layout of a Dify model plugin loads unchanged through the
real server and answers calls.

The folder is written to a temporary directory the way Dify's plugin tooling lays one out:
`manifest.yaml` and the plugin's `main.py` entry point beside `provider/`, the provider YAML
with Dify's keys in Dify's spelling (`extra.python.provider_source` / `model_sources`,
`models.llm.predefined` globs and `models.llm.position`, `icon_small_dark`, `background`),
`_assets/` icons, and a provider class and a model class written in the seed's synchronous style
(blocking code, a plain generator for streams, `_invoke_error_mapping` as a property). The
server gets the folder from a config file's `provider_paths`, as `modelruntime serve --config`
would, and is called through the real client.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import grpc
import pytest
from conftest import ServerThread

from modelruntime import client as mr
from server.config import load_config

PROVIDER = "acme_echo"
KEY = "acme-test-not-a-real-key"

FILES = {
    "manifest.yaml": """
        version: 0.0.3
        type: plugin
        author: acme
        name: acme_echo
        label:
          en_US: Acme Echo
          zh_Hans: Acme 回声
        description:
          en_US: Echoes the prompt back, one word at a time.
        icon: icon.svg
        icon_dark: icon_dark.svg
        resource:
          memory: 268435456
          permission:
            model:
              enabled: true
              llm: true
        plugins:
          models:
            - provider/acme_echo.yaml
        meta:
          version: 0.0.1
          arch:
            - amd64
            - arm64
          runner:
            language: python
            version: "3.12"
            entrypoint: main
          minimum_dify_version: 1.0.0
        created_at: 2026-01-01T00:00:00.000000+00:00
        privacy: PRIVACY.md
        verified: false
    """,
    # The plugin process's entry point in Dify; the runtime must not import it (dify_plugin is
    # not installed here, so importing it would fail the load).
    "main.py": """
        from dify_plugin import DifyPluginEnv, Plugin

        plugin = Plugin(DifyPluginEnv(MAX_REQUEST_TIMEOUT=120))

        if __name__ == "__main__":
            plugin.run()
    """,
    "requirements.txt": "dify_plugin>=0.4.0,<0.5.0\n",
    "PRIVACY.md": "This plugin sends nothing anywhere.\n",
    "README.md": "# Acme Echo\n",
    ".difyignore": "__pycache__/\n",
    "_assets/icon.svg": '<svg xmlns="http://www.w3.org/2000/svg" width="8" height="8"/>\n',
    "_assets/icon_dark.svg": '<svg xmlns="http://www.w3.org/2000/svg" width="8" height="8"/>\n',
    "provider/acme_echo.yaml": """
        background: '#E5F0FF'
        configurate_methods:
        - predefined-model
        description:
          en_US: Echoes the prompt back, one word at a time.
          zh_Hans: 逐词回显提示。
        extra:
          python:
            model_sources:
            - models/llm/llm.py
            provider_source: provider/acme_echo.py
        help:
          title:
            en_US: Get your API key from Acme
            zh_Hans: 从 Acme 获取 API Key
          url:
            en_US: https://example.invalid/acme/keys
        icon_large:
          en_US: icon.svg
        icon_small:
          en_US: icon.svg
        icon_small_dark:
          en_US: icon_dark.svg
        label:
          en_US: Acme Echo
          zh_Hans: Acme 回声
        models:
          llm:
            position: models/llm/_position.yaml
            predefined:
            - models/llm/*.yaml
        provider: acme_echo
        provider_credential_schema:
          credential_form_schemas:
          - label:
              en_US: API Key
            placeholder:
              en_US: Enter your API Key
              zh_Hans: 在此输入您的 API Key
            required: true
            type: secret-input
            variable: api_key
          - default: 'no'
            label:
              en_US: Shout
            options:
            - label:
                en_US: 'Yes'
              value: 'yes'
            - label:
                en_US: 'No'
              value: 'no'
            required: false
            show_on: []
            type: select
            variable: shout
        supported_model_types:
        - llm
    """,
    "provider/acme_echo.py": """
        import logging

        from providers.sdk.entities.schema import ModelType
        from providers.sdk.errors import CredentialsValidateFailedError
        from providers.sdk.provider import ModelProvider

        logger = logging.getLogger(__name__)


        class AcmeEchoProvider(ModelProvider):
            def validate_provider_credentials(self, credentials: dict) -> None:
                try:
                    model_instance = self.get_model_instance(ModelType.LLM)
                    model_instance.validate_credentials(model="echo-small", credentials=credentials)
                except CredentialsValidateFailedError as ex:
                    raise ex
                except Exception as ex:
                    logger.exception("acme_echo credentials validate failed")
                    raise ex
    """,
    "models/llm/_position.yaml": """
        - echo-large
        - echo-small
    """,
    "models/llm/echo-small.yaml": """
        model: echo-small
        label:
          zh_Hans: echo-small
          en_US: echo-small
        model_type: llm
        features:
          - agent-thought
        model_properties:
          mode: chat
          context_size: 8192
        parameter_rules:
          - name: temperature
            use_template: temperature
          - name: max_tokens
            use_template: max_tokens
            default: 512
            min: 1
            max: 4096
          - name: delay_ms
            label:
              en_US: Delay between words
            type: int
            default: 0
            min: 0
            max: 1000
            help:
              en_US: Milliseconds to wait before each word.
        pricing:
          input: '0.5'
          output: '1.5'
          unit: '0.000001'
          currency: USD
    """,
    "models/llm/echo-large.yaml": """
        model: echo-large
        label:
          en_US: echo-large
        model_type: llm
        features:
          - tool-call
          - stream-tool-call
        model_properties:
          mode: chat
          context_size: 128000
        parameter_rules:
          - name: temperature
            use_template: temperature
        pricing:
          input: '3'
          output: '15'
          unit: '0.000001'
          currency: USD
        deprecated: false
    """,
    "models/llm/llm.py": """
        import time
        from collections.abc import Generator
        from typing import Optional, Union

        from providers.sdk.entities import (
            AssistantPromptMessage,
            AssistantPromptMessageDelta,
            LLMResult,
            LLMResultChunk,
            LLMResultChunkDelta,
            LLMUsage,
            PromptMessage,
            PromptMessageTool,
        )
        from providers.sdk.errors import (
            CredentialsValidateFailedError,
            InvokeAuthorizationError,
            InvokeConnectionError,
            InvokeError,
        )
        from providers.sdk.model_types import LargeLanguageModel

        from ._words import words_of


        class AcmeEchoLargeLanguageModel(LargeLanguageModel):
            def _invoke(
                self,
                model: str,
                credentials: dict,
                prompt_messages: list[PromptMessage],
                model_parameters: dict,
                tools: Optional[list[PromptMessageTool]] = None,
                stop: Optional[list[str]] = None,
                stream: bool = True,
                user: Optional[str] = None,
            ) -> Union[LLMResult, Generator]:
                if not credentials["api_key"].startswith("acme-"):
                    raise PermissionError("unknown API key")
                text = prompt_messages[-1].content
                if credentials.get("shout") == "yes":
                    text = text.upper()
                words = words_of(text)
                prompt_tokens = self.get_num_tokens(model, credentials, prompt_messages, tools)
                usage = LLMUsage(prompt_tokens=prompt_tokens, completion_tokens=len(words))
                if stream:
                    return self._handle_stream_response(model, words, usage, model_parameters)
                return self._handle_sync_response(model, words, usage)

            def _handle_stream_response(
                self, model: str, words: list, usage: LLMUsage, model_parameters: dict
            ) -> Generator:
                for word in words:
                    time.sleep(model_parameters.get("delay_ms", 0) / 1000)
                    yield LLMResultChunk(
                        model=model,
                        delta=LLMResultChunkDelta(
                            message=AssistantPromptMessageDelta(content=word)
                        ),
                    )
                yield LLMResultChunk(
                    model=model,
                    delta=LLMResultChunkDelta(usage=usage, finish_reason="stop"),
                )

            def _handle_sync_response(self, model: str, words: list, usage: LLMUsage) -> LLMResult:
                return LLMResult(
                    model=model,
                    message=AssistantPromptMessage(content="".join(words)),
                    usage=usage,
                    finish_reason="stop",
                )

            def get_num_tokens(
                self,
                model: str,
                credentials: dict,
                prompt_messages: list[PromptMessage],
                tools: Optional[list[PromptMessageTool]] = None,
            ) -> int:
                return sum(len(words_of(m.get_text_content())) for m in prompt_messages)

            def validate_credentials(self, model: str, credentials: dict) -> None:
                try:
                    self._invoke(model, credentials, [], {}, stream=False)
                except IndexError:
                    pass  # no prompt: the key was accepted
                except Exception as ex:
                    raise CredentialsValidateFailedError(str(ex))

            @property
            def _invoke_error_mapping(self) -> dict[type[InvokeError], list[type[Exception]]]:
                return {
                    InvokeConnectionError: [ConnectionError],
                    InvokeAuthorizationError: [PermissionError],
                }
    """,
    # A sibling module, imported relatively by the model class.
    "models/llm/_words.py": """
        import re


        def words_of(text: str) -> list:
            return re.findall(r"\\S+\\s*", text)
    """,
}


@pytest.fixture(scope="module")
def plugin_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    root = tmp_path_factory.mktemp("dify_plugins")
    folder = root / PROVIDER
    for name, text in FILES.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    config_file = root / "modelruntime.yaml"
    config_file.write_text(f"address: 127.0.0.1:0\nprovider_paths:\n  - {folder}\n")
    config = load_config(config_file, environ={})
    thread = ServerThread(config).start()
    yield thread
    thread.stop()


@pytest.fixture(scope="module")
def plugin_client(plugin_server: ServerThread) -> Iterator[mr.ModelRuntimeClient]:
    with mr.ModelRuntimeClient(plugin_server.address, default_timeout=10) as client:
        yield client


def test_the_provider_is_listed_as_its_yaml_says(plugin_client: mr.ModelRuntimeClient) -> None:
    (entity,) = [p for p in plugin_client.list_providers() if p.provider == PROVIDER]

    assert (entity.label.en_us, entity.label.zh_hans) == ("Acme Echo", "Acme 回声")
    assert entity.icon_small.en_us == "icon.svg"
    assert entity.background == "#E5F0FF"
    assert entity.help.url.en_us == "https://example.invalid/acme/keys"
    form = entity.provider_credential_schema.credential_form_schemas
    assert [f.variable for f in form] == ["api_key", "shout"]
    # The built-in providers are served beside it.
    assert "openai_api_compatible" in {p.provider for p in plugin_client.list_providers()}


def test_models_come_from_the_globs_in_position_order_with_their_pricing(
    plugin_client: mr.ModelRuntimeClient,
) -> None:
    models = plugin_client.list_models(PROVIDER, "llm")

    assert [m.model for m in models] == ["echo-large", "echo-small"]
    small = models[1]
    assert small.model_properties.context_size == 8192
    assert [r.name for r in small.parameter_rules] == ["temperature", "max_tokens", "delay_ms"]
    assert (small.pricing.input, small.pricing.output, small.pricing.unit) == (
        "0.5",
        "1.5",
        "0.000001",
    )


def test_the_sync_model_streams_word_by_word_priced_from_its_yaml(
    plugin_client: mr.ModelRuntimeClient,
) -> None:
    chunks = list(
        plugin_client.stream_llm(
            PROVIDER, "echo-small", {"api_key": KEY}, "one two three", {"delay_ms": 5}
        )
    )

    assert [c.delta.message.content for c in chunks] == ["one ", "two ", "three", ""]
    usage = chunks[-1].delta.usage
    assert (usage.prompt_tokens, usage.completion_tokens) == (3, 3)
    assert Decimal(usage.prompt_price) == Decimal("0.0000015")
    assert Decimal(usage.completion_price) == Decimal("0.0000045")
    assert chunks[-1].delta.finish_reason == "stop"


def test_the_sync_model_answers_whole_with_credentials_from_its_form(
    plugin_client: mr.ModelRuntimeClient,
) -> None:
    result = plugin_client.invoke_llm(
        PROVIDER, "echo-large", {"api_key": KEY, "shout": "yes"}, "quiet please"
    )

    assert result.message.content == "QUIET PLEASE"
    assert plugin_client.get_llm_num_tokens(PROVIDER, "echo-large", {"api_key": KEY}, "a b c") == 3


def test_its_error_mapping_and_credential_checks_hold(
    plugin_client: mr.ModelRuntimeClient,
) -> None:
    with pytest.raises(mr.InvokeAuthorizationError) as refused:
        plugin_client.invoke_llm(PROVIDER, "echo-small", {"api_key": "wrong-key"}, "hi")
    assert refused.value.code == grpc.StatusCode.PERMISSION_DENIED
    assert refused.value.reason == "INVOKE_AUTHORIZATION"

    assert plugin_client.validate_provider_credentials(PROVIDER, {"api_key": KEY}) == {
        "shout": "no"
    }
    with pytest.raises(mr.CredentialsValidateFailedError) as failed:
        plugin_client.validate_provider_credentials(PROVIDER, {"api_key": "wrong-key"})
    assert failed.value.reason == "CREDENTIALS_VALIDATE_FAILED"

    with pytest.raises(mr.InvalidCredentialsError) as invalid:
        plugin_client.invoke_llm(PROVIDER, "echo-small", {"api_key": KEY, "shout": "loud"}, "x")
    assert [v.field for v in invalid.value.field_violations] == ["credentials.shout"]


def test_the_plugin_folder_was_left_as_written(plugin_server: ServerThread) -> None:
    folder = Path(plugin_server.config.provider_paths[0])
    for name, text in FILES.items():
        assert (folder / name).read_text(encoding="utf-8") == textwrap.dedent(text).lstrip()
