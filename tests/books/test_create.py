"""POST /api/v1/books: status, headers, body, what is stored, and every validation rule."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from bookshelf.books.models import book_authors, book_subjects, books
from tests.conftest import Account
from tests.factories import BOOKS, book_payload, count_rows

HOBBIT_ISBN13 = "9780261102217"
UNICODE_TITLE = "Ꮳherokee 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 — ñ 日本語 🙂"  # noqa: RUF001 - look-alike letters on purpose


async def post(client: httpx.AsyncClient, **overrides: Any) -> httpx.Response:
    # json.dumps escapes non-ASCII, so even a lone surrogate can be sent as JSON.
    body = json.dumps(book_payload(**overrides))
    return await client.post(BOOKS, content=body, headers={"Content-Type": "application/json"})


def assert_invalid(response: httpx.Response, *loc: str | int) -> None:
    """A 422 validation problem whose `errors` name the field at ``loc`` (after "body")."""
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["type"] == "urn:bookshelf:problem:validation-error"
    assert ["body", *loc] in [error["loc"] for error in body["errors"]], body["errors"]


async def stored_book(engine: AsyncEngine, book_id: str) -> Any:
    async with engine.connect() as connection:
        return (await connection.execute(select(books).where(books.c.id == UUID(book_id)))).one()


# --- success ---------------------------------------------------------------------------------


async def test_create_returns_201_with_location_etag_and_the_book(
    client: httpx.AsyncClient, admin: Account
) -> None:
    payload = book_payload(title="Dune", subtitle="A novel", subjects=["sf", "classics"])

    response = await client.post(BOOKS, json=payload)

    assert response.status_code == 201
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert response.headers["location"] == f"{BOOKS}/{body['id']}"
    assert response.headers["etag"] == '"1"'
    assert UUID(body["id"]).version == 4
    assert body["version"] == 1
    fields = {key: value for key, value in body.items() if key in payload}
    assert fields == payload
    assert set(body) == {
        *payload,
        *("id", "version", "created_at", "updated_at", "created_by", "updated_by"),
        *("rating_count", "rating_average"),
    }
    assert body["created_by"] == body["updated_by"] == str(admin.id)
    assert (body["rating_count"], body["rating_average"]) == (0, None)


async def test_create_then_get_round_trips(client: httpx.AsyncClient) -> None:
    created = await post(client, title="Dune")

    fetched = await client.get(created.headers["location"])

    assert fetched.status_code == 200
    assert fetched.json() == created.json()


async def test_create_stores_the_book_and_its_name_keys(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    response = await post(client, authors=["Terry Pratchett", "NEIL Gaiman"], subjects=["Humour"])
    book_id = response.json()["id"]

    row = await stored_book(engine, book_id)
    async with engine.connect() as connection:
        author_keys = (
            await connection.execute(
                select(book_authors.c.name_key)
                .where(book_authors.c.book_id == UUID(book_id))
                .order_by(book_authors.c.position)
            )
        ).scalars()
        subject_keys = (
            await connection.execute(
                select(book_subjects.c.name_key).where(book_subjects.c.book_id == UUID(book_id))
            )
        ).scalars()
        assert list(author_keys) == ["terry pratchett", "neil gaiman"]
        assert list(subject_keys) == ["humour"]
    assert row.authors == ["Terry Pratchett", "NEIL Gaiman"]
    assert row.version == 1
    assert await count_rows(engine, books) == 1


async def test_create_with_only_required_fields_defaults_the_rest(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(BOOKS, json={"title": "Beowulf", "authors": ["Anonymous"]})

    assert response.status_code == 201
    body = response.json()
    for field in ("subtitle", "isbn", "publisher", "published_date", "page_count", "language"):
        assert body[field] is None
    assert body["description"] is None
    assert body["subjects"] == []


async def test_create_trims_title_and_author_names(client: httpx.AsyncClient) -> None:
    response = await post(client, title="  \tThe Hobbit \n", authors=["  J. R. R. Tolkien "])

    assert response.status_code == 201
    assert response.json()["title"] == "The Hobbit"
    assert response.json()["authors"] == ["J. R. R. Tolkien"]


async def test_create_timestamps_are_iso_8601_with_a_utc_offset(
    client: httpx.AsyncClient,
) -> None:
    before = datetime.now(UTC)
    body = (await post(client)).json()
    after = datetime.now(UTC)

    created_at = datetime.fromisoformat(body["created_at"])
    updated_at = datetime.fromisoformat(body["updated_at"])
    assert created_at.tzinfo is not None
    assert created_at.utcoffset() == timedelta(0)
    assert updated_at == created_at
    assert before <= created_at <= after


# --- ISBN ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("0-261-10221-4", HOBBIT_ISBN13),
        ("0 261 10221 4", HOBBIT_ISBN13),
        ("0261102214", HOBBIT_ISBN13),
        ("978-0-261-10221-7", HOBBIT_ISBN13),
        ("0-8044-2957-X", "9780804429573"),
        ("0-8044-2957-x", "9780804429573"),
    ],
)
async def test_create_stores_and_returns_isbn_as_isbn13(
    client: httpx.AsyncClient, engine: AsyncEngine, given: str, stored: str
) -> None:
    response = await post(client, isbn=given)

    assert response.status_code == 201
    assert response.json()["isbn"] == stored
    assert (await stored_book(engine, response.json()["id"])).isbn == stored


@pytest.mark.parametrize(
    "isbn", ["0-261-10221-5", "9780261102218", "12345", "9770261102217", "026110221Y", "٠٢٦١١٠٢٢١٤"]
)
async def test_create_with_invalid_isbn_returns_422_naming_isbn(
    client: httpx.AsyncClient, isbn: str
) -> None:
    assert_invalid(await post(client, isbn=isbn), "isbn")


async def test_create_same_book_as_isbn10_then_isbn13_returns_409_and_keeps_one_row(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    first = await post(client, isbn="0-261-10221-4")
    assert first.status_code == 201

    second = await post(client, isbn="978-0-261-10221-7")

    assert second.status_code == 409
    assert second.headers["content-type"] == "application/problem+json"
    problem = second.json()
    assert problem["type"] == "urn:bookshelf:problem:isbn-conflict"
    assert problem["status"] == 409
    assert problem["instance"] == BOOKS
    assert HOBBIT_ISBN13 in problem["detail"]
    assert await count_rows(engine, books) == 1


# --- language and dates ----------------------------------------------------------------------


@pytest.mark.parametrize(("given", "stored"), [("EN", "en"), ("fr", "fr"), ("Ja", "ja")])
async def test_create_lowercases_the_language_code(
    client: httpx.AsyncClient, given: str, stored: str
) -> None:
    response = await post(client, language=given)

    assert response.status_code == 201
    assert response.json()["language"] == stored


@pytest.mark.parametrize("language", ["xx", "eng", "e", "", "english"])
async def test_create_with_unknown_language_returns_422(
    client: httpx.AsyncClient, language: str
) -> None:
    assert_invalid(await post(client, language=language), "language")


@pytest.mark.parametrize("published", ["1937", "1937-09", "1937-09-21", "2020-02-29", "0001"])
async def test_create_returns_published_date_exactly_as_given(
    client: httpx.AsyncClient, published: str
) -> None:
    response = await post(client, published_date=published)

    assert response.status_code == 201
    assert response.json()["published_date"] == published


async def test_create_accepts_today_as_published_date(client: httpx.AsyncClient) -> None:
    today = datetime.now(UTC).date().isoformat()

    assert (await post(client, published_date=today)).status_code == 201


@pytest.mark.parametrize(
    "published",
    [
        str(date.today().year + 1),
        (datetime.now(UTC).date() + timedelta(days=2)).isoformat(),
        "2021-02-30",
        "2021-02-29",
        "2021-13",
        "2021-00",
        "0000",
        "21-01-01",
        "1937/09/21",
        "1937-9-1",
        "",
    ],
)
async def test_create_with_invalid_or_future_published_date_returns_422(
    client: httpx.AsyncClient, published: str
) -> None:
    assert_invalid(await post(client, published_date=published), "published_date")


# --- sizes and types -------------------------------------------------------------------------


@pytest.mark.parametrize("page_count", [0, -1, 100_001, "12", True, 12.5, 1e300])
async def test_create_with_invalid_page_count_returns_422(
    client: httpx.AsyncClient, page_count: object
) -> None:
    assert_invalid(await post(client, page_count=page_count), "page_count")


@pytest.mark.parametrize("page_count", [1, 100_000])
async def test_create_accepts_page_count_bounds(client: httpx.AsyncClient, page_count: int) -> None:
    response = await post(client, page_count=page_count)

    assert response.status_code == 201
    assert response.json()["page_count"] == page_count


async def test_create_accepts_a_whole_float_as_page_count(client: httpx.AsyncClient) -> None:
    """JSON Schema (and so the OpenAPI document) counts 12.0 as an integer."""
    response = await post(client, page_count=12.0)

    assert response.status_code == 201, response.text
    assert response.json()["page_count"] == 12


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("authors", []),
        ("authors", [f"Author {n}" for n in range(21)]),
        ("authors", "Ursula K. Le Guin"),
        ("subjects", [f"subject-{n}" for n in range(21)]),
        ("title", ""),
        ("title", "   "),
        ("title", "x" * 301),
        ("title", None),
        ("subtitle", "x" * 301),
        ("publisher", "x" * 201),
        ("description", "x" * 10_001),
    ],
)
async def test_create_with_out_of_bounds_field_returns_422(
    client: httpx.AsyncClient, field: str, value: object
) -> None:
    assert_invalid(await post(client, **{field: value}), field)


async def test_create_with_blank_author_name_returns_422(client: httpx.AsyncClient) -> None:
    assert_invalid(await post(client, authors=["Good Name", "  "]), "authors", 1)


async def test_create_accepts_the_largest_allowed_values(client: httpx.AsyncClient) -> None:
    payload = book_payload(
        title="🙂" * 300,
        authors=[f"Author {n}" for n in range(20)],
        subjects=[f"subject-{n}" for n in range(20)],
        description="x" * 10_000,
    )

    response = await client.post(BOOKS, json=payload)

    assert response.status_code == 201
    body = response.json()
    assert [body[key] for key in payload] == list(payload.values())


async def test_create_without_title_returns_422_naming_it(client: httpx.AsyncClient) -> None:
    payload = book_payload()
    del payload["title"]

    assert_invalid(await client.post(BOOKS, json=payload), "title")


async def test_create_with_unknown_field_returns_422_naming_it(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    response = await post(client, colour="blue")

    assert_invalid(response, "colour")
    assert await count_rows(engine, books) == 0


# --- text content ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "title",
    [
        UNICODE_TITLE,
        # Already NFC (test_normalisation covers the rest): q + U+0301 has no composed form.
        "Caf\u00e9 and q\u0301",
        "שלום עולם",  # Hebrew, right to left
        "مرحبا بالعالم \u200f!",  # Arabic with a right-to-left mark
        "Zalgo z̷̢̛a̶l̸g̵o",
    ],
)
async def test_create_preserves_nfc_unicode_exactly(
    client: httpx.AsyncClient, engine: AsyncEngine, title: str
) -> None:
    response = await post(client, title=title, authors=[title], description=f"{title}\n\t{title}")

    assert response.status_code == 201
    body = response.json()
    assert body["title"] == title
    assert body["authors"] == [title]
    assert body["description"] == f"{title}\n\t{title}"
    fetched = (await client.get(response.headers["location"])).json()
    assert fetched["title"] == title
    row = await stored_book(engine, body["id"])
    assert (row.title, row.authors, row.description) == (title, [title], body["description"])


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("title", "Null\u0000byte"),
        ("subtitle", "\u0000"),
        ("publisher", "Ace\u0000"),
        ("description", "Null\u0000byte"),
        ("title", "Line\nbreak"),
        ("title", "Bell\u0007"),
        ("title", "Lone \ud800 surrogate"),
    ],
)
async def test_create_with_unstorable_or_control_characters_returns_422(
    client: httpx.AsyncClient, engine: AsyncEngine, field: str, value: str
) -> None:
    assert_invalid(await post(client, **{field: value}), field)
    assert await count_rows(engine, books) == 0


async def test_create_with_nul_in_author_name_returns_422(client: httpx.AsyncClient) -> None:
    assert_invalid(await post(client, authors=["Ada\u0000Lovelace"]), "authors", 0)
