"""GET /api/v1/books: envelope, limits, keyset paging, sort orders, filters and cursors."""

from __future__ import annotations

import base64
import json
import re
from typing import Any
from uuid import UUID

import httpx
import pytest

from tests.conftest import StatementCounter
from tests.factories import BOOKS, assert_problem, create_book

LINK_NEXT = re.compile(r'^<(?P<url>[^>]+)>; rel="next"$')


async def create_books(client: httpx.AsyncClient, count: int, **overrides: Any) -> list[str]:
    return [(await create_book(client, **overrides))["id"] for _ in range(count)]


def next_link(response: httpx.Response) -> httpx.URL:
    match = LINK_NEXT.match(response.headers["link"])
    assert match is not None, response.headers["link"]
    return httpx.URL(match["url"])


async def collect(client: httpx.AsyncClient, **params: Any) -> list[dict[str, Any]]:
    """Every item of a listing, page by page via next_cursor; checks page sizes and Link."""
    limit = int(params.get("limit", 20))
    items: list[dict[str, Any]] = []
    cursor = None
    for _ in range(100):
        response = await client.get(
            BOOKS, params={**params, **({"cursor": cursor} if cursor else {})}
        )
        assert response.status_code == 200, response.text
        page = response.json()
        assert set(page) == {"items", "next_cursor"}
        items += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            assert "link" not in response.headers
            assert len(page["items"]) <= limit
            break
        assert len(page["items"]) == limit
        assert next_link(response).params["cursor"] == cursor
    ids = [item["id"] for item in items]
    assert len(ids) == len(set(ids)), "an item was served twice"
    return items


async def collect_ids(client: httpx.AsyncClient, **params: Any) -> list[str]:
    return [item["id"] for item in await collect(client, **params)]


def forged_cursor(payload: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")


# --- envelope, limits, paging ----------------------------------------------------------------


async def test_list_of_empty_catalog_is_an_empty_page(client: httpx.AsyncClient) -> None:
    response = await client.get(BOOKS)

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"items": [], "next_cursor": None}
    assert "link" not in response.headers


async def test_list_items_are_full_books(client: httpx.AsyncClient) -> None:
    book = await create_book(client)

    assert (await client.get(BOOKS)).json() == {"items": [book], "next_cursor": None}


async def test_list_default_limit_is_20(client: httpx.AsyncClient) -> None:
    await create_books(client, 21)

    page = (await client.get(BOOKS)).json()

    assert len(page["items"]) == 20
    assert page["next_cursor"] is not None


@pytest.mark.parametrize("limit", [1, 3, 100])
async def test_list_honours_limit(client: httpx.AsyncClient, limit: int) -> None:
    await create_books(client, 3)

    page = (await client.get(BOOKS, params={"limit": limit})).json()

    assert len(page["items"]) == min(limit, 3)
    assert (page["next_cursor"] is None) is (limit >= 3)


@pytest.mark.parametrize("limit", ["0", "101", "-1", str(10**30), "abc", "1.5", ""])
async def test_list_with_invalid_limit_returns_422(client: httpx.AsyncClient, limit: str) -> None:
    problem = assert_problem(
        await client.get(BOOKS, params={"limit": limit}), 422, "validation-error"
    )
    assert [error["loc"] for error in problem["errors"]] == [["query", "limit"]]


async def test_paging_visits_every_book_exactly_once(client: httpx.AsyncClient) -> None:
    created = await create_books(client, 45)

    ids = await collect_ids(client, limit=10)

    assert ids == created[::-1]


async def test_following_link_headers_visits_every_book_exactly_once(
    client: httpx.AsyncClient,
) -> None:
    created = await create_books(client, 12, subjects=["kept"])
    await create_book(client, subjects=["other"])
    ids: list[str] = []
    url = httpx.URL(BOOKS, params={"limit": 5, "sort": "title", "subject": "kept"})

    for _ in range(10):
        response = await client.get(url)
        assert response.status_code == 200
        ids += [item["id"] for item in response.json()["items"]]
        if "link" not in response.headers:
            break
        url = next_link(response)
        assert (url.params["limit"], url.params["sort"], url.params["subject"]) == (
            "5",
            "title",
            "kept",
        )

    assert sorted(ids) == sorted(created)
    assert len(ids) == len(set(ids))


