"""Small builders of valid request bodies; override only what a test is about."""

from __future__ import annotations

import itertools
import random
from typing import Any

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
