"""Which upstream addresses the service may connect to.

Customizable models take their `server_url` from the caller, and predefined ones accept a
base-URL override: without a limit, a caller could make the service reach addresses the caller
itself cannot (cloud metadata endpoints, the cluster's internal services). An `OutboundPolicy`
names the hosts, networks and ports that upstream connections may use.

The check runs where connections are opened (`providers.sdk.transport`, under every pooled
client), on the addresses a name resolves to, and the connection then goes to the checked
address itself, so a name that resolves to a forbidden address is refused and a second DNS
answer cannot slip past the check. Redirects are never followed (see `providers.sdk.http`), so
there is no other way to reach an address. With no policy configured (the default for `make
run`) nothing is checked and the hot path pays nothing.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass

import httpx

from providers.sdk.errors import UpstreamAddressForbiddenError

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class OutboundPolicy:
    """An allow-list. A connection is allowed when its port is allowed and either its host name
    is allowed by name or the address it resolves to lies in an allowed network."""

    # Exact names (`api.openai.com`) or suffix wildcards (`*.svc.cluster.local`).
    allow_hosts: tuple[str, ...] = ()
    allow_cidrs: tuple[IPNetwork, ...] = ()
    # Empty: any port.
    allow_ports: tuple[int, ...] = ()

    @classmethod
    def parse(
        cls, hosts: Iterable[str] = (), cidrs: Iterable[str] = (), ports: Iterable[int] = ()
    ) -> OutboundPolicy:
        return cls(
            allow_hosts=tuple(h.lower().rstrip(".") for h in hosts),
            allow_cidrs=tuple(ipaddress.ip_network(c, strict=False) for c in cidrs),
            allow_ports=tuple(ports),
        )

    def host_allowed(self, host: str) -> bool:
        name = host.lower().rstrip(".")
        for allowed in self.allow_hosts:
            if allowed.startswith("*."):
                if name.endswith(allowed[1:]):
                    return True
            elif name == allowed:
                return True
        return False

    def address_allowed(self, address: str) -> bool:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        return any(ip in network for network in self.allow_cidrs)

    def port_allowed(self, port: int) -> bool:
        return not self.allow_ports or port in self.allow_ports

    async def allowed_addresses(self, host: str, port: int) -> list[str]:
        """The addresses of `host` this policy lets us connect to, in resolver order; raises
        UpstreamAddressForbiddenError when there are none."""
        if not self.port_allowed(port):
            raise UpstreamAddressForbiddenError(
                f"port {port} of {host} is not in the outbound allow-list"
            )
        addresses = await _resolve(host, port)
        if self.host_allowed(host):
            return addresses
        allowed = [a for a in addresses if self.address_allowed(a)]
        if not allowed:
            raise UpstreamAddressForbiddenError(
                f"{host} resolves to {', '.join(addresses) or 'no address'}, "
                "which the outbound allow-list does not include"
            )
        return allowed


async def _resolve(host: str, port: int) -> list[str]:
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
        return [host]
    except ValueError:
        pass
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise httpx.ConnectError(f"cannot resolve {host}: {exc.strerror}") from exc
    seen: dict[str, None] = {}
    for *_, sockaddr in infos:
        seen.setdefault(str(sockaddr[0]), None)
    return list(seen)


_policy: OutboundPolicy | None = None


def configure_outbound(policy: OutboundPolicy | None) -> None:
    """Sets the process-wide policy (None: allow everything). Clients created afterwards use it;
    the server calls this once at startup, before any upstream call."""
    global _policy
    _policy = policy


def current_policy() -> OutboundPolicy | None:
    return _policy
