"""Cursors of every paginated list (books with each sort, reviews, users): whatever a client
sends as a cursor, the answer is a page or a 4xx problem, never a 500.

Cursors are validated in one place (``bookshelf.pagination``); these tests go through the HTTP
API so they cover every list that uses it, on both databases.
"""

from __future__ import annotations

import base64
import json
import string
import urllib.parse
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any
from uuid import UUID

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.requests import Request

from bookshelf.api import next_page_headers
from bookshelf.books.schemas import BookSort
from bookshelf.exceptions import InvalidCursor
from bookshelf.pagination import (
    CursorDate,
    CursorId,
    CursorInteger,
    CursorNumber,
    CursorSchema,
    CursorText,
    CursorTimestamp,
)
from tests.conftest import AccountFactory
from tests.factories import BOOKS, USERS, assert_problem, book_payload, reviews_path

SOME_ID = "0b7d7d2e-1b4a-4c1e-9a55-3f4c1f1d2e3a"
# Local times whose instant lies outside datetime's range once converted to UTC.
OVERFLOWING_TIMESTAMPS = ["9999-12-31T23:00:00-05:00", "0001-01-01T00:30:00+01:00"]


def forged(payload: Any) -> str:
    """A cursor as this API encodes them, around any payload (json escapes lone surrogates)."""
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")


async def a_reviewed_book(client: httpx.AsyncClient) -> str:
    book = (await client.post(BOOKS, json=book_payload())).json()
    review = await client.post(reviews_path(book["id"]), json={"rating": 4})
    assert review.status_code == 201, review.text
    book_id: str = book["id"]
    return book_id


# --- the cursor schema ----------------------------------------------------------------------

KEY_PARTS = CursorSchema(
    "test", CursorText, CursorTimestamp, CursorDate, CursorNumber, CursorInteger, CursorId
)


def test_a_cursor_round_trips_its_typed_key() -> None:
    key = (
        "Zürich",
        datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC),
        date(1937, 9, 21),
        0.1 + 0.2,
        -(2**63),
        UUID(SOME_ID),
    )

    assert KEY_PARTS.decode(KEY_PARTS.encode(key)) == key


STORABLE_TEXT = st.text(
    alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"),
    max_size=1000,
)
# Offsets in whole minutes, as ISO 8601 writes them (the keys the lists issue are in UTC).
OFFSETS = st.integers(min_value=-(24 * 60) + 1, max_value=24 * 60 - 1).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)
AWARE_TIMESTAMPS = st.datetimes(
    min_value=datetime(2, 1, 1), max_value=datetime(9998, 12, 31), timezones=OFFSETS
)


@settings(max_examples=200)
@given(
    st.tuples(
        STORABLE_TEXT,
        AWARE_TIMESTAMPS,
        st.dates(),
        st.floats(allow_nan=False, allow_infinity=False),
        st.integers(min_value=-(2**63), max_value=2**63 - 1),
        st.uuids(),
    )
)
def test_any_storable_key_round_trips_through_a_cursor(key: tuple[Any, ...]) -> None:
    cursor = KEY_PARTS.decode(KEY_PARTS.encode(key))

    assert cursor == key  # the same instant, now in UTC
    assert cursor[1].utcoffset() == timedelta(0)
    assert set(KEY_PARTS.encode(key)) <= set(string.ascii_letters + string.digits + "-_")


def test_a_cursor_timestamp_comes_back_in_utc() -> None:
    cursor = forged([1, "test", ["a", "2026-01-01T01:00:00+01:00", "2026-01-01", 1, 1, SOME_ID]])

    assert KEY_PARTS.decode(cursor)[1] == datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    "key",
    [
        ["a\x00", "2026-01-01T00:00:00Z", "2026-01-01", 1.5, 1, SOME_ID],
        ["a", "2026-01-01T00:00:00", "2026-01-01", 1.5, 1, SOME_ID],  # naive
        ["a", "9999-12-31T23:00:00-05:00", "2026-01-01", 1.5, 1, SOME_ID],
        ["a", "2026-01-01T00:00:00Z", "2026-01-01", "1.5", 1, SOME_ID],  # strict: no strings
        ["a", "2026-01-01T00:00:00Z", "2026-01-01", 1.5, 2**63, SOME_ID],  # past bigint
        ["a", "2026-01-01T00:00:00Z", "2026-01-01", 1.5, 1.5, SOME_ID],
        ["a", "2026-01-01T00:00:00Z", "2026-01-01", 1.5, True, SOME_ID],
        ["a", "2026-01-01T00:00:00Z", "2026-01-01", 1.5, 1],  # too short
        ["a" * 1001, "2026-01-01T00:00:00Z", "2026-01-01", 1.5, 1, SOME_ID],
    ],
)
def test_a_cursor_with_a_bad_key_part_is_invalid(key: list[Any]) -> None:
    with pytest.raises(InvalidCursor):
        KEY_PARTS.decode(forged([1, "test", key]))


