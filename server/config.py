"""Server configuration: a YAML file (optional) overridden by environment variables.

address: 127.0.0.1:50051          # MODELRUNTIME_ADDRESS
provider_paths: [./my-providers]  # MODELRUNTIME_PROVIDER_PATHS (os.pathsep-separated)
providers: [fake, openai]         # MODELRUNTIME_PROVIDERS (comma-separated); all if unset
sync_workers: 32                  # MODELRUNTIME_SYNC_WORKERS
workers: 1                        # MODELRUNTIME_WORKERS; server processes on one address
event_loop: auto                  # MODELRUNTIME_EVENT_LOOP: auto (uvloop if there), asyncio
grace_period_seconds: 10          # MODELRUNTIME_GRACE_PERIOD_SECONDS
max_receive_message_bytes: 33554432
log_level: INFO                   # MODELRUNTIME_LOG_LEVEL
log_format: text                  # MODELRUNTIME_LOG_FORMAT: text or json (one object per line)
metrics_address: 127.0.0.1:9464   # MODELRUNTIME_METRICS_ADDRESS; Prometheus endpoint, off if unset
tracing: false                    # MODELRUNTIME_TRACING; OTLP exporter from the OTEL_* variables
drain_delay_seconds: 0            # NOT_SERVING and refusing new calls before the listener closes
keepalive: {max_connection_age_seconds: 1800, ...}   # see KeepaliveConfig
retries: {max_attempts: 3, providers: {openai: {max_attempts: 4}}}  # see RetriesConfig
debug_metrics: false              # MODELRUNTIME_DEBUG_METRICS; the event loop's task count
security: {tls: ..., auth: ..., credential_sets: ...}  # docs/operating/security.md
limits: {max_prompt_messages: 1000, max_concurrent_calls: 4096, ...}  # the same page
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import pydantic
import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from providers.sdk.outbound import OutboundPolicy
from providers.sdk.retry import RetryPolicy
from server.security.config import LimitsConfig, SecurityConfig


class ConfigError(Exception):
    """The configuration file or an environment variable is wrong; the message says which."""


class OutboundConfig(BaseModel):
    """Which upstream addresses providers may connect to. Empty (the default): any address;
    otherwise a connection needs an allowed port and an allowed host name or network."""

    model_config = ConfigDict(extra="forbid")

    # Exact names or `*.suffix` wildcards, trusted whatever they resolve to.
    allow_hosts: list[str] = Field(default_factory=list)
    # Networks that the resolved address of any other name (or an IP literal) must lie in.
    allow_cidrs: list[str] = Field(default_factory=list)
    # Empty: any port.
    allow_ports: list[int] = Field(default_factory=list)

    @model_validator(mode="after")
    def _parses(self) -> OutboundConfig:
        self.policy()  # a malformed CIDR fails at load time, naming the value
        return self

    def policy(self) -> OutboundPolicy | None:
        if not (self.allow_hosts or self.allow_cidrs or self.allow_ports):
            return None
        return OutboundPolicy.parse(self.allow_hosts, self.allow_cidrs, self.allow_ports)


class KeepaliveConfig(BaseModel):
    """HTTP/2 connection management (gRFC A9 and grpc's keepalive arguments). The defaults suit
    long streams behind Envoy: connections are recycled every half hour so an L4 balancer
    spreads them again, yet a stream in progress gets a quarter of an hour to finish."""

    model_config = ConfigDict(extra="forbid")

    # GOAWAY a connection this old (±10% jitter); 0: never.
    max_connection_age_seconds: float = Field(default=1800.0, ge=0)
    # After that GOAWAY, how long calls in progress may go on before the connection is closed.
    max_connection_age_grace_seconds: float = Field(default=900.0, ge=0)
    # GOAWAY a connection with no call for this long; 0: never.
    max_connection_idle_seconds: float = Field(default=0.0, ge=0)
    # Ping a client after this long without activity, to find vanished clients even while a
    # stream waits silently for a thinking model.
    keepalive_time_seconds: float = Field(default=60.0, gt=0)
    # Close the connection when a ping is not answered within this.
    keepalive_timeout_seconds: float = Field(default=20.0, gt=0)
    # Allow client pings (and send ours) on connections with no call in progress.
    keepalive_permit_without_calls: bool = True
    # Clients may ping this often without sending data (grpc's default is 5 minutes, which
    # makes it GOAWAY clients and proxies that keep idle connections warm).
    min_ping_interval_seconds: float = Field(default=10.0, ge=0)

    def grpc_options(self) -> list[tuple[str, int]]:
        def ms(seconds: float) -> int:
            return int(seconds * 1000)

        options = [
            ("grpc.keepalive_time_ms", ms(self.keepalive_time_seconds)),
            ("grpc.keepalive_timeout_ms", ms(self.keepalive_timeout_seconds)),
            # What closes a connection whose ping goes unanswered in grpc 1.6x and later.
            ("grpc.http2.ping_timeout_ms", ms(self.keepalive_timeout_seconds)),
            ("grpc.keepalive_permit_without_calls", int(self.keepalive_permit_without_calls)),
            (
                "grpc.http2.min_ping_interval_without_data_ms",
                ms(self.min_ping_interval_seconds),
            ),
            # Our own keepalive pings go on through a stream that sends no data for minutes.
            ("grpc.http2.max_pings_without_data", 0),
        ]
        if self.max_connection_age_seconds > 0:
            options.append(("grpc.max_connection_age_ms", ms(self.max_connection_age_seconds)))
            options.append(
                ("grpc.max_connection_age_grace_ms", ms(self.max_connection_age_grace_seconds))
            )
        if self.max_connection_idle_seconds > 0:
            options.append(("grpc.max_connection_idle_ms", ms(self.max_connection_idle_seconds)))
        return options


class RetryOverride(BaseModel):
    """One provider's retry settings; a key left out keeps the `retries:` default."""

    model_config = ConfigDict(extra="forbid")

    max_attempts: int | None = Field(default=None, ge=1, le=10)
    base_delay_seconds: float | None = Field(default=None, ge=0)
    max_delay_seconds: float | None = Field(default=None, ge=0)
    max_retry_after_seconds: float | None = Field(default=None, ge=0)


class RetriesConfig(BaseModel):
    """Retries of upstream failures before anything reached the caller
    (docs/operating/resilience.md). The defaults: two retries, soon after the failure, and
    none when the upstream asks for more than a second."""

    model_config = ConfigDict(extra="forbid")

    # Attempts in all, the first included; 1 turns retries off.
    max_attempts: int = Field(default=3, ge=1, le=10)
    # The first retry waits a random time up to this, each further one up to twice as long...
    base_delay_seconds: float = Field(default=0.2, ge=0)
    # ...at most this.
    max_delay_seconds: float = Field(default=2.0, ge=0)
    # A Retry-After longer than this ends the retries: the caller gets the error and its
    # RetryInfo, and decides whether to wait.
    max_retry_after_seconds: float = Field(default=1.0, ge=0)
    # Per-provider overrides, by provider name.
    providers: dict[str, RetryOverride] = Field(default_factory=dict)

    def policy(self, provider: str | None = None) -> RetryPolicy:
        """The policy of `provider`'s calls (the defaults for None or a provider without an
        override)."""
        settings = {
            "max_attempts": self.max_attempts,
            "base_delay_seconds": self.base_delay_seconds,
            "max_delay_seconds": self.max_delay_seconds,
            "max_retry_after_seconds": self.max_retry_after_seconds,
        }
        override = self.providers.get(provider or "")
        if override is not None:
            settings.update(override.model_dump(exclude_none=True))
        return RetryPolicy(
            max_attempts=int(settings["max_attempts"]),
            base_delay=float(settings["base_delay_seconds"]),
            max_delay=float(settings["max_delay_seconds"]),
            max_retry_after=float(settings["max_retry_after_seconds"]),
        )


class ServerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    address: str = "127.0.0.1:50051"
    provider_paths: list[Path] = Field(default_factory=list)
    providers: list[str] | None = None
    include_builtin_providers: bool = True
    sync_workers: int = Field(default=32, ge=1, le=1024)
    # Server processes sharing the address (SO_REUSEPORT), one event loop and core each
    # (server/workers.py); 1: this process serves.
    workers: int = Field(default=1, ge=1, le=64)
    # The event loop `modelruntime serve` runs on: uvloop spent 10-14% less CPU per streamed
    # chunk than asyncio's own (docs/performance.md); auto takes it when it is installed.
    event_loop: Literal["auto", "uvloop", "asyncio"] = "auto"
    grace_period_seconds: float = Field(default=10.0, ge=0)
    # Speech-to-text uploads arrive in one message; 32 MiB holds OpenAI's 25 MB limit.
    max_receive_message_bytes: int = Field(default=32 * 1024 * 1024, ge=1024)
    max_send_message_bytes: int = Field(default=32 * 1024 * 1024, ge=1024)
    log_level: str = "INFO"
    outbound: OutboundConfig = Field(default_factory=OutboundConfig)
    # Operations (docs/operating/operations.md).
    log_format: Literal["text", "json"] = "text"
    # host:port of the Prometheus endpoint (port 0 picks one); None: no endpoint.
    metrics_address: str | None = None
    tracing: bool = False
    # After SIGTERM: health NOT_SERVING and new calls refused (SHUTTING_DOWN) for this long
    # while the listener stays open, for clients that watch health; counted in the grace period.
    drain_delay_seconds: float = Field(default=0.0, ge=0)
    keepalive: KeepaliveConfig = Field(default_factory=KeepaliveConfig)
    # Retries before the first chunk (docs/operating/resilience.md).
    retries: RetriesConfig = Field(default_factory=RetriesConfig)
    # Adds gauges for debugging to the metrics endpoint: the event loop's tasks.
    debug_metrics: bool = False
    # Security and limits (docs/operating/security.md).
    security: SecurityConfig = Field(default_factory=SecurityConfig)
    limits: LimitsConfig = Field(default_factory=LimitsConfig)


_ENV: dict[str, str] = {
    "MODELRUNTIME_ADDRESS": "address",
    "MODELRUNTIME_PROVIDER_PATHS": "provider_paths",
    "MODELRUNTIME_PROVIDERS": "providers",
    "MODELRUNTIME_SYNC_WORKERS": "sync_workers",
    "MODELRUNTIME_WORKERS": "workers",
    "MODELRUNTIME_EVENT_LOOP": "event_loop",
    "MODELRUNTIME_GRACE_PERIOD_SECONDS": "grace_period_seconds",
    "MODELRUNTIME_LOG_LEVEL": "log_level",
    "MODELRUNTIME_LOG_FORMAT": "log_format",
    "MODELRUNTIME_METRICS_ADDRESS": "metrics_address",
    "MODELRUNTIME_TRACING": "tracing",
    "MODELRUNTIME_DRAIN_DELAY_SECONDS": "drain_delay_seconds",
    "MODELRUNTIME_DEBUG_METRICS": "debug_metrics",
}


def load_config(
    path: Path | None = None,
    environ: Mapping[str, str] = os.environ,
    overrides: Mapping[str, Any] | None = None,
) -> ServerConfig:
    """File (from `path` or MODELRUNTIME_CONFIG), then environment, then `overrides`."""
    data: dict[str, Any] = {}
    path = path or (
        Path(environ["MODELRUNTIME_CONFIG"]) if environ.get("MODELRUNTIME_CONFIG") else None
    )
    if path is not None:
        try:
            loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"{path}: {exc}") from exc
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path}: expected a mapping at the top level")
        data.update(loaded)
    for variable, key in _ENV.items():
        value = environ.get(variable)
        if value is None or value == "":
            continue
        if key == "provider_paths":
            data[key] = [p for p in value.split(os.pathsep) if p]
        elif key == "providers":
            data[key] = [p.strip() for p in value.split(",") if p.strip()]
        else:
            data[key] = value
    data.update(overrides or {})
    try:
        return ServerConfig.model_validate(data)
    except pydantic.ValidationError as exc:
        source = str(path) if path else "configuration"
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        raise ConfigError(f"{source}: {problems}") from None
