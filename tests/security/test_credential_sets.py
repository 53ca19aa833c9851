"""Server-side credential sets: callers name a set instead of sending a key; the secrets come
from environment variables and files, spread over calls, rest after rate limits and refusals,
and never leave the server."""

from __future__ import annotations

import hashlib
import io
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
import yaml
from conftest import ServerThread

from modelruntime import client as mr
from modelruntime.v1 import model_runtime_service_pb2 as pb
from modelruntime.v1 import model_runtime_service_pb2_grpc as pb_grpc
from modelruntime.v1 import schema_pb2
from server.config import ConfigError, load_config
from server.observability.logs import RedactingTextFormatter

from . import recorded
from .conftest import CALL_TIMEOUT, security_config

# Obviously fake keys, which the server reads from the environment and a file.
KEY_A = "rec-key-a-from-env-not-real"
KEY_B = "rec-key-b-from-file-not-real"
BAD_KEY = "bad-key-from-env-not-real"
BUSY_KEY = "busy-key-from-env-not-real"
CRASH_KEY = "crash-key-from-env-not-real"
FAKE_KEY_1 = "fake-key-1-from-env-not-real"
FAKE_KEY_2 = "fake-key-2-from-env-not-real"
# Not a secret field of the provider's form, but read from a secret: scrubbed all the same.
REGION = "region-from-env-not-real"
SECRETS = [KEY_A, KEY_B, BAD_KEY, BUSY_KEY, CRASH_KEY, FAKE_KEY_1, FAKE_KEY_2, REGION]
ENVIRONMENT = {
    "SEC_TEST_REGION": REGION,
    "SEC_TEST_KEY_A": KEY_A,
    "SEC_TEST_BAD_KEY": BAD_KEY,
    "SEC_TEST_BUSY_KEY": BUSY_KEY,
    "SEC_TEST_CRASH_KEY": CRASH_KEY,
    "SEC_TEST_FAKE_KEY_1": FAKE_KEY_1,
    "SEC_TEST_FAKE_KEY_2": FAKE_KEY_2,
}
CALLER_KEY = "mrk-test-caller-not-a-real-key"


@pytest.fixture(scope="module")
def key_b_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("secrets") / "key-b"
    path.write_text(KEY_B + "\n")  # as an editor leaves it
    return path


def credential_sets(key_b_file: Path, cooldown: float = 60.0) -> dict[str, Any]:
    return {
        "rec": {
            "provider": "recorder",
            "credentials": [
                {"api_key": {"env": "SEC_TEST_KEY_A"}, "region": "eu"},
                {"api_key": {"file": str(key_b_file)}, "region": "us"},
            ],
        },
        "rec-with-a-bad-key": {
            "provider": "recorder",
            "cooldown_seconds": cooldown,
            "credentials": [
                {"api_key": {"env": "SEC_TEST_BAD_KEY"}, "region": {"env": "SEC_TEST_REGION"}},
                {"api_key": {"env": "SEC_TEST_KEY_A"}},
            ],
        },
        "rec-all-busy": {
            "provider": "recorder",
            "cooldown_seconds": cooldown,
            "credentials": [
                {"api_key": {"env": "SEC_TEST_BUSY_KEY"}},
                {"api_key": {"env": "SEC_TEST_BAD_KEY"}},
            ],
        },
        "rec-crashing": {
            "provider": "recorder",
            "credentials": [
                {"api_key": {"env": "SEC_TEST_CRASH_KEY"}, "region": {"env": "SEC_TEST_REGION"}}
            ],
        },
        # The fake provider's own failure modes: the first key's upstream rate-limits.
        "fake-rotating": {
            "provider": "fake",
            "cooldown_seconds": cooldown,
            "credentials": [
                {"api_key": {"env": "SEC_TEST_FAKE_KEY_1"}, "fail_with": "rate_limit"},
                {"api_key": {"env": "SEC_TEST_FAKE_KEY_2"}},
            ],
        },
    }


def start(key_b_file: Path, cooldown: float = 60.0, **security: Any) -> ServerThread:
    """A server whose sets read the environment above, which is gone again once it runs."""
    with pytest.MonkeyPatch.context() as env:
        for name, value in ENVIRONMENT.items():
            env.setenv(name, value)
        config = security_config(
            security={"credential_sets": credential_sets(key_b_file, cooldown), **security}
        )
    return ServerThread(config).start()


