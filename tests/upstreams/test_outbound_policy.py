"""The outbound allow-list, on real connections: a forbidden address is refused before anything
is sent, including a host name that resolves to a forbidden address, and redirects are never
followed to reach one."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from aiohttp import web

from providers.sdk import http
from providers.sdk.errors import InvokeBadRequestError, UpstreamAddressForbiddenError
from providers.sdk.outbound import OutboundPolicy, configure_outbound

from .upstream import FakeUpstream, Recorded, json_response


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeUpstream]:
    with FakeUpstream() as upstream:

        async def ok(request: web.Request, recorded: Recorded) -> web.StreamResponse:
            return json_response(200, {"ok": True})

        async def moved(request: web.Request, recorded: Recorded) -> web.StreamResponse:
            return web.Response(status=302, headers={"location": "http://169.254.169.254/"})

        upstream.route("GET", "/ok", ok)
        upstream.route("GET", "/moved", moved)
        yield upstream


@pytest.fixture(autouse=True)
def _no_policy_after() -> Iterator[None]:
    yield
    configure_outbound(None)


async def fail_on_error(response: object) -> None:
    raise AssertionError("unexpected error status")


async def get(base: str, path: str = "/ok") -> object:
    return await http.request_json(http.client_for(base), "GET", path, check=fail_on_error)


async def test_without_a_policy_everything_is_reachable(fake: FakeUpstream) -> None:
    assert await get(fake.url) == {"ok": True}


async def test_an_allowed_network_is_reachable(fake: FakeUpstream) -> None:
    configure_outbound(OutboundPolicy.parse(cidrs=["127.0.0.0/8"], ports=[fake.port]))
    assert await get(f"http://localhost:{fake.port}") == {"ok": True}


async def test_a_name_resolving_to_a_forbidden_address_is_refused_and_nothing_is_sent(
    fake: FakeUpstream,
) -> None:
    configure_outbound(OutboundPolicy.parse(cidrs=["10.0.0.0/8"]))
    before = len(fake.requests)
    with pytest.raises(
        UpstreamAddressForbiddenError, match=r"localhost resolves to .*127\.0\.0\.1"
    ):
        await get(f"http://localhost:{fake.port}")
    with pytest.raises(UpstreamAddressForbiddenError):
        await get(f"http://127.0.0.1:{fake.port}")
    assert len(fake.requests) == before


async def test_a_port_outside_the_list_is_refused(fake: FakeUpstream) -> None:
    configure_outbound(OutboundPolicy.parse(cidrs=["127.0.0.0/8"], ports=[443]))
    with pytest.raises(UpstreamAddressForbiddenError, match=f"port {fake.port}"):
        await get(fake.url)


async def test_a_host_allowed_by_name_is_reachable(fake: FakeUpstream) -> None:
    configure_outbound(OutboundPolicy.parse(hosts=["LOCALHOST."]))
    assert await get(f"http://localhost:{fake.port}") == {"ok": True}
    configure_outbound(OutboundPolicy.parse(hosts=["*.example.internal"]))
    with pytest.raises(UpstreamAddressForbiddenError):
        await get(f"http://localhost:{fake.port}")


async def test_a_redirect_is_never_followed(fake: FakeUpstream) -> None:
    configure_outbound(OutboundPolicy.parse(cidrs=["127.0.0.0/8"]))
    before = len(fake.requests)

    async def quote(response: object) -> None:
        return None  # the generic status mapping applies

    with pytest.raises(InvokeBadRequestError, match="redirected"):
        await http.request_json(http.client_for(fake.url), "GET", "/moved", check=quote)
    assert len(fake.requests) == before + 1
