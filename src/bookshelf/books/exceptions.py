"""Errors of the books feature."""

from __future__ import annotations

from uuid import UUID

from bookshelf.exceptions import (
    Busy,
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


class SearchBusy(Busy):
    """Every search slot of the worker stayed taken for the whole bounded wait (see
    ``books.dependencies.search_slot``). Answered fast, so a burst of searches cannot queue
    without end; the same problem type as a sign-in refused for want of a hashing slot."""

    def __init__(self) -> None:
        super().__init__("Too many searches are in progress; retry shortly.", retry_after_seconds=1)


class ImportBusy(Busy):
    """Every import slot of the worker stayed taken for the whole bounded wait (see
    ``books.dependencies.import_slot``)."""

    def __init__(self) -> None:
        super().__init__("Too many imports are in progress; retry shortly.", retry_after_seconds=5)


class ExportBusy(Busy):
    """Every export slot of the worker is taken: refused at once, since an export holds its
    slot for as long as it streams."""

    def __init__(self) -> None:
        super().__init__("Too many exports are in progress; retry later.", retry_after_seconds=10)


class TooManyExports(DomainError):
    """The client's address already streams as many exports as it may at once."""

    status = 429
    title = "Too many exports"
    slug = "too-many-exports"

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"At most {limit} export(s) may stream at once from one address; "
            "retry when one has ended.",
            headers={"Retry-After": "10"},
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
    """A line of an import is JSON but not a valid new book; ``errors`` names the fields (the
    first of them, when there are more than ``errors`` holds: ``count`` says how many)."""

    title = "Invalid book"
    slug = "validation-error"

    def __init__(self, line: int, errors: FieldErrors, *, count: int) -> None:
        listed = "see errors" if count == len(errors) else f"the first {len(errors)} in errors"
        super().__init__(f"Line {line}: {count} field(s) failed validation; {listed}.")
        self.errors = errors


class ImportLineTooLong(DomainError):
    """A line of an import is longer than any valid book: refused without being parsed."""

    status = 413
    title = "Line too long"
    slug = "line-too-long"

    def __init__(self, line: int, limit: int) -> None:
        super().__init__(f"Line {line} is longer than {limit} bytes, more than any book needs.")


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