@pytest.mark.parametrize("payload", [[2, "test", ["a"]], [1, "other", ["a"]], {"sort": "test"}])
def test_a_cursor_of_another_version_or_sort_is_invalid(payload: Any) -> None:
    with pytest.raises(InvalidCursor):
        CursorSchema("test", CursorText).decode(forged(payload))


# --- the Link header ---------------------------------------------------------------------------


async def test_link_header_is_a_path_only_reference_whatever_the_host(
    client: httpx.AsyncClient, make_account: AccountFactory
) -> None:
    book_id = await a_reviewed_book(client)
    await a_reviewed_book(client)
    reader = await make_account()
    await client.post(reviews_path(book_id), json={"rating": 1}, headers=reader.headers)
    lists = [(BOOKS, "limit=1&sort=title"), (reviews_path(book_id), "limit=1"), (USERS, "limit=1")]
    for path, query in lists:
        response = await client.get(f"{path}?{query}", headers={"Host": "evil.example"})

        assert response.status_code == 200, response.text
        cursor = response.json()["next_cursor"]
        assert response.headers["link"] == f'<{path}?{query}&cursor={cursor}>; rel="next"'


_QUERY_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=8)


@settings(max_examples=300, deadline=None)
@given(
    path=st.sampled_from(["/api/v1/books", "/api/v1/books/{x}?#\\y/reviews", "/api/v1/é"]),
    pairs=st.lists(
        st.tuples(st.sampled_from(["cursor", "q", "limit", ""]) | _QUERY_TEXT, _QUERY_TEXT)
    ),
    plus_for_space=st.booleans(),
    bare_key=st.booleans(),
    host=st.sampled_from([b"127.0.0.1:8000", b"evil.example", b"[::1]:80"]),
)
def test_link_header_is_the_request_query_with_its_cursor_replaced(
    path: str,
    pairs: list[tuple[str, str]],
    plus_for_space: bool,
    bare_key: bool,
    host: bytes,
) -> None:
    """The header holds what Starlette's ``include_query_params`` makes of the request's own
    (percent-encoded, so ASCII) query: other parameters kept in order, repeated and blank ones
    too, every earlier ``cursor`` replaced by the new one at the end."""
    quote_via = urllib.parse.quote_plus if plus_for_space else urllib.parse.quote
    query = urllib.parse.urlencode(pairs, quote_via=quote_via) + ("&flag" if bare_key else "")
    scope = {
        "type": "http",
        "method": "GET",
        "scheme": "http",
        "server": ("127.0.0.1", 8000),
        "path": path,
        "root_path": "",
        "query_string": query.encode("ascii"),
        "headers": [(b"host", host)],
    }
    expected = Request(scope).url.include_query_params(cursor="next-cursor")

    link = next_page_headers(Request(scope), "next-cursor")["Link"]

    assert link == f'<{expected.path}?{expected.query}>; rel="next"'


# --- the reported cases ----------------------------------------------------------------------


@pytest.mark.parametrize("timestamp", OVERFLOWING_TIMESTAMPS)
async def test_review_cursor_overflowing_in_utc_returns_422(
    client: httpx.AsyncClient, timestamp: str
) -> None:
    book_id = await a_reviewed_book(client)

    response = await client.get(
        reviews_path(book_id), params={"cursor": forged([1, "-created_at", [timestamp, SOME_ID]])}
    )

    assert_problem(response, 422, "invalid-cursor")


@pytest.mark.parametrize("sort", ["created_at", "-created_at"])
@pytest.mark.parametrize("timestamp", OVERFLOWING_TIMESTAMPS)
async def test_book_cursor_overflowing_in_utc_returns_422(
    client: httpx.AsyncClient, sort: str, timestamp: str
) -> None:
    response = await client.get(
        BOOKS, params={"sort": sort, "cursor": forged([1, sort, [timestamp, SOME_ID]])}
    )

    assert_problem(response, 422, "invalid-cursor")


@pytest.mark.parametrize("email", ["a\x00@example.org", "\ud800@example.org"])
async def test_user_cursor_with_nul_or_lone_surrogate_returns_422(
    client: httpx.AsyncClient, email: str
) -> None:
    response = await client.get(USERS, params={"cursor": forged([1, "email", [email]])})

    assert_problem(response, 422, "invalid-cursor")


@pytest.mark.parametrize(
    ("params", "key"),
    [
        ({"sort": "title"}, ["a\x00", SOME_ID]),
        ({"sort": "-title"}, ["\udfff", SOME_ID]),
        ({"sort": "published_date"}, ["2020-02-30", SOME_ID]),
        ({"sort": "published_date"}, [20200101, SOME_ID]),
        ({"q": "book"}, [float("inf"), SOME_ID]),
        ({"q": "book"}, [10**400, SOME_ID]),
        ({"q": "book"}, ["0.5", SOME_ID]),
        ({"sort": "created_at"}, [1_600_000_000, SOME_ID]),
    ],
)
async def test_book_cursor_with_unbindable_or_mistyped_key_returns_422(
    client: httpx.AsyncClient, params: dict[str, str], key: list[Any]
) -> None:
    sort = params.get("sort", "relevance")

    response = await client.get(BOOKS, params={**params, "cursor": forged([1, sort, key])})

    assert_problem(response, 422, "invalid-cursor")


