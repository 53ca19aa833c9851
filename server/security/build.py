"""Builds the server's security from its config: the interceptors, the servicer's guard, and
the listening port (plaintext, TLS or mutual TLS)."""

from __future__ import annotations

import ipaddress
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from providers.sdk import ProviderRegistry
from server.config import ServerConfig
from server.security.auth import ApiKeys, AuthInterceptor
from server.security.config import TlsConfig
from server.security.credential_sets import CredentialSets
from server.security.guard import CallGuard
from server.security.limits import (
    ConcurrencyLimiter,
    MessageSizeInterceptor,
    RequestLimits,
    transport_receive_limit,
)

logger = logging.getLogger("modelruntime.security")


@dataclass
class Security:
    guard: CallGuard
    tls: TlsConfig
    # gRPC's own limit on a received message (see limits.py for why it is not ours).
    transport_receive_limit: int
    interceptors: list[grpc.aio.ServerInterceptor] = field(default_factory=list)

    def add_port(self, server: grpc.aio.Server, address: str) -> int:
        """Listens on `address`, with TLS when the config names certificates; 0 on failure."""
        port: int
        if self.tls.enabled:
            port = server.add_secure_port(address, server_credentials(self.tls))
        else:
            port = server.add_insecure_port(address)
        return port


def build_security(config: ServerConfig, registry: ProviderRegistry) -> Security:
    """Raises ConfigError when a credential set does not fit the loaded providers."""
    security = config.security
    credential_sets = CredentialSets(security.credential_sets, security.allow_inline_credentials)
    credential_sets.check_against(registry)
    interceptors: list[grpc.aio.ServerInterceptor] = []
    if security.auth.enabled:
        interceptors.append(AuthInterceptor(ApiKeys(security.auth.keys)))
    elif not _is_loopback(config.address):
        logger.warning(
            "listening on %s without caller authentication: anyone who can reach this port can "
            "call the providers with the credentials the server holds; configure security.auth "
            "(docs/operating/security.md), or make sure a mesh policy guards the port",
            config.address,
        )
    interceptors.append(MessageSizeInterceptor(config.max_receive_message_bytes))
    guard = CallGuard(
        RequestLimits(config.limits, config.max_receive_message_bytes),
        ConcurrencyLimiter(config.limits),
        credential_sets,
        auth_required=security.auth.enabled,
    )
    return Security(
        guard=guard,
        tls=security.tls,
        transport_receive_limit=transport_receive_limit(config.max_receive_message_bytes),
        interceptors=interceptors,
    )


def _is_loopback(address: str) -> bool:
    host = address.rpartition(":")[0].strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name, or empty (every interface)
        return False


def server_credentials(tls: TlsConfig) -> grpc.ServerCredentials:
    """TLS credentials that re-read the files when one changes, for the next new connection,
    so a renewed certificate (a Kubernetes secret swaps its files at once) needs no restart."""
    files = _TlsFiles(tls)
    return grpc.dynamic_ssl_server_credentials(
        files.configuration(),
        files.changed_configuration,
        require_client_authentication=tls.client_ca_file is not None,
    )


class _TlsFiles:
    def __init__(self, tls: TlsConfig) -> None:
        assert tls.cert_file is not None and tls.key_file is not None
        self._cert = tls.cert_file
        self._key = tls.key_file
        self._client_ca = tls.client_ca_file
        self._stamp = self._mtimes()

    def _paths(self) -> list[Path]:
        return [p for p in (self._cert, self._key, self._client_ca) if p is not None]

    def _mtimes(self) -> tuple[float, ...]:
        return tuple(os.stat(p).st_mtime_ns for p in self._paths())

    def configuration(self) -> grpc.ServerCertificateConfiguration:
        return grpc.ssl_server_certificate_configuration(
            [(self._key.read_bytes(), self._cert.read_bytes())],
            root_certificates=self._client_ca.read_bytes() if self._client_ca else None,
        )

    def changed_configuration(self) -> grpc.ServerCertificateConfiguration | None:
        """Called by gRPC before each new handshake: None keeps the current certificate."""
        try:
            stamp = self._mtimes()
            if stamp == self._stamp:
                return None
            configuration = self.configuration()
        except OSError as exc:
            logger.warning("TLS files unreadable, keeping the current certificate: %s", exc)
            return None
        self._stamp = stamp
        logger.info("TLS files changed: new connections use the new certificate")
        return configuration