@pytest.fixture
def server(key_b_file: Path) -> Iterator[ServerThread]:
    """A fresh server per test: the sets' turns and rests start over."""
    thread = start(key_b_file)
    yield thread
    thread.stop()


@pytest.fixture
def stub(server: ServerThread) -> Iterator[pb_grpc.ModelRuntimeServiceStub]:
    with grpc.insecure_channel(server.address) as channel:
        yield pb_grpc.ModelRuntimeServiceStub(channel)


def chat_request(provider: str, model: str, credential_set: str, **fields: Any) -> Any:
    return pb.InvokeLLMRequest(
        provider=provider,
        model=model,
        credential_set=credential_set,
        prompt_messages=mr.to_prompt_messages("hi"),
        **fields,
    )


def call_error(call: Any, request: Any) -> mr.ModelRuntimeError:
    with pytest.raises(grpc.RpcError) as caught:
        call(request, timeout=CALL_TIMEOUT)
    return mr.from_rpc_error(caught.value)


def recorded_keys() -> list[str]:
    return [c.api_key for c in recorded.calls()]


# ---- a set stands in for the credentials -----------------------------------------------------


def test_calls_take_the_sets_keys_in_turn(stub: pb_grpc.ModelRuntimeServiceStub) -> None:
    for _ in range(4):
        answer = stub.InvokeLLM(chat_request("recorder", "recorder-chat", "rec"))
        assert answer.result.message.content == "1 messages"
    assert [(c.api_key, c.region) for c in recorded.calls()] == [
        (KEY_A, "eu"),
        (KEY_B, "us"),  # read from the file, without its line break
        (KEY_A, "eu"),
        (KEY_B, "us"),
    ]


def test_every_request_with_credentials_takes_a_set(
    stub: pb_grpc.ModelRuntimeServiceStub,
) -> None:
    target = {"provider": "recorder", "credential_set": "rec"}
    stub.InvokeTextEmbedding(
        pb.InvokeTextEmbeddingRequest(model="recorder-embedding", texts=["x"], **target)
    )
    stub.GetTextEmbeddingNumTokens(
        pb.GetTextEmbeddingNumTokensRequest(model="recorder-embedding", texts=["x"], **target)
    )
    stub.InvokeSpeech2Text(
        pb.InvokeSpeech2TextRequest(model="recorder-s2t", file=b"RIFF", **target)
    )
    list(
        stub.StreamLLM(
            pb.StreamLLMRequest(
                model="recorder-chat", prompt_messages=mr.to_prompt_messages("hi"), **target
            )
        )
    )
    stub.ValidateModelCredentials(
        pb.ValidateModelCredentialsRequest(
            model="recorder-chat", model_type=schema_pb2.MODEL_TYPE_LLM, **target
        )
    )
    stub.ValidateProviderCredentials(pb.ValidateProviderCredentialsRequest(**target))
    assert recorded_keys() == [KEY_A, KEY_B, KEY_A, KEY_B, KEY_A, KEY_B]


def test_a_validation_answer_echoes_nothing_of_a_set(
    stub: pb_grpc.ModelRuntimeServiceStub,
) -> None:
    inline = stub.ValidateProviderCredentials(
        pb.ValidateProviderCredentialsRequest(
            provider="recorder", credentials={"api_key": "rec-inline", "region": "eu"}
        )
    )
    assert dict(inline.credentials) == {"region": "eu"}  # secret fields are left out anyway
    from_set = stub.ValidateProviderCredentials(
        pb.ValidateProviderCredentialsRequest(provider="recorder", credential_set="rec")
    )
    assert dict(from_set.credentials) == {}


def test_an_unknown_set_is_not_found(stub: pb_grpc.ModelRuntimeServiceStub) -> None:
    error = call_error(stub.InvokeLLM, chat_request("recorder", "recorder-chat", "nope"))
    assert type(error) is mr.CredentialSetNotFoundError
    assert (error.code, error.reason) == (grpc.StatusCode.NOT_FOUND, "CREDENTIAL_SET_NOT_FOUND")
    assert error.credential_set == "nope"
    assert recorded.calls() == []


