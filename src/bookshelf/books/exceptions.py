"""Errors of the books feature."""

from __future__ import annotations

from uuid import UUID

from bookshelf.exceptions import (
    Conflict,
    DomainError,
    InvalidRequest,
    NotFound,
    PreconditionFailed,
)


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


class SearchBusy(DomainError):
    """Every search slot of the worker stayed taken for the whole bounded wait (see
    ``books.dependencies.search_slot``). Answered fast, so a burst of searches cannot queue
    without end; the same problem type as a sign-in refused for want of a hashing slot."""

    status = 503
    title = "Busy"
    slug = "busy"

    def __init__(self) -> None:
        super().__init__(
            "Too many searches are in progress; retry shortly.",
            headers={"Retry-After": "1"},
        )


class InvalidIsbn(ValueError):
    """The text is not a valid ISBN-10 or ISBN-13."""


# --- bulk import (books.bulk): per-line problems, and the request's own --------------------

FieldErrors = list[dict[str, object]]


class MalformedImportLine(DomainError):
    """A line of an import is not JSON at all."""

    title = "Malformed JSON"
    slug = "malformed-json"

    def __init__(self, line: int) -> None:
        super().__init__(f"Line {line} is not valid JSON.")


class InvalidImportLine(InvalidRequest):
    """A line of an import is JSON but not a valid new book; ``errors`` names the fields."""

    title = "Invalid book"
    slug = "validation-error"

    def __init__(self, line: int, errors: FieldErrors) -> None:
        super().__init__(f"Line {line}: {len(errors)} field(s) failed validation; see errors.")
        self.errors = errors


class IsbnRepeatedInImport(Conflict):
    """Two lines of one import have the same ISBN: the first is imported, later ones not."""

    title = "ISBN already in the catalog"
    slug = "isbn-conflict"

    def __init__(self, isbn: str, first_line: int) -> None:
        super().__init__(f"Line {first_line} of this import already has the ISBN {isbn}.")
        self.isbn = isbn


class ImportRejected(InvalidRequest):
    """An all-or-nothing import with bad lines: nothing was written. ``errors`` has one entry
    per problem, located at ``["body", line, field…]``."""

    title = "Import rejected"
    slug = "import-rejected"

    def __init__(self, errors: FieldErrors, bad_lines: int) -> None:
        super().__init__(
            f"{bad_lines} line(s) cannot be imported, so nothing was (mode=all-or-nothing); "
            "see errors."
        )
        self.errors = errors


class TooManyImportLines(DomainError):
    status = 413
    title = "Too many lines"
    slug = "too-many-lines"

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"An import may hold at most {limit} books (lines); split the file.",
        )
