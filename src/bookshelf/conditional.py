"""Conditional requests (RFC 9110 13): entity tags of versioned resources, ``If-Match`` and
``If-None-Match``."""

from __future__ import annotations


def etag(version: int) -> str:
    """The strong entity tag of a resource version."""
    return f'"{version}"'


def _tag_list(header: str) -> list[str]:
    return [part.strip() for part in header.split(",") if part.strip()]


def versions_in_if_match(header: str | None) -> frozenset[int] | None:
    """Versions an ``If-Match`` header accepts; None when it is absent or ``*`` (any version).

    If-Match uses the strong comparison (RFC 9110 13.1.1): weak tags and tags that are not ours
    match nothing, so the request fails with 412 rather than writing blindly.
    """
    if header is None:
        return None
    tags = _tag_list(header)
    if "*" in tags:
        return None
    versions = set()
    for tag in tags:
        inner = tag[1:-1] if len(tag) >= 2 and tag[0] == tag[-1] == '"' else ""
        if inner.isdigit() and inner.isascii() and len(inner) < 19:
            versions.add(int(inner))
    return frozenset(versions)


def if_none_match_hits(header: str | None, current: str) -> bool:
    """True when ``If-None-Match`` names the current tag (weak comparison) or is ``*``."""
    if header is None:
        return False
    tags = _tag_list(header)
    return "*" in tags or any(tag.removeprefix("W/") == current for tag in tags)