def test_a_set_and_credentials_together_are_refused(stub: pb_grpc.ModelRuntimeServiceStub) -> None:
    request = chat_request("recorder", "recorder-chat", "rec", credentials={"region": "evil"})
    error = call_error(stub.InvokeLLM, request)
    assert type(error) is mr.InvalidRequestError
    assert (error.code, error.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_REQUEST")
    assert [v.field for v in error.field_violations] == ["credential_set"]
    assert recorded.calls() == []


def test_a_set_of_another_provider_is_refused(stub: pb_grpc.ModelRuntimeServiceStub) -> None:
    error = call_error(stub.InvokeLLM, chat_request("fake", "fake-chat", "rec"))
    assert type(error) is mr.InvalidRequestError
    assert (error.code, error.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_REQUEST")
    assert "for provider 'recorder'" in error.field_violations[0].description


# ---- rotation --------------------------------------------------------------------------------


def test_a_rate_limited_key_rests_and_traffic_moves_to_the_other(
    stub: pb_grpc.ModelRuntimeServiceStub,
) -> None:
    # The fake's first key fails with a rate limit; without the rest, every other call would.
    first = call_error(stub.InvokeLLM, chat_request("fake", "fake-chat", "fake-rotating"))
    assert type(first) is mr.InvokeRateLimitError
    assert (first.code, first.reason) == (grpc.StatusCode.RESOURCE_EXHAUSTED, "INVOKE_RATE_LIMIT")
    for _ in range(6):
        answer = stub.InvokeLLM(chat_request("fake", "fake-chat", "fake-rotating"))
        assert answer.result.message.content == "hi"


def test_a_refused_key_rests_and_its_secret_is_not_echoed(
    stub: pb_grpc.ModelRuntimeServiceStub,
) -> None:
    first = call_error(
        stub.InvokeLLM, chat_request("recorder", "recorder-chat", "rec-with-a-bad-key")
    )
    assert type(first) is mr.InvokeAuthorizationError
    assert (first.code, first.reason) == (grpc.StatusCode.PERMISSION_DENIED, "INVOKE_AUTHORIZATION")
    assert BAD_KEY not in first.message and REGION not in first.message
    assert first.message == "Incorrect API key provided: *** in '***'"
    for _ in range(4):
        stub.InvokeLLM(chat_request("recorder", "recorder-chat", "rec-with-a-bad-key"))
    assert recorded_keys() == [BAD_KEY, KEY_A, KEY_A, KEY_A, KEY_A]


def test_a_rested_key_comes_back_after_its_cooldown(key_b_file: Path) -> None:
    server = start(key_b_file, cooldown=0.3)
    try:
        with grpc.insecure_channel(server.address) as channel:
            stub = pb_grpc.ModelRuntimeServiceStub(channel)
            request = chat_request("recorder", "recorder-chat", "rec-with-a-bad-key")
            call_error(stub.InvokeLLM, request)
            stub.InvokeLLM(request)
            time.sleep(0.5)
            call_error(stub.InvokeLLM, request)
    finally:
        server.stop()
    assert recorded_keys() == [BAD_KEY, KEY_A, BAD_KEY]


def test_when_every_key_rests_the_upstream_answers_for_the_first_back(
    stub: pb_grpc.ModelRuntimeServiceStub,
) -> None:
    request = chat_request("recorder", "recorder-chat", "rec-all-busy")
    call_error(stub.InvokeLLM, request)  # the busy key rests first...
    call_error(stub.InvokeLLM, request)  # ...then the refused one
    third = call_error(stub.InvokeLLM, request)
    # The upstream's own rate limit, with its Retry-After, tells the caller when to come back.
    assert type(third) is mr.InvokeRateLimitError
    assert third.retry_after == 0.5
    assert recorded_keys() == [BUSY_KEY, BAD_KEY, BUSY_KEY]


# ---- secrets stay on the server --------------------------------------------------------------


def test_no_secret_of_a_set_reaches_a_caller_or_a_log(
    stub: pb_grpc.ModelRuntimeServiceStub, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[str] = []

    def attempt(call: Any, request: Any) -> None:
        try:
            seen.append(str(call(request, timeout=CALL_TIMEOUT)))
        except grpc.RpcError as exc:
            error = mr.from_rpc_error(exc)
            seen.extend([str(error), repr(error.status), str(exc.trailing_metadata())])

    with caplog.at_level(logging.DEBUG):
        for name in ["rec-with-a-bad-key", "rec-all-busy", "fake-rotating", "rec"]:
            provider = "fake" if name.startswith("fake") else "recorder"
            for _ in range(3):
                attempt(stub.InvokeLLM, chat_request(provider, f"{provider}-chat", name))
            attempt(
                stub.ValidateProviderCredentials,
                pb.ValidateProviderCredentialsRequest(provider=provider, credential_set=name),
            )
    seen.extend(record.getMessage() for record in caplog.records)
    assert any("rests for" in text for text in seen)  # the rest was logged, by entry number
    for secret in SECRETS:
        assert not [text for text in seen if secret in text], secret


def test_a_provider_bugs_logged_traceback_holds_no_secret_of_the_set(
    stub: pb_grpc.ModelRuntimeServiceStub,
) -> None:
    # The server's own log formatter, which redacts the secrets of the call being served.
    output = io.StringIO()
    handler = logging.StreamHandler(output)
    handler.setFormatter(RedactingTextFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        error = call_error(
            stub.InvokeLLM, chat_request("recorder", "recorder-chat", "rec-crashing")
        )
    finally:
        root.removeHandler(handler)
    assert type(error) is mr.InternalError
    logged = output.getvalue()
    assert "provider bug while using [REDACTED] in [REDACTED]" in logged  # the traceback
    assert CRASH_KEY not in logged and REGION not in logged


def test_inline_credentials_can_be_refused(key_b_file: Path) -> None:
    server = start(key_b_file, allow_inline_credentials=False)
    try:
        with mr.ModelRuntimeClient(server.address, default_timeout=CALL_TIMEOUT) as client:
            with pytest.raises(mr.ModelRuntimeError) as caught:
                client.invoke_llm("recorder", "recorder-chat", {"api_key": "rec-inline"}, "hi")
            assert type(caught.value) is mr.PermissionDeniedError
            assert (caught.value.code, caught.value.reason) == (
                grpc.StatusCode.PERMISSION_DENIED,
                "PERMISSION_DENIED",
            )
            assert "credential_set" in caught.value.message
            assert recorded.calls() == []
            # Listing needs no credentials and still works; a set still does.
            assert client.list_providers()
        with grpc.insecure_channel(server.address) as channel:
            stub = pb_grpc.ModelRuntimeServiceStub(channel)
            stub.InvokeLLM(chat_request("recorder", "recorder-chat", "rec"), timeout=CALL_TIMEOUT)
        assert recorded_keys() == [KEY_A]
    finally:
        server.stop()


def test_a_caller_key_may_be_limited_to_some_sets(key_b_file: Path) -> None:
    digest = hashlib.sha256(CALLER_KEY.encode()).hexdigest()
    auth = {"api_keys": [{"name": "rec-only", "sha256": digest, "credential_sets": ["rec"]}]}
    server = start(key_b_file, auth=auth)
    try:
        with grpc.insecure_channel(server.address) as channel:
            stub = pb_grpc.ModelRuntimeServiceStub(channel)
            metadata = [("authorization", f"Bearer {CALLER_KEY}")]
            stub.InvokeLLM(chat_request("recorder", "recorder-chat", "rec"), metadata=metadata)
            # A set it may not use, and one that does not exist, look the same to it.
            for name in ["fake-rotating", "no-such-set"]:
                with pytest.raises(grpc.RpcError) as caught:
                    stub.InvokeLLM(chat_request("fake", "fake-chat", name), metadata=metadata)
                error = mr.from_rpc_error(caught.value)
                assert type(error) is mr.PermissionDeniedError
                assert (error.code, error.reason) == (
                    grpc.StatusCode.PERMISSION_DENIED,
                    "PERMISSION_DENIED",
                )
    finally:
        server.stop()
    assert recorded_keys() == [KEY_A]


# ---- configuration ---------------------------------------------------------------------------


def test_a_missing_secret_fails_at_load_naming_its_source(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    sets = {"s": {"provider": "fake", "credentials": [{"api_key": {"env": "SEC_TEST_UNSET"}}]}}
    config.write_text(yaml.safe_dump({"security": {"credential_sets": sets}}))
    with pytest.raises(ConfigError, match="SEC_TEST_UNSET is not set"):
        load_config(config, environ={})


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        (
            {"s": {"provider": "fake", "credentials": [{"api_key": "fake-in-plain-text"}]}},
            "api_key should come from {env: ...} or {file: ...}",
        ),
        (
            {"s": {"provider": "nope", "credentials": [{"region": "eu"}]}},
            "provider 'nope' is not loaded",
        ),
    ],
    ids=["secret-in-plain-text", "unknown-provider"],
)
def test_a_set_that_does_not_fit_the_providers_stops_the_start(
    sets: dict[str, Any], message: str
) -> None:
    config = security_config(security={"credential_sets": sets})
    with pytest.raises(ConfigError) as caught:
        ServerThread(config).start()
    assert message in str(caught.value)
    assert "fake-in-plain-text" not in str(caught.value)
