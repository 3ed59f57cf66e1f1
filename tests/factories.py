"""Small builders of valid request bodies; override only what a test is about."""

from __future__ import annotations

import itertools
import random
from typing import Any

import httpx

from bookshelf.books.isbn import isbn13_check_digit

_counter = itertools.count(1)


def unique_isbn() -> str:
    """A valid ISBN-13 no other call in this process returns."""
    core = f"979{random.randrange(10**8, 10**9):09d}"
    return core + isbn13_check_digit(core)


def book_payload(**overrides: Any) -> dict[str, Any]:
    number = next(_counter)
    payload: dict[str, Any] = {
        "title": f"Test Book {number}",
        "authors": ["Ursula K. Le Guin"],
        "isbn": unique_isbn(),
        "publisher": "Ace Books",
        "published_date": "1969-03",
        "page_count": 286,
        "language": "en",
        "subjects": ["science-fiction"],
        "description": "A test book.",
    }
    payload.update(overrides)
    return payload


BOOKS = "/api/v1/books"
PROBLEM_KEYS = {"type", "title", "status", "detail", "instance"}


async def create_book(client: httpx.AsyncClient, **overrides: Any) -> dict[str, Any]:
    """Create a book through the API (asserting 201) and return its JSON."""
    response = await client.post(BOOKS, json=book_payload(**overrides))
    assert response.status_code == 201, response.text
    book: dict[str, Any] = response.json()
    return book


def assert_problem(
    response: httpx.Response, status: int, problem_type: str, *, instance: str | None = None
) -> dict[str, Any]:
    """Assert an RFC 9457 problem; ``problem_type`` is a Bookshelf slug or a full URI."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem: dict[str, Any] = response.json()
    assert set(problem) >= PROBLEM_KEYS, problem
    expected = problem_type if ":" in problem_type else f"urn:bookshelf:problem:{problem_type}"
    assert problem["type"] == expected
    assert problem["status"] == status
    assert problem["title"]
    assert problem["detail"]
    if instance is not None:
        assert problem["instance"] == instance
    return problem
