"""Settings that are addresses, read once for everyone who needs them: an SMTP URL's parts (the
mail transport sends with them, the settings judge them), whether a host or a list of trusted
proxies reaches beyond this machine or trusts everyone, and the database and Redis URLs the
settings accept."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

SMTP_URL_FORM = "expected smtp://[user:password@]host[:port] or smtps://…"


@dataclass(frozen=True)
class SmtpTarget:
    hostname: str
    port: int
    username: str | None
    password: str | None
    implicit_tls: bool
    require_starttls: bool


def parse_smtp_url(url: str) -> SmtpTarget:
    """``smtp://user:pass@host:587`` (STARTTLS when the server offers it, or always with
    ``?starttls=require``) or ``smtps://user:pass@host:465`` (TLS from the first byte).
    Raises ValueError, whose message never holds the URL (it carries a password)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:  # a port that is not a number
        raise ValueError(SMTP_URL_FORM) from None
    if parts.scheme not in {"smtp", "smtps"} or not parts.hostname:
        raise ValueError(SMTP_URL_FORM)
    implicit = parts.scheme == "smtps"
    starttls = parse_qs(parts.query).get("starttls", [""])[0].lower()
    return SmtpTarget(
        hostname=parts.hostname,
        port=port or (465 if implicit else 587),
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        implicit_tls=implicit,
        require_starttls=starttls in {"require", "required", "true", "1"},
    )


def is_local_host(host: str) -> bool:
    """localhost (and its subdomains, RFC 6761), a loopback or unspecified address."""
    name = host.strip("[]").rstrip(".").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return False
    return address.is_loopback or address.is_unspecified


def is_public_https_url(url: str) -> bool:
    """An https:// URL whose host is not this machine: where others can open a link."""
    try:
        parts = urlsplit(url)
    except ValueError:  # an unclosed [ipv6 literal
        return False
    host = parts.hostname
    return parts.scheme == "https" and host is not None and not is_local_host(host)


def trusts_everyone(proxies: list[str]) -> bool:
    """``*``, or a network holding every address (0.0.0.0/0, ::/0): each client could then
    claim any address in X-Forwarded-For."""
    for proxy in proxies:
        if proxy == "*":
            return True
        try:
            if ipaddress.ip_network(proxy, strict=False).prefixlen == 0:
                return True
        except ValueError:
            continue  # not a network (a host name or socket path): judged elsewhere
    return False


# Drivers we accept, and the async driver each URL scheme is rewritten to.
_ASYNC_DRIVERS = {
    "sqlite": "sqlite+aiosqlite",
    "sqlite+aiosqlite": "sqlite+aiosqlite",
    "postgresql": "postgresql+asyncpg",
    "postgres": "postgresql+asyncpg",
    "postgresql+asyncpg": "postgresql+asyncpg",
}


def async_database_url(raw: str) -> str:
    """A database URL on the async driver the data layer uses (ValueError if none fits)."""
    try:
        url = make_url(raw)
    except ArgumentError:
        raise ValueError("not a database URL (expected sqlite:///… or postgresql://…)") from None
    driver = _ASYNC_DRIVERS.get(url.drivername)
    if driver is None:
        raise ValueError(f"unsupported database {url.drivername!r}: use sqlite or postgresql")
    return url.set(drivername=driver).render_as_string(hide_password=False)


# What ops.counters.redis_client takes: coredis' URLs (and limits' redis+unix://), or a
# cluster's startup nodes, each with its port, and nothing else (no path, no options).
_REDIS_NODE = r"(?:[^,:/@\[\]]+|\[[0-9a-fA-F:.]+\]):\d{1,5}"
_REDIS_URL = re.compile(
    rf"rediss?://[^/].*|(?:redis\+)?unix://.+"
    rf"|redis\+cluster://(?:[^@/]*@)?{_REDIS_NODE}(?:,{_REDIS_NODE})*"
)


def check_redis_url(raw: str) -> None:
    if not _REDIS_URL.fullmatch(raw):
        raise ValueError(
            "expected redis://[user:password@]host[:port][/db], rediss://…, unix://path "
            "or redis+cluster://[user:password@]host:port[,host:port…]"
        )
