"""ValidateModelCredentials: the server answers, the key works, the UID is a launched model of
the asked type; each failure says which, in words a user can act on."""

from __future__ import annotations

import grpc
import pytest

from modelruntime import client as mr

from ._support import PROVIDER, assert_error, closed_port
from .fake_xinference import (
    API_KEY,
    CHAT,
    EMBEDDING,
    RERANK,
    TTS,
    WHISPER,
    FakeXinference,
    fresh_uid,
)

FAILED = (
    mr.CredentialsValidateFailedError,
    grpc.StatusCode.FAILED_PRECONDITION,
    "CREDENTIALS_VALIDATE_FAILED",
)


def validation_error(
    client: mr.ModelRuntimeClient, model_type: str, credentials: dict[str, str]
) -> mr.ModelRuntimeError:
    with pytest.raises(mr.ModelRuntimeError) as caught:
        client.validate_model_credentials(PROVIDER, model_type, "mine", credentials)
    return caught.value


@pytest.mark.parametrize(
    ("model_type", "uid"),
    [
        ("llm", CHAT),
        ("text-embedding", EMBEDDING),
        ("rerank", RERANK),
        ("speech2text", WHISPER),
        ("tts", TTS),
    ],
)
def test_working_credentials_pass_and_come_back_without_the_key(
    client: mr.ModelRuntimeClient, secured: FakeXinference, model_type: str, uid: str
) -> None:
    kept = client.validate_model_credentials(PROVIDER, model_type, "mine", secured.credentials(uid))

    assert kept == {
        "server_url": secured.url,
        "model_uid": uid,
        "invoke_timeout": "60",
        "max_retries": "0",
    }
    paths = [r.path for r in secured.upstream.requests]
    assert paths == ["/v1/cluster/auth", f"/v1/models/{uid}"]
    assert secured.upstream.last(f"/v1/models/{uid}").headers["authorization"] == (
        f"Bearer {API_KEY}"
    )


def test_validation_reads_the_description_afresh(
    client: mr.ModelRuntimeClient, xinference: FakeXinference
) -> None:
    credentials = xinference.credentials(CHAT)
    client.get_model_schema(PROVIDER, "llm", "mine", credentials)
    client.validate_model_credentials(PROVIDER, "llm", "mine", credentials)
    client.validate_model_credentials(PROVIDER, "llm", "mine", credentials)

    described = [r for r in xinference.upstream.requests if r.path == f"/v1/models/{CHAT}"]
    assert len(described) >= 2


@pytest.mark.parametrize(
    ("model_type", "uid", "words"),
    [
        ("llm", EMBEDDING, "is an embedding model, not usable as llm; add it as a text-embedding"),
        ("text-embedding", CHAT, "is an LLM with abilities chat, tools, vision, not usable"),
        (
            "tts",
            WHISPER,
            "is an audio model with abilities audio2text, not usable as tts; add it"
            " as a speech2text model instead",
        ),
        ("rerank", TTS, "not usable as rerank; add it as a tts model instead"),
    ],
)
def test_a_model_of_another_type_is_named_for_what_it_is(
    client: mr.ModelRuntimeClient,
    xinference: FakeXinference,
    model_type: str,
    uid: str,
    words: str,
) -> None:
    exc = validation_error(client, model_type, xinference.credentials(uid))

    assert_error(exc, *FAILED)
    assert words in str(exc)


def test_a_wrong_key(client: mr.ModelRuntimeClient, secured: FakeXinference) -> None:
    wrong_key = "sk-wrong-xinference-key-1111"

    exc = validation_error(client, "llm", secured.credentials(CHAT, api_key=wrong_key))

    assert_error(exc, *FAILED)
    assert "refused the API key" in str(exc) and "check api_key" in str(exc)
    assert wrong_key not in str(exc)


def test_a_missing_key_on_a_server_with_authentication(
    client: mr.ModelRuntimeClient, secured: FakeXinference
) -> None:
    credentials = secured.credentials(CHAT)
    del credentials["api_key"]

    exc = validation_error(client, "llm", credentials)

    assert_error(exc, *FAILED)
    assert "authentication on; set api_key" in str(exc)
    assert [r.path for r in secured.upstream.requests] == ["/v1/cluster/auth"]


def test_a_uid_that_is_not_launched(
    client: mr.ModelRuntimeClient, xinference: FakeXinference
) -> None:
    uid = fresh_uid("not-launched")
    xinference.unknown_model(uid)

    exc = validation_error(client, "llm", xinference.credentials(uid))

    assert_error(exc, *FAILED)
    assert f"model uid {uid!r} is not running on the Xinference server" in str(exc)


def test_a_server_that_is_not_reachable_stays_a_connection_error(
    client: mr.ModelRuntimeClient,
) -> None:
    url = f"http://127.0.0.1:{closed_port()}"

    exc = validation_error(
        client, "llm", {"server_url": url, "model_uid": CHAT, "max_retries": "0"}
    )

    assert_error(
        exc, mr.InvokeConnectionError, grpc.StatusCode.UNAVAILABLE, "INVOKE_CONNECTION_ERROR"
    )
    assert f"the Xinference server at {url} is not reachable" in str(exc)


def test_provider_credentials_have_nothing_to_check(client: mr.ModelRuntimeClient) -> None:
    assert client.validate_provider_credentials(PROVIDER, {}) == {}
