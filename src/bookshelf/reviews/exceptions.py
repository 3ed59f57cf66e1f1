"""Errors of the reviews feature."""

from __future__ import annotations

from uuid import UUID

from bookshelf.exceptions import Conflict, NotFound


class ReviewNotFound(NotFound):
    """Also what a non-author gets for someone else's review: existence is not disclosed."""

    title = "Review not found"
    slug = "review-not-found"

    def __init__(self, review_id: UUID | str) -> None:
        super().__init__(f"No review of yours (or of this book) has the id {str(review_id)!r}.")


class ReviewAlreadyExists(Conflict):
    title = "Already reviewed"
    slug = "review-exists"

    def __init__(self) -> None:
        super().__init__("You have already reviewed this book; change that review instead.")