async def test_list_issues_one_sql_statement_whatever_the_page_size(
    client: httpx.AsyncClient, sql_statements: StatementCounter
) -> None:
    await create_books(client, 30, authors=["A", "B", "C"], subjects=["x", "y"])
    for params in ({"limit": 100}, {"limit": 5}, {"author": "b", "subject": "x", "q": "book"}):
        sql_statements.statements.clear()

        response = await client.get(BOOKS, params=params)

        assert response.status_code == 200
        # Transaction control is not counted: a search on PostgreSQL runs in a transaction of
        # its own, whose BEGIN carries the search's settings (books.search.bounded).
        assert sql_statements.count == 1, sql_statements.statements


# --- sort orders -----------------------------------------------------------------------------

SORT_FIXTURE = [  # (title, published_date), created in this order
    ("cherry", "2001-03"),
    ("apple", None),
    ("Banana", "1999-05"),
    ("Durian", "1999-05-02"),
    ("elder", None),
]


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ("title", ["apple", "Banana", "cherry", "Durian", "elder"]),
        ("-title", ["elder", "Durian", "cherry", "Banana", "apple"]),
        ("published_date", ["Banana", "Durian", "cherry", "<undated>", "<undated>"]),
        ("-published_date", ["<undated>", "<undated>", "cherry", "Durian", "Banana"]),
        ("created_at", ["cherry", "apple", "Banana", "Durian", "elder"]),
        ("-created_at", ["elder", "Durian", "Banana", "apple", "cherry"]),
        (None, ["elder", "Durian", "Banana", "apple", "cherry"]),
    ],
)
async def test_list_sorts_across_pages(
    client: httpx.AsyncClient, sort: str | None, expected: list[str]
) -> None:
    ids = {}
    for title, published in SORT_FIXTURE:
        ids[title] = (await create_book(client, title=title, published_date=published))["id"]
    # Books with the same sort key are ordered by id, in the sort's direction.
    undated = sorted(
        ["apple", "elder"],
        key=lambda t: UUID(ids[t]),
        reverse=sort is not None and sort.startswith("-"),
    )
    expected = [undated.pop(0) if title == "<undated>" else title for title in expected]

    items = await collect(client, limit=2, **({"sort": sort} if sort else {}))

    assert [item["title"] for item in items] == expected


@pytest.mark.parametrize(("sort", "descending"), [("title", False), ("-title", True)])
async def test_list_with_tied_sort_keys_is_stable_across_pages(
    client: httpx.AsyncClient, sort: str, descending: bool
) -> None:
    tied = await create_books(client, 4, title="Same Title")
    tied += await create_books(client, 3, title="SAME title")
    before = await create_book(client, title="Alpha")
    after = await create_book(client, title="Zulu")
    middle = sorted(tied, key=UUID)
    expected = [before["id"], *middle, after["id"]]

    ids = await collect_ids(client, limit=2, sort=sort)

    assert ids == (expected[::-1] if descending else expected)
    assert await collect_ids(client, limit=3, sort=sort) == ids


async def test_list_with_tied_published_dates_is_stable_across_pages(
    client: httpx.AsyncClient,
) -> None:
    tied = await create_books(client, 5, published_date="2000")
    tied += await create_books(client, 2, published_date="2000-01-01")

    assert await collect_ids(client, limit=2, sort="published_date") == sorted(tied, key=UUID)
    assert await collect_ids(client, limit=3, sort="-published_date") == sorted(
        tied, key=UUID, reverse=True
    )


@pytest.mark.parametrize("sort", ["relevance", "name", "TITLE", "--title", ""])
async def test_list_with_invalid_sort_returns_422(client: httpx.AsyncClient, sort: str) -> None:
    assert_problem(await client.get(BOOKS, params={"sort": sort}), 422, "validation-error")


