"""HTTP hardening that is ours to add: security headers and the ``Host`` allow-list, applied by
``middleware.RequestPipeline``. (CORS, the HTTPS redirect and proxy headers use Starlette's and
uvicorn's own middleware, wired in ``bookshelf.middleware``.)"""

from __future__ import annotations

from collections.abc import Sequence

from bookshelf.ops.headers import API_CSP, COMMON_SECURITY_HEADERS, DOCS_CSP, DOCS_PREFIXES, HSTS

Headers = list[tuple[bytes, bytes]]

_API_HEADERS: Headers = [*COMMON_SECURITY_HEADERS, (b"content-security-policy", API_CSP)]
_DOCS_HEADERS: Headers = [*COMMON_SECURITY_HEADERS, (b"content-security-policy", DOCS_CSP)]


def security_headers(path: str, scheme: str) -> Headers:
    """The headers every response to ``path`` carries (HSTS only over HTTPS: RFC 6797 7.2)."""
    headers = _DOCS_HEADERS if path.startswith(DOCS_PREFIXES) else _API_HEADERS
    return [*headers, HSTS] if scheme == "https" else headers


class HostAllowList:
    """The ``Host`` names the service answers to: exact names, or ``*.example.org`` for any
    subdomain. A request naming another host could poison caches or links built from it."""

    def __init__(self, allowed_hosts: Sequence[str]) -> None:
        self.exact = frozenset(host.lower() for host in allowed_hosts if not host.startswith("*."))
        self.suffixes = tuple(host[1:].lower() for host in allowed_hosts if host.startswith("*."))

    def allows(self, host_header: bytes | None) -> bool:
        if host_header is None:
            return False
        host = host_header.decode("latin-1").lower()
        # Without the port; an IPv6 literal keeps its brackets: [::1]:8000 -> [::1]
        host = host.partition("]")[0] + "]" if host.startswith("[") else host.partition(":")[0]
        return host in self.exact or (bool(self.suffixes) and host.endswith(self.suffixes))
