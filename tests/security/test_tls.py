"""TLS and mutual TLS on the gRPC port, from certificate files named in the config."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from conftest import ServerThread
from grpc_health.v1 import health_pb2, health_pb2_grpc

from modelruntime import client as mr

from .certs import Authority, KeyPair
from .conftest import serving

CREDS = {"api_key": "fake-test-key"}
TIMEOUT = 5.0


@pytest.fixture(scope="module")
def authority() -> Authority:
    return Authority("modelruntime test CA")


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory, authority: Authority) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("tls")
    cert_file, key_file = authority.server().write(folder, "server")
    ca_file = folder / "ca.crt"
    ca_file.write_bytes(authority.pem)
    return {"cert_file": cert_file, "key_file": key_file, "ca_file": ca_file}


def channel_credentials(
    trusted_ca: bytes | None, identity: KeyPair | None = None
) -> grpc.ChannelCredentials:
    return grpc.ssl_channel_credentials(
        root_certificates=trusted_ca,
        private_key=identity.key if identity else None,
        certificate_chain=identity.cert if identity else None,
    )


def tls_client(
    server: ServerThread, trusted_ca: bytes | None, identity: KeyPair | None = None
) -> mr.ModelRuntimeClient:
    credentials = channel_credentials(trusted_ca, identity)
    return mr.ModelRuntimeClient(server.address, credentials=credentials, default_timeout=TIMEOUT)


def assert_refused(client: mr.ModelRuntimeClient) -> None:
    """The handshake fails: the call never reaches the service, so there is no ErrorInfo."""
    with client, pytest.raises(mr.InvokeConnectionError) as caught:
        client.list_providers()
    assert caught.value.code == grpc.StatusCode.UNAVAILABLE
    assert caught.value.reason == ""


def chat(client: mr.ModelRuntimeClient) -> str:
    parameters: dict[str, mr.ParameterInput] = {"reply": "over tls"}
    result = client.invoke_llm("fake", "fake-chat", CREDS, "hi", model_parameters=parameters)
    return result.message.content


# ---- TLS -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls_server(tls_files: dict[str, Path]) -> Iterator[ServerThread]:
    tls = {"cert_file": tls_files["cert_file"], "key_file": tls_files["key_file"]}
    with serving(security={"tls": tls}) as server:
        yield server


def test_tls_serves_a_client_that_trusts_the_ca(
    tls_server: ServerThread, authority: Authority
) -> None:
    with tls_client(tls_server, authority.pem) as client:
        assert chat(client) == "over tls"


def test_tls_refuses_plaintext(tls_server: ServerThread) -> None:
    assert_refused(mr.ModelRuntimeClient(tls_server.address, default_timeout=TIMEOUT))


def test_tls_client_refuses_a_server_it_does_not_trust(tls_server: ServerThread) -> None:
    assert_refused(tls_client(tls_server, Authority("someone else's CA").pem))


# ---- mutual TLS ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mtls_server(tls_files: dict[str, Path]) -> Iterator[ServerThread]:
    tls = {
        "cert_file": tls_files["cert_file"],
        "key_file": tls_files["key_file"],
        "client_ca_file": tls_files["ca_file"],
    }
    with serving(security={"tls": tls}) as server:
        yield server


def test_mtls_serves_a_client_with_a_certificate_from_the_ca(
    mtls_server: ServerThread, authority: Authority
) -> None:
    identity = authority.client("checkout")
    with tls_client(mtls_server, authority.pem, identity) as client:
        assert chat(client) == "over tls"
    # Probes speak the same TLS.
    credentials = channel_credentials(authority.pem, identity)
    with grpc.secure_channel(mtls_server.address, credentials) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        answer = health.Check(health_pb2.HealthCheckRequest(), timeout=TIMEOUT)
    assert answer.status == health_pb2.HealthCheckResponse.SERVING


def test_mtls_refuses_a_client_without_a_certificate(
    mtls_server: ServerThread, authority: Authority
) -> None:
    assert_refused(tls_client(mtls_server, authority.pem))


def test_mtls_refuses_a_certificate_from_another_ca(
    mtls_server: ServerThread, authority: Authority
) -> None:
    rogue = Authority("rogue CA").client("checkout")
    assert_refused(tls_client(mtls_server, authority.pem, rogue))


def test_mtls_refuses_plaintext(mtls_server: ServerThread) -> None:
    assert_refused(mr.ModelRuntimeClient(mtls_server.address, default_timeout=TIMEOUT))


# ---- renewal ---------------------------------------------------------------------------------


def test_a_renewed_certificate_serves_new_connections_without_a_restart(
    tmp_path: Path, authority: Authority
) -> None:
    cert_file, key_file = authority.server().write(tmp_path, "server")
    with serving(security={"tls": {"cert_file": cert_file, "key_file": key_file}}) as server:
        with tls_client(server, authority.pem) as client:
            assert chat(client) == "over tls"
        # The secret is renewed by another CA (the old one is gone from clients' trust).
        renewed = Authority("renewed CA")
        renewed.server().write(tmp_path, "server")
        with tls_client(server, renewed.pem) as client:
            assert chat(client) == "over tls"
        assert_refused(tls_client(server, authority.pem))
