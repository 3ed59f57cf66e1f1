"""Pydantic models of reviews."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from bookshelf.inputs import WholeNumber, absent_or_not_null
from bookshelf.text import LongText

Rating = Annotated[
    int, Field(strict=True, ge=1, le=5, description="1 (worst) to 5 (best)."), WholeNumber
]
ReviewText = Annotated[LongText, StringConstraints(max_length=5000)]


class ReviewCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rating: Rating
    body: ReviewText | None = None


class ReviewUpdate(BaseModel):
    """A merge patch: absent fields are unchanged, ``body: null`` removes the text."""

    model_config = ConfigDict(extra="forbid")

    rating: Rating | None = Field(None, json_schema_extra=absent_or_not_null)
    body: ReviewText | None = None

    @model_validator(mode="after")
    def _rating_cannot_be_cleared(self) -> ReviewUpdate:
        if "rating" in self.model_fields_set and self.rating is None:
            raise ValueError("rating is required and cannot be cleared with null")
        return self


class Review(BaseModel):
    id: UUID
    book_id: UUID
    user_id: UUID = Field(description="The author of the review.")
    author_name: str | None = Field(description="The author's display name, if they set one.")
    rating: int
    body: str | None
    created_at: datetime
    updated_at: datetime


class ReviewPage(BaseModel):
    items: list[Review]
    next_cursor: str | None
