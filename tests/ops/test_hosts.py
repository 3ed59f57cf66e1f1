"""The ``Host`` header is read as a host and a port (RFC 9110 7.2) before anything uses it: what
is not one is a 400 problem whatever the allow-list says, so no string that only ends like an
allowed name passes for a subdomain, and the HTTPS redirect points at the parsed host."""

from __future__ import annotations

import httpx
import pytest

from bookshelf.config import Settings
from bookshelf.ops.security import Host, HostAllowList, parse_host
from tests.factories import assert_problem
from tests.ops.support import http, started

BOOKS = "/api/v1/books"
# Each ends with ".example.org", and each names another host to some reader of it.
FORGED = [
    "evil.com#.example.org",
    "evil.com/.example.org",
    "evil.com?.example.org",
    "evil.com\\@.example.org",
    "evil.com%23.example.org",
    "evil.com@api.example.org",
    "evil.com:80.example.org",
    "evil.com .example.org",
]
MALFORMED = [
    "",
    ":8000",
    "api.example.org:",
    "api.example.org:65536",
    "api.example.org:8o",
    "api..example.org",
    "[::1",
    "[::g]",
    "[v1.fe80::a]",
    "[fe80::1%25eth0]",
    "api.example.org\u00e9",
    "a" * 64 + ".example.org",
]


@pytest.mark.parametrize(
    ("header", "parsed"),
    [
        ("api.example.org", Host("api.example.org", None)),
        ("API.Example.ORG:8443", Host("api.example.org", 8443)),
        ("example.org.", Host("example.org.", None)),
        ("10.1.2.3:8000", Host("10.1.2.3", 8000)),
        ("[2001:DB8::1]:443", Host("[2001:db8::1]", 443)),
        ("[::ffff:10.1.2.3]", Host("[::ffff:10.1.2.3]", None)),
        ("bookshelf_api:8000", Host("bookshelf_api", 8000)),
    ],
)
def test_a_host_and_port_are_parsed(header: str, parsed: Host) -> None:
    assert parse_host(header.encode()) == parsed


@pytest.mark.parametrize("header", FORGED + MALFORMED)
def test_anything_else_is_not_a_host(header: str) -> None:
    assert parse_host(header.encode("utf-8")) is None


def test_the_allow_list_compares_parsed_names() -> None:
    allowed = HostAllowList(["books.example", "*.example.org"])
    assert allowed.allows(Host("api.example.org", 8000))
    assert allowed.allows(Host("books.example.", None))
    assert not allowed.allows(Host("example.org", None))  # a subdomain, not the domain
    assert not allowed.allows(Host("evil-example.org", None))
    assert not allowed.allows(None)


def wildcard(settings: Settings, **overrides: object) -> Settings:
    return settings.model_copy(update={"allowed_hosts": "*.example.org", **overrides})


async def get(client: httpx.AsyncClient, host: str) -> httpx.Response:
    return await client.get(f"{BOOKS}?limit=5", headers={"Host": host})


async def test_a_forged_host_is_refused_with_400(settings: Settings) -> None:
    async with started(wildcard(settings)) as app, http(app) as client:
        served = await get(client, "api.example.org:8000")
        refused = {host: await get(client, host) for host in FORGED}
    assert served.status_code == 200
    for host, response in refused.items():
        problem = assert_problem(response, 400, "about:blank", instance="")
        assert problem["detail"] == "The Host header is not a host name with an optional port.", (
            host
        )
        assert "evil" not in response.text


async def test_the_https_redirect_goes_to_the_parsed_host_only(settings: Settings) -> None:
    redirecting = wildcard(settings, https_redirect=True)
    async with started(redirecting) as app, http(app) as client:
        on_a_port = await get(client, "api.example.org:8443")
        on_443 = await get(client, "API.example.org:443")
        forged = {host: await get(client, host) for host in FORGED}
    assert on_a_port.status_code == 307
    assert on_a_port.headers["location"] == f"https://api.example.org:8443{BOOKS}?limit=5"
    assert on_443.headers["location"] == f"https://api.example.org{BOOKS}?limit=5"
    for host, response in forged.items():
        assert response.status_code == 400, host
        assert "location" not in response.headers, host


async def test_a_malformed_host_is_refused_even_without_an_allow_list(
    settings: Settings,
) -> None:
    assert settings.allowed_host_list == ["*"]
    async with started(settings) as app, http(app) as client:
        anything = await get(client, "whatever.example:8000")
        malformed = {host: await get(client, host) for host in FORGED + MALFORMED if host.isascii()}
        # Two Host lines: which one would a cache or a proxy believe?
        two = await client.get(BOOKS, headers=[("Host", "a.example"), ("Host", "b.example")])
        probe = await client.get("/health/live", headers={"Host": "10.0.0.7:9000#x"})
    assert anything.status_code == 200
    for host, response in malformed.items():
        assert response.status_code == 400, host
    assert_problem(two, 400, "about:blank", instance="")
    assert probe.status_code == 400
