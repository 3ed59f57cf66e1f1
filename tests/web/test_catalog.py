"""The catalog's pages: search, filters, sort and keyset pages over the API's cursors, a book's
page and its reviews, conditional GETs, and the reader's own review."""

from __future__ import annotations

import html
import re

import httpx
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from bookshelf.reviews.models import reviews
from bookshelf.users.schemas import Role
from bookshelf.web.catalog import PAGE_SIZE, REVIEWS_PER_PAGE
from tests.conftest import AccountFactory, StatementCounter
from tests.factories import count_rows, create_book, post_review
from tests.web.support import Browser, heading

_TITLE = re.compile(r'<h3><a href="/books/[^"]+">([^<]+)</a></h3>')
_LINK = re.compile(r'<a href="([^"]+)" rel="(prev|next)">')


def titles(response: httpx.Response) -> list[str]:
    return [html.unescape(title) for title in _TITLE.findall(response.text)]


def links(response: httpx.Response) -> dict[str, str]:
    return {rel: html.unescape(href) for href, rel in _LINK.findall(response.text)}


async def test_an_empty_catalog_says_so(browser: Browser) -> None:
    response = await browser.get("/")
    assert response.status_code == 200
    assert "The catalog is empty." in response.text
    assert links(response) == {}


async def test_pages_go_forward_and_back_over_the_apis_cursors(
    client: httpx.AsyncClient, browser: Browser
) -> None:
    for number in range(PAGE_SIZE * 2 + 3):
        await create_book(client, title=f"Volume {number:02d}")

    first = await browser.get("/?sort=title")
    second = await browser.get(links(first)["next"])
    third = await browser.get(links(second)["next"])
    back_to_second = await browser.get(links(third)["prev"])
    back_to_first = await browser.get(links(back_to_second)["prev"])

    assert titles(first) == [f"Volume {n:02d}" for n in range(PAGE_SIZE)]
    assert titles(second) == [f"Volume {n:02d}" for n in range(PAGE_SIZE, 2 * PAGE_SIZE)]
    assert titles(third) == [f"Volume {n:02d}" for n in range(2 * PAGE_SIZE, 2 * PAGE_SIZE + 3)]
    assert "next" not in links(third)
    assert titles(back_to_second) == titles(second)
    assert titles(back_to_first) == titles(first)
    assert "prev" not in links(back_to_first)
    assert "sort=title" in links(first)["next"]


async def test_search_and_filters(client: httpx.AsyncClient, browser: Browser) -> None:
    await create_book(client, title="Dune", authors=["Frank Herbert"], language="en")
    await create_book(client, title="Dune Messiah", authors=["Frank Herbert"], language="en")
    await create_book(
        client, title="Le Petit Prince", authors=["Antoine de Saint-Exupéry"], language="fr"
    )

    searched = await browser.get("/?q=dune")
    by_author = await browser.get("/?author=antoine+de+saint-exup%C3%A9ry")
    in_french = await browser.get("/?language=fr&sort=-title")
    nothing = await browser.get("/?q=zzzz")
    invalid = await browser.get("/?language=xx&sort=relevance")

    assert sorted(titles(searched)) == ["Dune", "Dune Messiah"]
    assert titles(by_author) == ["Le Petit Prince"]
    assert titles(in_french) == ["Le Petit Prince"]
    assert "No book matches" in nothing.text
    assert invalid.status_code == 422
    assert 'id="error-language"' in invalid.text
    assert 'id="error-sort"' in invalid.text or "relevance" in invalid.text


async def test_pages_answer_304_to_their_etag(client: httpx.AsyncClient, browser: Browser) -> None:
    book = await create_book(client)
    for path in ("/", f"/books/{book['id']}"):
        first = await browser.get(path)
        again = await browser.client.get(path, headers={"If-None-Match": first.headers["etag"]})
        assert first.headers["cache-control"] == "private, no-cache"
        assert first.headers["vary"] == "Cookie"
        assert (again.status_code, again.content) == (304, b"")
        assert again.headers["etag"] == first.headers["etag"]
    await client.patch(f"/api/v1/books/{book['id']}", json={"title": "Renamed"})
    changed = await browser.client.get(
        f"/books/{book['id']}", headers={"If-None-Match": first.headers["etag"]}
    )
    assert changed.status_code == 200
    assert "Renamed" in changed.text


