"""Errors of the books feature."""

from __future__ import annotations

from uuid import UUID

from bookshelf.exceptions import Conflict, DomainError, NotFound, PreconditionFailed


class BookNotFound(NotFound):
    title = "Book not found"
    slug = "book-not-found"

    def __init__(self, book_id: UUID | str) -> None:
        super().__init__(f"No book has the id {str(book_id)!r}.")


class IsbnAlreadyExists(Conflict):
    title = "ISBN already in the catalog"
    slug = "isbn-conflict"

    def __init__(self, isbn: str) -> None:
        super().__init__(f"Another book already has the ISBN {isbn}.")
        self.isbn = isbn


class BookVersionMismatch(PreconditionFailed):
    title = "Book has changed"
    slug = "version-mismatch"

    def __init__(self) -> None:
        super().__init__(
            "The book was changed since the version named in If-Match; "
            "fetch it again and re-apply your change."
        )


class SearchTimedOut(DomainError):
    """A search ran past the search statement timeout: the server is busy or the search is too
    broad. Worth retrying, so 503 with Retry-After rather than a 4xx."""

    status = 503
    title = "Search timed out"
    slug = "search-timeout"

    def __init__(self) -> None:
        super().__init__(
            "The search took too long and was stopped; retry shortly, or add words or filters.",
            headers={"Retry-After": "5"},
        )


class InvalidIsbn(ValueError):
    """The text is not a valid ISBN-10 or ISBN-13."""