async def test_issued_cursors_still_page_every_list(client: httpx.AsyncClient) -> None:
    for number in range(3):
        await client.post(BOOKS, json=book_payload(title=f"Book {number}"))
    for params in [{"sort": sort.value} for sort in BookSort if sort != "relevance"] + [
        {"q": "book"}
    ]:
        first = (await client.get(BOOKS, params={**params, "limit": 2})).json()
        second = await client.get(
            BOOKS, params={**params, "limit": 2, "cursor": first["next_cursor"]}
        )
        assert second.status_code == 200, (params, second.text)
        assert len(second.json()["items"]) == 1, params


# --- any cursor, any list ----------------------------------------------------------------------


def _offset(minutes: int) -> str:
    sign = "-" if minutes < 0 else "+"
    return f"{sign}{abs(minutes) // 60:02}:{abs(minutes) % 60:02}"


timestamps = st.one_of(
    st.sampled_from([*OVERFLOWING_TIMESTAMPS, "9999-12-31T23:59:59.999999Z", "0001-01-01T00:00Z"]),
    st.builds(
        lambda moment, minutes: moment.isoformat() + _offset(minutes),
        st.datetimes(),
        st.integers(-(24 * 60 - 1), 24 * 60 - 1),
    ),
    st.datetimes().map(lambda moment: moment.isoformat()),  # naive
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from([2**63, -(2**63) - 1, 10**400, -(10**30)]),
    st.floats(),  # NaN and infinities included: json.dumps writes them
    st.text(),  # NUL and lone surrogates included
    st.text(alphabet=string.printable, max_size=5),
    timestamps,
    st.dates().map(str),
    st.uuids().map(str),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=2),
    max_leaves=6,
)
SORTS = [sort.value for sort in BookSort] + ["email"]
# What a tamperer would try first: the list's own sort and key shape, with a key part that is
# extreme, mistyped or unstorable.
key_parts = st.one_of(
    timestamps,
    st.text(st.sampled_from(["a", "\x00", "\ud800", "\udfff", "é", "\u0308"]), max_size=4),
    st.dates().map(str),
    st.sampled_from([10**400, 2**63, float("nan"), float("inf"), -1e308, 0.5, "0.5", True]),
    scalars,
)
keys = st.one_of(
    st.tuples(scalars, st.uuids().map(str) | scalars).map(list),
    st.tuples(scalars).map(list),
    json_values,
)
payloads = st.one_of(
    st.tuples(st.just(1), st.sampled_from(SORTS), keys).map(list),
    st.tuples(
        st.sampled_from([1, 2, 0, "1", 1.0, True, None]),
        st.sampled_from(SORTS) | st.text(max_size=5),
        keys,
    ).map(list),
    json_values,
)


def cursors(sort: str) -> st.SearchStrategy[str]:
    own_shape = st.one_of(
        st.tuples(key_parts, st.uuids().map(str)).map(lambda key: [1, sort, list(key)]),
        st.tuples(key_parts).map(lambda key: [1, sort, list(key)]),
    )
    return st.one_of(
        own_shape.map(forged),
        own_shape.map(forged),
        payloads.map(forged),
        st.binary(max_size=200).map(lambda raw: base64.urlsafe_b64encode(raw).decode()),
        st.text(st.characters(exclude_categories=["Cs"]), max_size=200),
    )


# Every paginated list: (path, params, the sort its cursors name); {book_id} is a reviewed book.
LISTS = [
    *[(BOOKS, {"sort": sort.value}, sort.value) for sort in BookSort if sort != "relevance"],
    (BOOKS, {"q": "book"}, "relevance"),
    (reviews_path("{book_id}"), {}, "-created_at"),
    (USERS, {}, "email"),
]


@pytest.mark.parametrize(("path", "params", "sort"), LISTS, ids=[sort for *_, sort in LISTS])
@given(data=st.data())
@settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
async def test_any_cursor_to_any_list_is_a_page_or_a_4xx_problem(
    client: httpx.AsyncClient,
    reviewed_book: str,
    path: str,
    params: dict[str, str],
    sort: str,
    data: st.DataObject,
) -> None:
    cursor = data.draw(cursors(sort), label="cursor")

    response = await client.get(
        path.format(book_id=reviewed_book), params={**params, "cursor": cursor}
    )

    if response.status_code != 200:
        assert response.status_code in {400, 422}, response.text
        assert response.headers["content-type"] == "application/problem+json"


@pytest.fixture
async def reviewed_book(client: httpx.AsyncClient) -> str:
    """One book with a review, made once per test (Hypothesis reuses it for every example)."""
    return await a_reviewed_book(client)