async def test_a_book_page_shows_every_field_and_its_reviews_in_pages(
    client: httpx.AsyncClient, browser: Browser, make_account: AccountFactory
) -> None:
    book = await create_book(client, subtitle="A subtitle", description="Line one.\nLine two.")
    for number in range(REVIEWS_PER_PAGE + 2):
        author = await make_account(Role.READER, display_name=f"Reader {number:02d}")
        await post_review(client, book["id"], author.headers, rating=5, body=f"Review {number}")

    first = await browser.get(f"/books/{book['id']}")
    second = await browser.get(links(first)["next"])
    back = await browser.get(links(second)["prev"])

    for field in ("title", "subtitle", "isbn", "publisher", "published_date", "language"):
        assert html.escape(str(book[field])) in first.text, field
    assert "Rated 5.00 out of 5 by 12 readers" in first.text
    assert first.text.count('class="review"') == REVIEWS_PER_PAGE
    assert second.text.count('class="review"') == 2
    assert back.text == first.text
    assert "Sign in</a> to review this book" in first.text


async def test_a_reader_writes_changes_and_deletes_a_review(
    client: httpx.AsyncClient,
    browser: Browser,
    make_account: AccountFactory,
    engine: AsyncEngine,
) -> None:
    book = await create_book(client)
    path = f"/books/{book['id']}"
    browser.sign_in_as(await make_account(Role.READER))

    invalid = await browser.submit(path, f"{path}/reviews", {"rating": "9", "body": "x"})
    written = await browser.post(f"{path}/reviews", {"rating": "4", "body": "Good."})
    twice = await browser.post(f"{path}/reviews", {"rating": "3"})
    shown = await browser.get(path)
    async with engine.connect() as connection:
        review_id = (await connection.execute(select(reviews.c.id))).scalar_one()
    changed = await browser.post(f"{path}/reviews/{review_id}", {"rating": "2", "body": ""})
    after_change = await browser.get(path)
    deleted = await browser.post(f"{path}/reviews/{review_id}/delete")

    assert invalid.status_code == 422
    assert 'id="error-rating"' in invalid.text
    assert written.status_code == 303
    assert written.headers["location"] == f"{path}#your-review"
    assert twice.status_code == 409
    assert "Save your review" in shown.text
    assert "Rated 4.00" in shown.text
    assert changed.status_code == 303
    assert "Rated 2.00" in after_change.text
    assert deleted.status_code == 303
    assert await count_rows(engine, reviews) == 0


async def test_someone_elses_review_cannot_be_changed_but_an_admin_may_delete_it(
    app: FastAPI, client: httpx.AsyncClient, make_account: AccountFactory, engine: AsyncEngine
) -> None:
    book = await create_book(client)
    author = await make_account(Role.READER)
    review = await post_review(client, book["id"], author.headers)
    path = f"/books/{book['id']}/reviews/{review['id']}"
    async with Browser(app) as other, Browser(app) as admin:
        other.sign_in_as(await make_account(Role.READER))
        admin.sign_in_as(await make_account(Role.ADMIN))
        await other.get(f"/books/{book['id']}")
        refused = await other.post(path, {"rating": "1"})
        refused_delete = await other.post(f"{path}/delete")
        admin_page = await admin.get(f"/books/{book['id']}")
        moderated = await admin.post(f"{path}/delete")
    assert refused.status_code == 404
    assert heading(refused) == "Page not found"
    assert refused_delete.status_code == 404
    assert "Delete this review" in admin_page.text
    assert moderated.status_code == 303
    assert await count_rows(engine, reviews) == 0


async def test_a_book_page_costs_one_query_per_thing_it_shows(
    client: httpx.AsyncClient,
    browser: Browser,
    make_account: AccountFactory,
    sql_statements: StatementCounter,
) -> None:
    """The book's row (which counts its reviews), a page of reviews when it has some, and for
    a signed-in reader their session and their own review: no query per review."""
    quiet = await create_book(client)
    reviewed = await create_book(client)
    for _ in range(3):
        author = await make_account(Role.READER)
        await post_review(client, reviewed["id"], author.headers)
    counts = {}
    for name, book in (("quiet", quiet), ("reviewed", reviewed)):
        sql_statements.statements.clear()
        assert (await browser.get(f"/books/{book['id']}")).status_code == 200
        counts[name] = sql_statements.count
    browser.sign_in_as(await make_account(Role.READER))
    sql_statements.statements.clear()
    await browser.get(f"/books/{reviewed['id']}")
    counts["signed in"] = sql_statements.count
    assert counts == {"quiet": 1, "reviewed": 2, "signed in": 4}
