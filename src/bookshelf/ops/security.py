"""HTTP hardening that is ours to add: security headers and the ``Host`` allow-list, applied by
``ops.pipeline.RequestPipeline``. (CORS, the HTTPS redirect and proxy headers use Starlette's and
uvicorn's own middleware, wired in ``bookshelf.middleware``.)"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Sequence
from typing import NamedTuple

from bookshelf.ops.headers import (
    API_CSP,
    COMMON_SECURITY_HEADERS,
    DOCS_CSP,
    DOCS_PREFIXES,
    HSTS,
    NOT_PAGE_PREFIXES,
    PAGE_SECURITY_HEADERS,
)

Headers = list[tuple[bytes, bytes]]

_API_HEADERS: Headers = [*COMMON_SECURITY_HEADERS, (b"content-security-policy", API_CSP)]
_DOCS_HEADERS: Headers = [*COMMON_SECURITY_HEADERS, (b"content-security-policy", DOCS_CSP)]


def is_page(path: str) -> bool:
    """Whether ``path`` is the web app's (a page, an asset, or a page's 404), not the API's,
    the docs' or the operators'."""
    return not path.startswith(NOT_PAGE_PREFIXES) and not path.startswith(DOCS_PREFIXES)


def security_headers(path: str, scheme: str) -> Headers:
    """The headers every response to ``path`` carries (HSTS only over HTTPS: RFC 6797 7.2)."""
    if path.startswith(NOT_PAGE_PREFIXES):
        headers = _API_HEADERS
    elif path.startswith(DOCS_PREFIXES):
        headers = _DOCS_HEADERS
    else:
        headers = PAGE_SECURITY_HEADERS
    return [*headers, HSTS] if scheme == "https" else headers


# RFC 9110 7.2: Host = uri-host [ ":" port ]. Of RFC 3986's uri-host this takes what can name
# a server: a DNS name (dot-separated labels of letters, digits, "-" and "_", one final dot
# allowed), which covers IPv4 addresses, or an IPv6 literal in brackets. The rest of reg-name
# (percent-encoding, "!$&'()*+,;=") names no host the service can be given, and a reader that
# decodes "%23" or splits at "@" would see another host in it: refused, as are "#", "/", "?",
# a backslash and an empty port. A bytes pattern, so that case-folding is ASCII's only.
_HOST = re.compile(
    rb"(?P<name>[a-z0-9_-]{1,63}(?:\.[a-z0-9_-]{1,63})*\.?|\[(?P<ipv6>[0-9a-f:.]{2,45})\])"
    rb"(?::(?P<port>[0-9]{1,5}))?",
    re.IGNORECASE,
)
_MAX_NAME = 254  # 253 and the final dot


class Host(NamedTuple):
    """A ``Host`` header's host (lowercase; an IPv6 literal keeps its brackets) and port."""

    name: str
    port: int | None


# A service hears few distinct Hosts: each is parsed once, then looked up.
@functools.lru_cache(maxsize=256)
def parse_host(header: bytes) -> Host | None:
    """The ``Host`` header as a host and a port, or None when it is anything else."""
    match = _HOST.fullmatch(header)
    if match is None or len(match["name"]) > _MAX_NAME:
        return None
    if match["ipv6"] is not None:
        try:
            ipaddress.IPv6Address(match["ipv6"].decode("ascii"))
        except ValueError:
            return None
    port = match["port"]
    if port is not None and int(port) > 65535:
        return None
    return Host(match["name"].decode("ascii").lower(), None if port is None else int(port))


class HostAllowList:
    """The ``Host`` names the service answers to: exact names, or ``*.example.org`` for any
    subdomain. A request naming another host could poison caches or links built from it."""

    def __init__(self, allowed_hosts: Sequence[str]) -> None:
        self.exact = frozenset(host.lower() for host in allowed_hosts if not host.startswith("*."))
        self.suffixes = tuple(host[1:].lower() for host in allowed_hosts if host.startswith("*."))

    def allows(self, host: Host | None) -> bool:
        """Whether the parsed ``Host`` (None: absent or malformed) names a host served; the
        port is not compared, and a name's final dot is (``example.org.`` is ``example.org``)."""
        if host is None:
            return False
        name = host.name.removesuffix(".")
        return name in self.exact or (bool(self.suffixes) and name.endswith(self.suffixes))
