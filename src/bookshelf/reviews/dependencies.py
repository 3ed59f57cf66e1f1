"""Dependencies of the reviews feature."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import Depends

from bookshelf.api import uuid_or_not_found
from bookshelf.reviews.exceptions import ReviewNotFound


async def parse_review_id(review_id: str) -> UUID:
    return uuid_or_not_found(review_id, ReviewNotFound)


ReviewId = Annotated[UUID, Depends(parse_review_id)]