# --- filters ---------------------------------------------------------------------------------


async def test_list_filters_by_author_case_insensitively_and_exactly(
    client: httpx.AsyncClient,
) -> None:
    solo = await create_book(client, authors=["Neil Gaiman"])
    duo = await create_book(client, authors=["Terry Pratchett", "NEIL GAIMAN"])
    await create_book(client, authors=["Neil Gaimanson"])

    assert set(await collect_ids(client, author="neil gaiman")) == {solo["id"], duo["id"]}
    assert await collect_ids(client, author="  terry PRATCHETT ") == [duo["id"]]
    assert await collect_ids(client, author="Neil") == []


async def test_list_filters_by_subject_language_and_isbn(client: httpx.AsyncClient) -> None:
    hobbit = await create_book(client, isbn="9780261102217", language="en", subjects=["Fantasy"])
    french = await create_book(client, language="fr", subjects=["fantasy", "classics"])
    await create_book(client, language=None, subjects=[])

    assert await collect_ids(client, subject="FANTASY", sort="created_at") == [
        hobbit["id"],
        french["id"],
    ]
    assert await collect_ids(client, subject="classics") == [french["id"]]
    assert await collect_ids(client, language="fr") == [french["id"]]
    assert await collect_ids(client, language="EN") == [hobbit["id"]]
    assert await collect_ids(client, isbn="0-261-10221-4") == [hobbit["id"]]
    assert await collect_ids(client, isbn="978-0-261-10221-7") == [hobbit["id"]]
    assert await collect_ids(client, isbn="9780000000002") == []


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"published_from": "2000"}, ["2000", "2000-05-01", "2000-06-30", "2000-07", "2001"]),
        ({"published_to": "2000-06"}, ["1999-12-31", "2000", "2000-05-01", "2000-06-30"]),
        (
            {"published_from": "2000", "published_to": "2000-06"},
            ["2000", "2000-05-01", "2000-06-30"],
        ),
        ({"published_from": "2000-05-01", "published_to": "2000-05-01"}, ["2000-05-01"]),
        ({"published_from": "2000-06-30"}, ["2000-06-30", "2000-07", "2001"]),
        ({"published_to": "1999"}, ["1999-12-31"]),
        ({"published_from": "2002"}, []),
    ],
)
async def test_list_filters_by_partial_publication_dates(
    client: httpx.AsyncClient, params: dict[str, str], expected: list[str]
) -> None:
    for published in ("1999-12-31", "2000", "2000-05-01", "2000-06-30", "2000-07", "2001", None):
        await create_book(client, published_date=published)

    items = await collect(client, sort="published_date", limit=2, **params)

    assert [item["published_date"] for item in items] == expected


@pytest.mark.parametrize(
    "params",
    [
        {"published_from": "2000-13"},
        {"published_to": "2000-02-30"},
        {"published_from": "yesterday"},
        {"language": "xx"},
        {"isbn": "0-261-10221-5"},
        {"author": ""},
        {"subject": "a\u0000b"},
    ],
)
async def test_list_with_invalid_filter_returns_422(
    client: httpx.AsyncClient, params: dict[str, str]
) -> None:
    problem = assert_problem(await client.get(BOOKS, params=params), 422, "validation-error")
    assert [error["loc"] for error in problem["errors"]] == [["query", *params]]


async def test_list_combines_filters_with_sort_and_paging(client: httpx.AsyncClient) -> None:
    leckie = {"authors": ["Ann Leckie"], "subjects": ["sf"], "language": "en"}
    leckie["published_date"] = "2015"
    for title in ("delta", "Alpha", "charlie", "Bravo", "echo"):
        await create_book(client, title=title, **leckie)
    await create_book(client, title="aaa wrong language", **{**leckie, "language": "fr"})
    await create_book(client, title="aaa wrong subject", **{**leckie, "subjects": ["x"]})
    await create_book(client, title="aaa too old", **{**leckie, "published_date": "1990"})
    await create_book(client, title="aaa other author", **{**leckie, "authors": ["Ann"]})
    filters = {"author": "ann leckie", "subject": "SF", "language": "en", "published_from": "2000"}

    items = await collect(client, sort="-title", limit=2, **filters)

    assert [item["title"] for item in items] == ["echo", "delta", "charlie", "Bravo", "Alpha"]


