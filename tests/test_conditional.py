"""Entity tags and the conditional-request headers that carry them (If-Match, If-None-Match)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bookshelf.conditional import etag, if_none_match_hits, versions_in_if_match

VERSIONS = st.integers(min_value=0, max_value=10**18 - 1)
# Header values as a client may send them: any printable text, commas, quotes, W/ and *.
HEADER_TEXT = st.text(
    alphabet=st.sampled_from([*' \t,"*W/0123456789abcxyz', "\u00e9", "\u0663"]),
    max_size=40,
) | st.text(max_size=40)


# --- etag ----------------------------------------------------------------------------------------


def test_etag_is_the_quoted_version() -> None:
    assert etag(0) == '"0"'
    assert etag(42) == '"42"'


@given(VERSIONS)
def test_if_match_accepts_the_etag_of_a_version(version: int) -> None:
    assert versions_in_if_match(etag(version)) == frozenset({version})


@given(VERSIONS)
def test_if_none_match_hits_the_etag_of_a_version_strong_or_weak(version: int) -> None:
    assert if_none_match_hits(etag(version), etag(version))
    assert if_none_match_hits(f"W/{etag(version)}", etag(version))
    assert not if_none_match_hits(etag(version + 1), etag(version))


# --- If-Match ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "versions"),
    [
        ('"3"', {3}),
        ('"1", "2"', {1, 2}),
        ('  "1"  ,"2",,  ', {1, 2}),
        ('"1",\t"7"', {1, 7}),
        ('W/"3"', set()),  # If-Match compares strongly: a weak tag matches nothing
        ('W/"3", "4"', {4}),
        ('"abc"', set()),  # not one of our tags
        ('"-1"', set()),
        ('"1.5"', set()),
        ('"\u0663"', set()),  # a digit, but not an ASCII one
        ("3", set()),  # unquoted
        ('"3', set()),
        ('3"', set()),
        ('"', set()),
        ('""', set()),
        ("", set()),
        (" , ,", set()),
        ('"' + "9" * 19 + '"', set()),  # past any version a bigint holds
        ('"' + "9" * 18 + '"', {10**18 - 1}),
    ],
)
def test_if_match_reads_the_strong_versions_it_names(header: str, versions: set[int]) -> None:
    assert versions_in_if_match(header) == frozenset(versions)


@pytest.mark.parametrize("header", [None, "*", " * ", '"1", *'])
def test_if_match_absent_or_star_accepts_any_version(header: str | None) -> None:
    assert versions_in_if_match(header) is None


@given(HEADER_TEXT)
def test_if_match_parsing_never_raises_and_yields_only_versions(header: str) -> None:
    versions = versions_in_if_match(header)

    if versions is not None:
        assert all(isinstance(v, int) and 0 <= v < 10**19 for v in versions)
        # Every version read comes from a strong tag the header really holds.
        assert all(etag(v) in header for v in versions)


@given(st.lists(VERSIONS, min_size=1, max_size=5), st.sampled_from([",", ", ", " ,\t"]))
def test_if_match_reads_back_a_list_of_etags(versions: list[int], separator: str) -> None:
    header = separator.join(etag(version) for version in versions)

    assert versions_in_if_match(header) == frozenset(versions)


# --- If-None-Match -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "hits"),
    [
        (None, False),
        ("*", True),
        (' "1", * ', True),
        ('"3"', True),
        ('W/"3"', True),  # If-None-Match compares weakly
        ('"1", W/"3"', True),
        ('"1","2"', False),
        ('"33"', False),
        ("3", False),
        ('w/"3"', False),  # the weak prefix is case-sensitive
        ("", False),
        (",,", False),
    ],
)
def test_if_none_match_hits_the_current_tag(header: str | None, hits: bool) -> None:
    assert if_none_match_hits(header, '"3"') is hits


@given(HEADER_TEXT, VERSIONS)
def test_if_none_match_never_raises_and_hits_only_a_named_tag(header: str, version: int) -> None:
    current = etag(version)

    hits = if_none_match_hits(header, current)

    assert isinstance(hits, bool)
    if hits:
        assert "*" in header or current in header
