"""Editors' pages: add, edit (a stale form gets the "changed meanwhile" page, never a silent
overwrite), delete (admins) and import, with the API's rules and messages."""

from __future__ import annotations

import json
import re

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from bookshelf.books.models import books
from bookshelf.users.schemas import Role
from tests.conftest import AccountFactory, make_settings
from tests.factories import app_account, book_payload, count_rows, create_book
from tests.ops.support import started
from tests.web.support import Browser, heading

_VERSION = re.compile(r'name="version" value="(\d+)"')


@pytest.fixture
async def editor(app: FastAPI, make_account: AccountFactory) -> Browser:
    browser = Browser(app)
    browser.sign_in_as(await make_account(Role.EDITOR))
    return browser


def form_of(book: dict[str, object], **changes: str) -> dict[str, str]:
    fields = {
        "title": str(book["title"]),
        "subtitle": str(book.get("subtitle") or ""),
        "authors": "\n".join(book["authors"]),  # type: ignore[arg-type]
        "isbn": str(book.get("isbn") or ""),
        "publisher": str(book.get("publisher") or ""),
        "published_date": str(book.get("published_date") or ""),
        "page_count": str(book.get("page_count") or ""),
        "language": str(book.get("language") or ""),
        "subjects": "\n".join(book.get("subjects") or []),  # type: ignore[arg-type]
        "description": str(book.get("description") or ""),
    }
    return {**fields, **changes}


async def _stored(engine: AsyncEngine) -> list[dict[str, object]]:
    async with engine.connect() as connection:
        rows = await connection.execute(select(books).order_by(books.c.title))
        return [dict(row._mapping) for row in rows]


async def test_an_editor_adds_a_book(editor: Browser, engine: AsyncEngine) -> None:
    payload = book_payload(title="Added in the browser", authors=["Ada", "Grace"])
    created = await editor.submit("/books/new", "/books/new", form_of(payload))
    shown = await editor.get(created.headers["location"])
    (stored,) = await _stored(engine)
    assert created.status_code == 303
    assert heading(shown) == "Added in the browser"
    assert stored["authors"] == ["Ada", "Grace"]
    assert stored["isbn"] == payload["isbn"]


async def test_the_api_rules_and_messages_apply_beside_each_field(
    client: httpx.AsyncClient, editor: Browser, engine: AsyncEngine
) -> None:
    taken = await create_book(client)
    missing = await editor.submit(
        "/books/new", "/books/new", {"title": "", "authors": "", "page_count": "many"}
    )
    bad_isbn = await editor.post("/books/new", form_of(book_payload(), isbn="978-0-00-000000-1"))
    duplicate = await editor.post("/books/new", form_of(book_payload(), isbn=str(taken["isbn"])))
    assert missing.status_code == 422
    for field in ("title", "authors", "page_count"):
        assert f'id="error-{field}"' in missing.text, field
    assert bad_isbn.status_code == 422
    assert 'id="error-isbn"' in bad_isbn.text
    assert duplicate.status_code == 422
    assert "Another book already has the ISBN" in duplicate.text
    assert len(await _stored(engine)) == 1


async def test_an_edit_saves_and_clears_fields(
    client: httpx.AsyncClient, editor: Browser, engine: AsyncEngine
) -> None:
    book = await create_book(client)
    path = f"/books/{book['id']}/edit"
    shown = await editor.get(path)
    version = _VERSION.search(shown.text)
    assert version is not None
    saved = await editor.post(
        path, {**form_of(book, title="Retitled", subtitle=""), "version": version.group(1)}
    )
    (stored,) = await _stored(engine)
    assert saved.headers["location"] == f"/books/{book['id']}"
    assert stored["title"] == "Retitled"
    assert stored["version"] == 2


