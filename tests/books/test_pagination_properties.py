"""Property: paging through any filtered, sorted or searched list visits every matching book
exactly once, in the list's order.

Each property test creates its books once (a fixture) and Hypothesis's examples call the API
through the test's client; pytest-asyncio runs every example in the test's event loop, the one
the app's connections belong to. The last tests check that pages do not shift when books are
added or removed between two requests.
"""

from __future__ import annotations

import calendar
import random
import re
from collections.abc import Callable
from datetime import date, datetime
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.factories import book_payload

BOOKS = "/api/v1/books"
UNDATED = date(9999, 12, 31)  # where books without a date sort (after every dated book)
PROPERTY_SETTINGS = settings(
    max_examples=40,
    deadline=None,
    # The books are made once per test, by a fixture, for every example to read.
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

Book = dict[str, Any]


async def create_books(client: httpx.AsyncClient, payloads: list[Book]) -> list[Book]:
    created = []
    for payload in payloads:
        response = await client.post(BOOKS, json=payload)
        assert response.status_code == 201, response.text
        created.append(response.json())
    return created


async def page_through(
    client: httpx.AsyncClient, params: dict[str, Any], limit: int, follow_link: bool
) -> list[str]:
    """Every id of the list, one page at a time, checking each page on the way."""
    seen: list[str] = []
    response = await client.get(BOOKS, params={**params, "limit": limit})
    for _ in range(100):
        assert response.status_code == 200, response.text
        page = response.json()
        ids = [item["id"] for item in page["items"]]
        seen.extend(ids)
        cursor = page["next_cursor"]
        if cursor is None:
            assert "link" not in response.headers
            assert len(ids) <= limit
            return seen
        assert len(ids) == limit
        link = re.fullmatch(r'<([^>]+)>; rel="next"', response.headers["link"])
        assert link is not None, response.headers["link"]
        assert httpx.URL(link.group(1)).params["cursor"] == cursor
        if follow_link:
            response = await client.get(link.group(1))
        else:
            response = await client.get(BOOKS, params={**params, "limit": limit, "cursor": cursor})
    raise AssertionError(f"more than 100 pages for {params} with limit {limit}")


async def whole_list(client: httpx.AsyncClient, params: dict[str, Any]) -> list[Book]:
    response = await client.get(BOOKS, params={**params, "limit": 100})
    assert response.status_code == 200, response.text
    assert response.json()["next_cursor"] is None
    items: list[Book] = response.json()["items"]
    return items


async def assert_paging_matches_whole_list(
    client: httpx.AsyncClient, params: dict[str, Any], limit: int, follow_link: bool
) -> list[Book]:
    reference = await whole_list(client, params)
    paged = await page_through(client, params, limit, follow_link)
    assert len(paged) == len(set(paged)), "a book was served twice"
    assert set(paged) == {item["id"] for item in reference}
    assert paged == [item["id"] for item in reference]
    return reference


def fold(text: str) -> str:
    return text.strip().casefold()


def date_range(text: str) -> tuple[date, date]:
    parts = [int(part) for part in text.split("-")]
    if len(parts) == 1:
        return date(parts[0], 1, 1), date(parts[0], 12, 31)
    if len(parts) == 2:
        year, month = parts
        return date(year, month, 1), date(year, month, calendar.monthrange(year, month)[1])
    exact = date(*parts)
    return exact, exact


def published_key(book: Book) -> date:
    published = book["published_date"]
    return date_range(published)[0] if published else UNDATED


SORT_KEYS: dict[str, Callable[[Book], Any]] = {
    "title": lambda book: fold(book["title"]),
    "published_date": published_key,
    "created_at": lambda book: datetime.fromisoformat(book["created_at"]),
}


def assert_sorted_by_primary_key(items: list[Book], sort: str) -> None:
    """The sort key never goes backwards; the order among ties (by id) is not checked."""
    keys = [SORT_KEYS[sort.removeprefix("-")](item) for item in items]
    expected = sorted(keys, reverse=sort.startswith("-"))
    assert keys == expected, f"sort={sort}: {keys}"


# The catalog: every sort key has ties, every filter matches several books but not all.

TITLES = ["Alpha", "alpha", "ALPHA", "Bravo", "bRAVO", "Charlie", "Delta", "delta", "Echo"]
DATES = ["1969", "1969-03", "1969-03-01", "1969-03-01", "1850", "2001-09-11", "2001", None]
AUTHORS = ["Ursula K. Le Guin", "Octavia E. Butler", "Stanisław Lem", "Italo Calvino"]
SUBJECTS = ["science-fiction", "fantasy", "classics", "Short Stories"]
LANGUAGES = ["en", "en", "fr", "pl", None]


def catalog_payloads() -> list[Book]:
    rng = random.Random(20261126)
    payloads = []
    for number in range(40):
        payloads.append(
            book_payload(
                title=TITLES[number % len(TITLES)],
                authors=rng.sample(AUTHORS, rng.choice([1, 1, 2])),
                published_date=DATES[number % len(DATES)],
                subjects=rng.sample(SUBJECTS, rng.randint(0, 2)),
                language=rng.choice(LANGUAGES),
            )
        )
    return payloads


def matches(book: Book, filters: dict[str, str]) -> bool:
    if "author" in filters and fold(filters["author"]) not in map(fold, book["authors"]):
        return False
    if "subject" in filters and fold(filters["subject"]) not in map(fold, book["subjects"]):
        return False
    if "language" in filters and book["language"] != filters["language"].lower():
        return False
    if "published_from" in filters and (
        book["published_date"] is None
        or published_key(book) < date_range(filters["published_from"])[0]
    ):
        return False
    return "published_to" not in filters or (
        book["published_date"] is not None
        and published_key(book) <= date_range(filters["published_to"])[1]
    )


BOUNDS = ["1850", "1900", "1969", "1969-03", "1969-03-01", "1969-03-15", "2001-09-11", "2020"]
FILTER_VALUES = {
    "author": [*AUTHORS, "ursula k. le guin", "STANISŁAW LEM", "Nobody"],
    "subject": [*SUBJECTS, "short stories", "Fantasy", "poetry"],
    "language": ["en", "FR", "pl", "de"],
    "published_from": BOUNDS,
    "published_to": BOUNDS,
}


@st.composite
def filters_strategy(draw: st.DrawFn) -> dict[str, str]:
    """Up to two filters: more than that matches nothing in a catalog of 40 books."""
    names = draw(st.lists(st.sampled_from(sorted(FILTER_VALUES)), max_size=2, unique=True))
    return {name: draw(st.sampled_from(FILTER_VALUES[name])) for name in names}


sorts = st.sampled_from(
    ["title", "-title", "published_date", "-published_date", "created_at", "-created_at"]
)
limits = st.integers(min_value=1, max_value=15)


@pytest.fixture
async def catalog(client: httpx.AsyncClient) -> list[Book]:
    return await create_books(client, catalog_payloads())


@PROPERTY_SETTINGS
@given(filters=filters_strategy(), sort=sorts, limit=limits, follow_link=st.booleans())
async def test_paging_any_filtered_sorted_list_visits_each_book_once_in_order(
    client: httpx.AsyncClient,
    catalog: list[Book],
    filters: dict[str, str],
    sort: str,
    limit: int,
    follow_link: bool,
) -> None:
    sort_keys_with_ties = {
        sort: len({key(book) for book in catalog}) < len(catalog)
        for sort, key in SORT_KEYS.items()
        if sort != "created_at"
    }
    assert all(sort_keys_with_ties.values())
    params = {**filters, "sort": sort}

    listed = await assert_paging_matches_whole_list(client, params, limit, follow_link)

    expected = {book["id"] for book in catalog if matches(book, filters)}
    assert {item["id"] for item in listed} == expected
    assert_sorted_by_primary_key(listed, sort)


# Search: titles, subtitles and authors share words, so ranks tie and results overlap.

WORDS = ["river", "garden", "night", "stone", "winter"]
SEARCH_AUTHORS = ["Ada Quill", "Bea Stone", "Cy Marlow"]


def search_payloads() -> list[Book]:
    rng = random.Random(7)
    payloads = []
    for number in range(36):
        words = rng.sample(WORDS, rng.randint(1, 3))
        if number % 6 == 0:
            words = [words[0], words[0]]  # a repeated word ranks differently
        payloads.append(
            book_payload(
                title=" ".join(words).title() if number % 2 else " ".join(words),
                subtitle=rng.choice([None, None, "A Night Story", "Tales of the River"]),
                authors=[rng.choice(SEARCH_AUTHORS)],
                published_date=rng.choice(DATES),
            )
        )
    return payloads


def tokens(book: Book) -> set[str]:
    text = " ".join([book["title"], book["subtitle"] or "", *book["authors"]])
    return {token.casefold() for token in re.findall(r"\w+", text)}


@pytest.fixture
async def searched(client: httpx.AsyncClient) -> list[Book]:
    return await create_books(client, search_payloads())


@PROPERTY_SETTINGS
@given(
    words=st.lists(
        st.sampled_from([*WORDS, "stone", "quill", "RIVER", "Night"]), min_size=1, max_size=2
    ),
    sort=st.sampled_from(["relevance", "relevance", "relevance", "title", "-created_at"]),
    explicit_sort=st.booleans(),
    limit=limits,
    follow_link=st.booleans(),
)
async def test_paging_any_search_visits_each_match_once_in_order(
    client: httpx.AsyncClient,
    searched: list[Book],
    words: list[str],
    sort: str,
    explicit_sort: bool,
    limit: int,
    follow_link: bool,
) -> None:
    params = {"q": " ".join(words)}
    if sort != "relevance" or explicit_sort:
        params["sort"] = sort

    listed = await assert_paging_matches_whole_list(client, params, limit, follow_link)

    wanted = {word.casefold() for word in words}
    expected = {book["id"] for book in searched if wanted <= tokens(book)}
    assert {item["id"] for item in listed} == expected
    if sort != "relevance":
        assert_sorted_by_primary_key(listed, sort)


# Keyset pages do not shift when the catalog changes between two requests (unlike OFFSET).


async def test_writes_between_pages_neither_repeat_nor_skip_untouched_books(
    client: httpx.AsyncClient,
) -> None:
    async def add(title: str) -> str:
        response = await client.post(BOOKS, json=book_payload(title=title))
        assert response.status_code == 201, response.text
        book_id: str = response.json()["id"]
        return book_id

    ids = {title: await add(title) for title in (f"Book {n:02d}" for n in range(20))}
    seen: list[str] = []
    params: dict[str, Any] = {"sort": "title", "limit": 4}
    first = await client.get(BOOKS, params=params)
    seen.extend(item["id"] for item in first.json()["items"])
    assert seen == [ids[f"Book {n:02d}"] for n in range(4)]

    behind = await add("Book 00a")  # sorts before the cursor: not served any more
    ahead = await add("Book 15a")  # sorts after the cursor: served in its place
    for title in ("Book 01", "Book 19"):  # one served already, one not yet
        assert (await client.delete(f"{BOOKS}/{ids[title]}")).status_code == 204

    cursor = first.json()["next_cursor"]
    while cursor is not None:
        page = await client.get(BOOKS, params={**params, "cursor": cursor})
        assert page.status_code == 200, page.text
        seen.extend(item["id"] for item in page.json()["items"])
        cursor = page.json()["next_cursor"]

    expected_titles = [f"Book {n:02d}" for n in range(19)]
    expected_titles.insert(16, "Book 15a")
    expected = [ahead if title == "Book 15a" else ids[title] for title in expected_titles]
    assert seen == expected
    assert behind not in seen


async def test_books_added_while_paging_newest_first_do_not_shift_pages(
    client: httpx.AsyncClient,
) -> None:
    created = []
    for number in range(9):
        response = await client.post(BOOKS, json=book_payload(title=f"Old {number}"))
        created.append(response.json()["id"])
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = await client.get(BOOKS, params=params)
        seen.extend(item["id"] for item in page.json()["items"])
        cursor = page.json()["next_cursor"]
        if cursor is None:
            break
        # A new book is the newest: it belongs before every page already served.
        response = await client.post(BOOKS, json=book_payload(title="New"))
        assert response.status_code == 201

    assert seen == created[::-1]
