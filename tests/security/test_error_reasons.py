"""The reasons added for issue 4, as a caller meets them through the real server and client.

The security reasons (UNAUTHENTICATED, PERMISSION_DENIED, LIMIT_EXCEEDED, OVERLOADED,
CREDENTIAL_SET_NOT_FOUND) are tested with the features that raise them, in this folder.
"""

from __future__ import annotations

import grpc
import pytest

from modelruntime import client as mr

CREDS = {"api_key": "fake-test-key"}


def assert_quota_error(exc: BaseException, model: str) -> None:
    # Code written before the reason existed still catches it as a rate limit...
    assert isinstance(exc, mr.InvokeRateLimitError)
    assert type(exc) is mr.InvokeQuotaExceededError
    assert exc.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert exc.reason == "INVOKE_QUOTA_EXCEEDED"
    assert (exc.provider, exc.model) == ("fake", model)
    # ...but waiting will not help: no RetryInfo, even though the fake was given a delay.
    assert exc.retry_after is None
    assert exc.status is not None
    assert [d.TypeName() for d in exc.status.details] == ["google.rpc.ErrorInfo"]
    assert not exc.retryable


def test_spent_quota_before_the_first_chunk(plain_client: mr.ModelRuntimeClient) -> None:
    parameters: dict[str, mr.ParameterInput] = {"fail_with": "quota", "retry_after": 3.0}
    with pytest.raises(mr.ModelRuntimeError) as caught:
        plain_client.invoke_llm("fake", "fake-chat", CREDS, "hi", model_parameters=parameters)
    assert_quota_error(caught.value, "fake-chat")


def test_spent_quota_mid_stream(plain_client: mr.ModelRuntimeClient) -> None:
    parameters: dict[str, mr.ParameterInput] = {
        "reply": "a b c",
        "fail_with": "quota",
        "fail_after_chunks": 2,
    }
    received: list[str] = []
    with pytest.raises(mr.ModelRuntimeError) as caught:
        for chunk in plain_client.stream_llm(
            "fake", "fake-chat", CREDS, "hi", model_parameters=parameters
        ):
            received.append(chunk.delta.message.content)
    assert received == ["a ", "b "]
    assert_quota_error(caught.value, "fake-chat")


def test_spent_quota_from_provider_credentials(plain_client: mr.ModelRuntimeClient) -> None:
    credentials = {**CREDS, "fail_with": "quota", "retry_after": "3"}
    with pytest.raises(mr.ModelRuntimeError) as caught:
        plain_client.invoke_text_embedding("fake", "fake-embedding", credentials, ["x"])
    assert_quota_error(caught.value, "fake-embedding")
