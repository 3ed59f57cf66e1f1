"""Dependencies of the books feature."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import Depends

from bookshelf.books.exceptions import BookNotFound


def parse_book_id(book_id: str) -> UUID:
    """Book ids are UUIDs; anything else names no book, so it is a 404, not a 422."""
    try:
        return UUID(book_id)
    except ValueError:
        raise BookNotFound(book_id) from None


BookId = Annotated[UUID, Depends(parse_book_id)]