async def test_a_stale_form_gets_the_changed_meanwhile_page_not_an_overwrite(
    app: FastAPI, client: httpx.AsyncClient, editor: Browser, engine: AsyncEngine
) -> None:
    """Two tabs: the first saves, the second (opened before) is shown both versions, and only
    an explicit second save of it wins."""
    book = await create_book(client)
    path = f"/books/{book['id']}/edit"
    first_tab = await editor.get(path)
    version = _VERSION.search(first_tab.text)
    assert version is not None
    await editor.post(path, {**form_of(book, title="First tab"), "version": version.group(1)})

    stale = await editor.post(
        path, {**form_of(book, title="Second tab"), "version": version.group(1)}
    )
    after_stale = await _stored(engine)
    current_version = _VERSION.search(stale.text)
    assert current_version is not None
    resaved = await editor.post(
        path, {**form_of(book, title="Second tab"), "version": current_version.group(1)}
    )

    assert stale.status_code == 409
    assert "was changed meanwhile" in heading(stale)
    assert "First tab" in stale.text
    assert "Second tab" in stale.text
    assert [row["title"] for row in after_stale] == ["First tab"]
    assert resaved.status_code == 303
    assert [row["title"] for row in await _stored(engine)] == ["Second tab"]


async def test_deleting_is_for_admins_and_checks_the_version(
    app: FastAPI, client: httpx.AsyncClient, editor: Browser, make_account: AccountFactory
) -> None:
    book = await create_book(client)
    path = f"/books/{book['id']}/delete"
    async with Browser(app) as admin:
        admin.sign_in_as(await make_account(Role.ADMIN))
        refused = await editor.get(path)
        confirm = await admin.get(path)
        await client.patch(f"/api/v1/books/{book['id']}", json={"title": "Changed"})
        stale = await admin.post(path, {"version": "1"})
        done = await admin.post(path, {"version": "2"})
        gone = await admin.get(f"/books/{book['id']}")
    assert refused.status_code == 403
    assert confirm.status_code == 200
    assert stale.status_code == 409
    assert "was <strong>not</strong> deleted" in stale.text
    assert heading(done) == "Book deleted"
    assert gone.status_code == 404


async def test_an_import_shows_each_lines_result(editor: Browser, engine: AsyncEngine) -> None:
    lines = [
        json.dumps(book_payload(title="Imported one")),
        "{not json",
        json.dumps({"title": "No authors"}),
        json.dumps(book_payload(title="Imported two")),
    ]
    await editor.get("/books/import")
    response = await editor.post(
        "/books/import",
        {"mode": "partial"},
        files={"file": ("books.ndjson", "\n".join(lines).encode(), "application/x-ndjson")},
    )
    assert response.status_code == 200, response.text
    assert "2 books added, 2 lines not imported." in response.text
    assert "not valid JSON" in response.text
    assert "authors" in response.text
    assert await count_rows(engine, books) == 2


async def test_an_all_or_nothing_import_with_a_bad_line_writes_nothing(
    editor: Browser, engine: AsyncEngine
) -> None:
    body = json.dumps(book_payload()) + "\n" + json.dumps({"title": "No authors"}) + "\n"
    await editor.get("/books/import")
    response = await editor.post(
        "/books/import",
        {"mode": "all-or-nothing"},
        files={"file": ("books.ndjson", body.encode(), "application/x-ndjson")},
    )
    assert response.status_code == 422
    assert "Line 2, authors" in response.text
    assert await count_rows(engine, books) == 0


async def test_an_import_without_a_file_says_so(editor: Browser) -> None:
    await editor.get("/books/import")
    response = await editor.post("/books/import", {"mode": "partial"})
    assert response.status_code == 422
    assert "Choose a file to import." in response.text


async def test_an_import_over_the_line_cap_is_a_413_page(database_url: str) -> None:
    capped = make_settings(database_url, import_max_lines=2)
    async with started(capped) as app, Browser(app) as browser:
        browser.sign_in_as(await app_account(app, Role.EDITOR))
        await browser.get("/books/import")
        body = "\n".join(json.dumps(book_payload()) for _ in range(3))
        response = await browser.post(
            "/books/import",
            {"mode": "partial"},
            files={"file": ("books.ndjson", body.encode(), "application/x-ndjson")},
        )
    assert response.status_code == 413
    assert "at most 2 books" in response.text
