"""Text is compared as users mean it: canonically equivalent spellings (NFC and NFD "Zürich")
are the same text to the search, the author and subject filters, and what is stored."""

from __future__ import annotations

import unicodedata
from uuid import UUID

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from bookshelf.books.models import book_authors, books
from tests.factories import BOOKS, create_book

COMPOSED = "Z\u00fcrich"  # ü as one code point
DECOMPOSED = "Zu\u0308rich"  # u + combining diaeresis
SPELLINGS = pytest.mark.parametrize(
    ("stored", "searched"), [(COMPOSED, DECOMPOSED), (DECOMPOSED, COMPOSED)]
)


async def found_ids(client: httpx.AsyncClient, **params: str) -> list[str]:
    response = await client.get(BOOKS, params=params)
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["items"]]


@SPELLINGS
async def test_search_finds_the_other_spelling(
    client: httpx.AsyncClient, stored: str, searched: str
) -> None:
    book = await create_book(client, title=f"Nights in {stored}")
    await create_book(client, title="Days in Bern")

    assert await found_ids(client, q=searched) == [book["id"]]
    assert await found_ids(client, q=f"nights {searched}") == [book["id"]]


@SPELLINGS
async def test_author_and_subject_filters_match_the_other_spelling(
    client: httpx.AsyncClient, stored: str, searched: str
) -> None:
    book = await create_book(client, authors=[f"Anna {stored}"], subjects=[f"{stored} history"])
    await create_book(client, authors=["Anna Zurich"], subjects=["Zurich history"])

    assert await found_ids(client, author=f"anna {searched}") == [book["id"]]
    assert await found_ids(client, subject=f"{searched} HISTORY") == [book["id"]]


async def test_text_is_stored_and_returned_in_nfc(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    book = await create_book(
        client,
        title=f"{DECOMPOSED} by night",
        subtitle=DECOMPOSED,
        authors=[f"Ame\u0301lie {DECOMPOSED}"],
        publisher=DECOMPOSED,
        subjects=[DECOMPOSED],
        description=f"Caf\u0065\u0301 in {DECOMPOSED}",
    )
    patched = await client.patch(f"{BOOKS}/{book['id']}", json={"subtitle": f"O{DECOMPOSED}"})

    assert book["title"] == f"{COMPOSED} by night"
    assert book["authors"] == [f"Am\u00e9lie {COMPOSED}"]
    assert book["description"] == f"Caf\u00e9 in {COMPOSED}"
    assert patched.json()["subtitle"] == f"O{COMPOSED}"
    async with engine.connect() as connection:
        row = (await connection.execute(select(books).where(books.c.id == UUID(book["id"])))).one()
        keys = (await connection.execute(select(book_authors.c.name_key))).scalars().all()
    for value in (row.title, row.sort_title, row.subtitle, row.publisher, *row.authors, *keys):
        assert unicodedata.is_normalized("NFC", value), ascii(value)


async def test_compatibility_characters_are_kept(client: httpx.AsyncClient) -> None:
    """NFC, not NFKC: a ligature or a superscript in a title is the title as written."""
    book = await create_book(client, title="E = mc\u00b2 and the \ufb01sh")

    assert book["title"] == "E = mc\u00b2 and the \ufb01sh"
