"""Caller authentication with API keys (`authorization: Bearer <key>`), configured as hashes,
and what each key may use."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
import yaml
from conftest import ServerThread
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from modelruntime import client as mr
from modelruntime.v1 import model_runtime_service_pb2 as pb
from modelruntime.v1 import model_runtime_service_pb2_grpc as pb_grpc
from server.config import ConfigError, load_config

from . import recorded
from .conftest import CALL_TIMEOUT, security_config, serving

FAKE_CREDS = {"api_key": "fake-test-key"}
RECORDER_CREDS = {"api_key": "rec-test-key"}
# Obviously fake caller keys; the server only ever sees their hashes in its config.
ADMIN_KEY = "mrk-test-admin-not-a-real-key"
CHAT_KEY = "mrk-test-chat-not-a-real-key"
FILE_KEY = "mrk-test-file-not-a-real-key"
ENV_KEY = "mrk-test-env-not-a-real-key"
WRONG_KEY = "mrk-test-wrong-not-a-real-key"


def sha256(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def bearer(key: str) -> list[tuple[str, str]]:
    return [("authorization", f"Bearer {key}")]


def assert_refused(exc: BaseException, error: type[mr.ModelRuntimeError], reason: str) -> None:
    assert type(exc) is error
    assert isinstance(exc, mr.ModelRuntimeError)
    code = {
        "UNAUTHENTICATED": grpc.StatusCode.UNAUTHENTICATED,
        "PERMISSION_DENIED": grpc.StatusCode.PERMISSION_DENIED,
    }[reason]
    assert (exc.code, exc.reason, exc.domain) == (code, reason, "modelruntime.v1")
    assert not exc.retryable


@pytest.fixture(scope="module")
def key_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("auth") / "api-keys.yaml"
    path.write_text(yaml.safe_dump([{"name": "from-file", "sha256": sha256(FILE_KEY)}]))
    return path


@pytest.fixture(scope="module")
def server(key_file: Path) -> Iterator[ServerThread]:
    with pytest.MonkeyPatch.context() as env:
        env.setenv("MODELRUNTIME_TEST_KEY_HASH", f"{sha256(ENV_KEY)}  -\n")
        auth = {
            "api_keys": [
                {"name": "admin", "sha256": sha256(ADMIN_KEY)},
                {
                    "name": "chat-only",
                    "sha256": sha256(CHAT_KEY),
                    "providers": ["fake", "recorder"],
                    "models": ["fake-chat", "recorder/*-chat"],
                },
                {"name": "from-env", "sha256": {"env": "MODELRUNTIME_TEST_KEY_HASH"}},
            ],
            "api_keys_file": key_file,
        }
        config = security_config(security={"auth": auth})
    thread = ServerThread(config).start()
    yield thread
    thread.stop()


def client_for(server: ServerThread, key: str | None = None) -> mr.ModelRuntimeClient:
    metadata = bearer(key) if key else ()
    return mr.ModelRuntimeClient(server.address, default_timeout=CALL_TIMEOUT, metadata=metadata)


def chat(client: mr.ModelRuntimeClient, model: str = "fake-chat") -> str:
    parameters: dict[str, mr.ParameterInput] = {"reply": "let in"}
    return client.invoke_llm(
        "fake", model, FAKE_CREDS, "hi", model_parameters=parameters
    ).message.content


# ---- authentication --------------------------------------------------------------------------


@pytest.mark.parametrize("key", [ADMIN_KEY, FILE_KEY, ENV_KEY], ids=["inline", "file", "env"])
def test_a_configured_key_is_let_in(server: ServerThread, key: str) -> None:
    with client_for(server, key) as client:
        assert chat(client) == "let in"
        assert "fake" in [p.provider for p in client.list_providers()]


@pytest.mark.parametrize(
    "metadata",
    [
        [],
        bearer(WRONG_KEY),
        [("authorization", f"Basic {ADMIN_KEY}")],
        [("authorization", "Bearer ")],
        # The hash itself is not a key.
        bearer(sha256(ADMIN_KEY)),
    ],
    ids=["missing", "unknown-key", "not-bearer", "empty", "the-hash"],
)
def test_a_call_without_a_known_key_is_unauthenticated(
    server: ServerThread, metadata: list[tuple[str, str]]
) -> None:
    with (
        mr.ModelRuntimeClient(server.address, default_timeout=CALL_TIMEOUT) as client,
        pytest.raises(mr.ModelRuntimeError) as caught,
    ):
        client.invoke_llm("recorder", "recorder-chat", RECORDER_CREDS, "hi", metadata=metadata)
    assert_refused(caught.value, mr.UnauthenticatedError, "UNAUTHENTICATED")
    assert ADMIN_KEY not in str(caught.value) and WRONG_KEY not in str(caught.value)
    assert recorded.calls() == []


def test_streams_are_refused_before_they_start(server: ServerThread) -> None:
    with client_for(server) as client, pytest.raises(mr.ModelRuntimeError) as caught:
        list(client.stream_llm("recorder", "recorder-chat", RECORDER_CREDS, "hi"))
    assert_refused(caught.value, mr.UnauthenticatedError, "UNAUTHENTICATED")
    assert recorded.calls() == []


def test_every_rpc_of_the_service_needs_a_key(server: ServerThread) -> None:
    with grpc.insecure_channel(server.address) as channel:
        stub = pb_grpc.ModelRuntimeServiceStub(channel)
        with pytest.raises(grpc.RpcError) as caught:
            stub.ListProviders(pb.ListProvidersRequest(), timeout=CALL_TIMEOUT)
        error = mr.from_rpc_error(caught.value)
        assert_refused(error, mr.UnauthenticatedError, "UNAUTHENTICATED")
        with pytest.raises(grpc.RpcError) as caught:
            list(stub.InvokeTTS(pb.InvokeTTSRequest(provider="fake"), timeout=CALL_TIMEOUT))
        assert_refused(mr.from_rpc_error(caught.value), mr.UnauthenticatedError, "UNAUTHENTICATED")


def test_health_and_reflection_stay_open_for_probes(server: ServerThread) -> None:
    with grpc.insecure_channel(server.address) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        answer = health.Check(health_pb2.HealthCheckRequest(), timeout=CALL_TIMEOUT)
        assert answer.status == health_pb2.HealthCheckResponse.SERVING
        reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
        request = reflection_pb2.ServerReflectionRequest(list_services="")
        (reply,) = reflection.ServerReflectionInfo(iter([request]), timeout=CALL_TIMEOUT)
        names = [s.name for s in reply.list_services_response.service]
        assert "modelruntime.v1.ModelRuntimeService" in names


# ---- what a key may use ----------------------------------------------------------------------


def test_a_limited_key_may_use_what_it_lists(server: ServerThread) -> None:
    with client_for(server, CHAT_KEY) as client:
        assert chat(client, "fake-chat") == "let in"
        result = client.invoke_llm("recorder", "recorder-chat", RECORDER_CREDS, "hi")
        assert result.message.content == "1 messages"
        assert [m.model for m in client.list_models("fake")]  # names only a listed provider


@pytest.mark.parametrize(
    ("provider", "model"),
    [("fake", "fake-basic"), ("async_probe", "endless"), ("recorder", "recorder-embedding")],
    ids=["model-not-listed", "provider-not-listed", "pattern-does-not-match"],
)
def test_a_limited_key_is_denied_the_rest(server: ServerThread, provider: str, model: str) -> None:
    with client_for(server, CHAT_KEY) as client, pytest.raises(mr.ModelRuntimeError) as caught:
        if model == "recorder-embedding":
            client.invoke_text_embedding(provider, model, RECORDER_CREDS, ["x"])
        else:
            client.invoke_llm(provider, model, FAKE_CREDS, "hi")
    assert_refused(caught.value, mr.PermissionDeniedError, "PERMISSION_DENIED")
    assert caught.value.provider == provider
    assert "chat-only" in caught.value.message
    assert recorded.calls() == []


def test_a_denied_provider_is_not_listed_either(server: ServerThread) -> None:
    with client_for(server, CHAT_KEY) as client, pytest.raises(mr.PermissionDeniedError):
        client.list_models("async_probe")


def test_permission_is_not_an_upstream_refusal(server: ServerThread) -> None:
    # The upstream refusing the provider credentials keeps its own reason.
    with client_for(server, ADMIN_KEY) as client, pytest.raises(mr.ModelRuntimeError) as caught:
        client.invoke_llm("fake", "fake-chat", {"api_key": "sk-refused"}, "hi")
    assert type(caught.value) is mr.InvokeAuthorizationError
    assert caught.value.reason == "INVOKE_AUTHORIZATION"


# ---- configuration ---------------------------------------------------------------------------


def test_a_key_in_plain_text_is_refused_at_load_without_being_echoed(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(
        yaml.safe_dump(
            {"security": {"auth": {"api_keys": [{"name": "oops", "sha256": ADMIN_KEY}]}}}
        )
    )
    with pytest.raises(ConfigError) as caught:
        load_config(config, environ={})
    assert "64 hex digits" in str(caught.value)
    assert ADMIN_KEY not in str(caught.value)


def test_an_empty_key_file_refuses_everyone(tmp_path: Path) -> None:
    empty = tmp_path / "keys.yaml"
    empty.write_text("")
    with (
        serving(security={"auth": {"api_keys_file": empty}}) as server,
        client_for(server, ADMIN_KEY) as client,
        pytest.raises(mr.UnauthenticatedError),
    ):
        client.list_providers()


def test_listening_beyond_loopback_without_keys_logs_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def warnings() -> list[str]:
        return [
            r.getMessage()
            for r in caplog.records
            if r.name == "modelruntime.security" and r.levelno == logging.WARNING
        ]

    with caplog.at_level(logging.WARNING, logger="modelruntime.security"):
        with serving():
            assert warnings() == []
        with serving(address="0.0.0.0:0"):
            (warning,) = warnings()
            assert "0.0.0.0:0 without caller authentication" in warning
        caplog.clear()
        auth = {"api_keys": [{"name": "admin", "sha256": sha256(ADMIN_KEY)}]}
        with serving(address="0.0.0.0:0", security={"auth": auth}):
            assert warnings() == []
