"""Dependencies of the books feature."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import Depends

from bookshelf.api import uuid_or_not_found
from bookshelf.books.exceptions import BookNotFound


async def parse_book_id(book_id: str) -> UUID:
    return uuid_or_not_found(book_id, BookNotFound)


BookId = Annotated[UUID, Depends(parse_book_id)]
