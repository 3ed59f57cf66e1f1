"""GET /api/v1/books?q=: full-text search over title, subtitle and authors, ranked by relevance."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from bookshelf.books.models import books
from tests.factories import BOOKS, create_book


async def search(client: httpx.AsyncClient, q: str, **params: Any) -> httpx.Response:
    return await client.get(BOOKS, params={"q": q, **params})


async def found_titles(client: httpx.AsyncClient, q: str, **params: Any) -> list[str]:
    response = await search(client, q, limit=100, **params)
    assert response.status_code == 200, response.text
    assert response.json()["next_cursor"] is None
    return [item["title"] for item in response.json()["items"]]


async def collect_ids(client: httpx.AsyncClient, q: str, **params: Any) -> list[str]:
    """Every match, page by page; fails if a page repeats an earlier item."""
    ids: list[str] = []
    cursor = None
    for _ in range(100):
        response = await search(client, q, **params, **({"cursor": cursor} if cursor else {}))
        assert response.status_code == 200, response.text
        ids += [item["id"] for item in response.json()["items"]]
        cursor = response.json()["next_cursor"]
        if cursor is None:
            break
    assert len(ids) == len(set(ids)), "a match was served twice"
    return ids


def assert_validation_error(response: httpx.Response, loc: list[str]) -> None:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["type"] == "urn:bookshelf:problem:validation-error"
    assert loc in [error["loc"] for error in problem["errors"]]


async def create_library(client: httpx.AsyncClient) -> None:
    await create_book(client, title="The Hobbit", authors=["J. R. R. Tolkien"])
    await create_book(
        client,
        title="Silmarillion",
        subtitle="Tales of the elder days",
        authors=["J. R. R. Tolkien", "Christopher Tolkien"],
    )
    await create_book(client, title="Unrelated", authors=["Bilbo Hobbit"])
    await create_book(
        client, title="Dune", authors=["Frank Herbert"], description="No hobbit in here."
    )


# --- matching --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("HOBBIT", {"The Hobbit", "Unrelated"}),
        ("hobbit", {"The Hobbit", "Unrelated"}),
        ("tolkien", {"The Hobbit", "Silmarillion"}),
        ("CHRISTOPHER", {"Silmarillion"}),
        ("elder", {"Silmarillion"}),
        ("  dune  ", {"Dune"}),
        ("herbert", {"Dune"}),
        ("hobbit tolkien", {"The Hobbit"}),
        ("Tolkien  elder", {"Silmarillion"}),
        ("hobbit herbert", set()),
        ("hobb", set()),
        ("nothing-like-this", set()),
    ],
)
async def test_search_matches_all_words_in_title_subtitle_and_authors(
    client: httpx.AsyncClient, q: str, expected: set[str]
) -> None:
    await create_library(client)

    assert set(await found_titles(client, q)) == expected


async def test_search_ignores_the_description(client: httpx.AsyncClient) -> None:
    await create_book(client, title="Dune", description="Spice and sandworms")

    assert await found_titles(client, "sandworms") == []


async def test_search_folds_case_of_non_ascii_letters_in_titles(
    client: httpx.AsyncClient,
) -> None:
    await create_book(client, title="L'ÉCOLE des femmes")

    assert await found_titles(client, "école") == ["L'ÉCOLE des femmes"]


@pytest.mark.parametrize("q", ["Molière", "MOLIÈRE", "Bjørn"])
async def test_search_finds_non_ascii_author_names(client: httpx.AsyncClient, q: str) -> None:
    await create_book(client, title="Tartuffe", authors=["Molière", "Bjørn Ærø"])

    assert await found_titles(client, q) == ["Tartuffe"]


async def test_search_follows_patched_and_deleted_books(client: httpx.AsyncClient) -> None:
    book = await create_book(client, title="Alpha Centauri", authors=["Old Name"])
    path = f"{BOOKS}/{book['id']}"

    assert (await client.patch(path, json={"title": "Beta Pictoris", "authors": ["Nu"]})).is_success

    assert await found_titles(client, "alpha") == []
    assert await found_titles(client, "old") == []
    assert await found_titles(client, "pictoris nu") == ["Beta Pictoris"]
    assert (await client.delete(path)).status_code == 204
    assert await found_titles(client, "pictoris") == []


# --- relevance -------------------------------------------------------------------------------


async def test_search_ranks_title_and_author_matches_above_subtitle_matches(
    client: httpx.AsyncClient,
) -> None:
    await create_book(client, title="Something else", subtitle="about a dragon", authors=["Jo"])
    await create_book(client, title="Dragon", authors=["Dragon Smith"])

    assert await found_titles(client, "dragon") == ["Dragon", "Something else"]
    assert await found_titles(client, "dragon", sort="relevance") == ["Dragon", "Something else"]


async def test_search_pages_by_relevance_each_match_once_and_stably(
    client: httpx.AsyncClient,
) -> None:
    strong = [
        (await create_book(client, title=f"Dragon {n}", authors=["Dragon Smith"]))["id"]
        for n in range(6)
    ]
    weak = [
        (await create_book(client, title=f"Tale {n}", subtitle="a dragon", authors=["Jo"]))["id"]
        for n in range(7)
    ]
    await create_book(client, title="No match here")

    paged = await collect_ids(client, "dragon", limit=4)

    assert set(paged[:6]) == set(strong)
    assert set(paged[6:]) == set(weak)
    assert await collect_ids(client, "dragon", limit=3) == paged
    whole = (await search(client, "dragon", limit=100)).json()["items"]
    assert [item["id"] for item in whole] == paged


async def test_sort_relevance_without_q_returns_422(client: httpx.AsyncClient) -> None:
    response = await client.get(BOOKS, params={"sort": "relevance"})

    assert response.status_code == 422
    assert response.json()["type"] == "urn:bookshelf:problem:validation-error"
    assert "relevance" in response.json()["errors"][0]["msg"]


# --- with filters, sorts and paging ----------------------------------------------------------


async def test_search_combines_with_filters_and_other_sorts(client: httpx.AsyncClient) -> None:
    for title, language in (("war b", "en"), ("War a", "en"), ("war c", "fr"), ("peace", "en")):
        await create_book(client, title=title, language=language, authors=["Leo Tolstoy"])

    assert await found_titles(client, "war", sort="title") == ["War a", "war b", "war c"]
    assert await found_titles(client, "war", sort="-title", language="en") == ["war b", "War a"]
    assert await found_titles(client, "war", author="leo tolstoy", language="fr") == ["war c"]
    assert await found_titles(client, "war", author="someone else") == []


async def test_search_with_title_sort_pages_through_every_match_once(
    client: httpx.AsyncClient,
) -> None:
    matching = {(await create_book(client, title=f"Saga {n:02}"))["id"] for n in range(11)}
    await create_book(client, title="Other")

    ids = await collect_ids(client, "saga", sort="-created_at", limit=4)

    assert set(ids) == matching
    assert len(ids) == 11


async def test_search_with_nan_relevance_cursor_never_returns_500(
    client: httpx.AsyncClient,
) -> None:
    ids = {(await create_book(client, title=f"Moon {n}"))["id"] for n in range(3)}
    key = [float("nan"), "00000000-0000-4000-8000-000000000000"]
    cursor = base64.urlsafe_b64encode(json.dumps([1, "relevance", key]).encode()).decode()

    response = await search(client, "moon", cursor=cursor)

    if response.status_code == 200:
        assert {item["id"] for item in response.json()["items"]} <= ids
    else:
        assert response.status_code == 422
        assert response.json()["type"] == "urn:bookshelf:problem:invalid-cursor"


# --- hostile and invalid input ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("'; DROP TABLE books; --", set()),
        ('title:"x" OR NEAR(', set()),
        ("hobbit*", {"The Hobbit", "Unrelated"}),
        ('"hobbit', {"The Hobbit", "Unrelated"}),
        ("AND OR NOT", set()),
        ("NEAR(hobbit, tolkien)", set()),
        ("books_fts MATCH hobbit", set()),
        ("hobbit & !tolkien", {"The Hobbit"}),
        ("100%", set()),
        ("\\hobbit", {"The Hobbit", "Unrelated"}),
    ],
)
async def test_search_with_query_syntax_returns_200_and_leaves_the_table_alone(
    client: httpx.AsyncClient, engine: AsyncEngine, q: str, expected: set[str]
) -> None:
    await create_library(client)

    assert set(await found_titles(client, q)) == expected
    async with engine.connect() as connection:
        assert await connection.scalar(select(func.count()).select_from(books)) == 4


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("hobbit OR dune", set()),
        ("hobbit or dune", set()),
        ("-hobbit", {"The Hobbit", "Unrelated"}),
        ("hobbit' OR '1'='1", set()),
    ],
)
async def test_search_treats_or_and_minus_as_words_that_must_match(
    client: httpx.AsyncClient, q: str, expected: set[str]
) -> None:
    # "All words must match" on both databases: no OR, no negation.
    await create_library(client)

    assert set(await found_titles(client, q)) == expected


@pytest.mark.parametrize("q", ["!!!", "*", '"', "---", "", "   ", "()"])
async def test_search_without_any_letter_or_digit_returns_422(
    client: httpx.AsyncClient, q: str
) -> None:
    assert_validation_error(await search(client, q), ["query", "q"])


@pytest.mark.parametrize("q", ["a" * 201, "word " * 41, "nul\u0000byte"])
async def test_search_with_too_long_or_unstorable_q_returns_422(
    client: httpx.AsyncClient, q: str
) -> None:
    assert_validation_error(await search(client, q), ["query", "q"])


async def test_search_accepts_q_of_200_characters(client: httpx.AsyncClient) -> None:
    await create_book(client, title="Short")

    assert await found_titles(client, "x" * 200) == []