async def test_list_with_unknown_query_parameter_returns_422_naming_it(
    client: httpx.AsyncClient,
) -> None:
    problem = assert_problem(
        await client.get(BOOKS, params={"autor": "x"}), 422, "validation-error"
    )
    assert [error["loc"] for error in problem["errors"]] == [["query", "autor"]]


# --- cursors ---------------------------------------------------------------------------------

BOOK_ID = "2a939f10-6a94-4d7c-b8ad-df6ec6c703b8"


@pytest.mark.parametrize(
    "cursor",
    [
        "zzz",
        "!!!",
        base64.urlsafe_b64encode(b"{not json at all").decode(),
        forged_cursor({"sort": "title"}),
        forged_cursor([2, "-created_at", ["2020-01-01T00:00:00+00:00", BOOK_ID]]),
        forged_cursor([1, "-created_at", ["2020-01-01T00:00:00", BOOK_ID]]),
        forged_cursor([1, "-created_at", ["yesterday", BOOK_ID]]),
        forged_cursor([1, "-created_at", ["2020-01-01T00:00:00+00:00", "not-a-uuid"]]),
        forged_cursor([1, "-created_at", ["2020-01-01T00:00:00+00:00"]]),
        forged_cursor([1, "-created_at", "2020-01-01T00:00:00+00:00"]),
    ],
)
async def test_list_with_malformed_cursor_returns_422_invalid_cursor(
    client: httpx.AsyncClient, cursor: str
) -> None:
    await create_book(client)

    problem = assert_problem(
        await client.get(BOOKS, params={"cursor": cursor}), 422, "invalid-cursor"
    )
    assert problem["instance"] == BOOKS


@pytest.mark.parametrize(
    ("made_for", "used_with"),
    [("title", "-title"), ("title", "published_date"), ("-created_at", "created_at")],
)
async def test_list_with_cursor_of_another_sort_returns_422_invalid_cursor(
    client: httpx.AsyncClient, made_for: str, used_with: str
) -> None:
    await create_books(client, 3)
    cursor = (await client.get(BOOKS, params={"sort": made_for, "limit": 1})).json()["next_cursor"]

    response = await client.get(BOOKS, params={"sort": used_with, "cursor": cursor})

    assert_problem(response, 422, "invalid-cursor")


@pytest.mark.parametrize(
    ("sort", "key"),
    [
        ("title", 12),
        ("published_date", "2000-13-01"),
        ("created_at", "0001-01-01T00:00:00+01:00"),
        ("-created_at", "9999-12-31T23:59:59-23:59"),
    ],
)
async def test_list_with_unusable_cursor_key_returns_422_invalid_cursor(
    client: httpx.AsyncClient, sort: str, key: object
) -> None:
    await create_books(client, 2)
    cursor = forged_cursor([1, sort, [key, BOOK_ID]])

    response = await client.get(BOOKS, params={"sort": sort, "cursor": cursor})

    assert_problem(response, 422, "invalid-cursor")


async def test_list_with_nul_in_title_cursor_never_returns_500(client: httpx.AsyncClient) -> None:
    # No title holds NUL, so this cursor was never issued; a page or a 422 are both fine.
    ids = await create_books(client, 2)
    cursor = forged_cursor([1, "title", ["nul \u0000 in the key", BOOK_ID]])

    response = await client.get(BOOKS, params={"sort": "title", "cursor": cursor})

    if response.status_code == 200:
        assert sorted(item["id"] for item in response.json()["items"]) == sorted(ids)
    else:
        assert_problem(response, 422, "invalid-cursor")
