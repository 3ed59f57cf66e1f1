"""Pydantic models at the boundary of the books API."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, WithJsonSchema, model_validator

from bookshelf.books.fields import (
    ISBN_PATTERN,
    PARTIAL_DATE_PATTERN,
    check_isbn,
    check_language,
    check_published_date,
    check_search_text,
    parse_partial_date,
)
from bookshelf.books.languages import ISO_639_1_CODES
from bookshelf.inputs import WholeNumber, absent_or_not_null
from bookshelf.problems import Problem
from bookshelf.text import LongText, Name, ShortText, Tag

# Patterns are published in the OpenAPI schema (json_schema_extra) so clients and fuzzers know the
# shape; the validators enforce it, with messages that say what is wrong in words.
Isbn = Annotated[
    str,
    Field(
        max_length=40,
        json_schema_extra={"pattern": ISBN_PATTERN},
        description="ISBN-10 or ISBN-13, hyphens and spaces allowed; stored as ISBN-13.",
        examples=["978-0-261-10221-7"],
    ),
    AfterValidator(check_isbn),
]
PublishedDate = Annotated[
    str,
    Field(
        max_length=10,
        json_schema_extra={"pattern": PARTIAL_DATE_PATTERN},
        description="YYYY, YYYY-MM or YYYY-MM-DD; returned as given; not in the future.",
        examples=["1937-09-21"],
    ),
    AfterValidator(check_published_date),
]
# The codes are one named schema (``LanguageCode``, added by ``main``), not repeated inline
# wherever a language is taken: a generated client gets one enum for all of them.
LANGUAGE_CODE_SCHEMA: dict[str, Any] = {
    "type": "string",
    "description": "ISO 639-1 code.",
    # Upper case is accepted too (and stored lower-cased); the schema names the canonical
    # codes, so a generated value is always one the API accepts.
    "enum": sorted(ISO_639_1_CODES),
    "examples": ["en"],
}
Language = Annotated[
    str,
    Field(max_length=3),
    WithJsonSchema({"$ref": "#/components/schemas/LanguageCode"}),
    AfterValidator(check_language),
]
PageCount = Annotated[int, Field(strict=True, ge=1, le=100_000), WholeNumber]
Authors = Annotated[list[Name], Field(min_length=1, max_length=20, examples=[["J. R. R. Tolkien"]])]
Subjects = Annotated[list[Tag], Field(max_length=20, examples=[["fantasy", "classics"]])]


class _Input(BaseModel):
    # Unknown fields are errors: a typo must not be silently dropped.
    model_config = ConfigDict(extra="forbid")


class BookCreate(_Input):
    """A new book."""

    title: ShortText = Field(examples=["The Hobbit"])
    subtitle: ShortText | None = None
    authors: Authors
    isbn: Isbn | None = None
    publisher: Name | None = None
    published_date: PublishedDate | None = None
    page_count: PageCount | None = None
    language: Language | None = None
    subjects: Subjects = Field(default_factory=list)
    description: LongText | None = None


# Fields a merge patch may not set to null: the book cannot exist without them.
_REQUIRED_FIELDS = ("title", "authors")


class BookUpdate(_Input):
    """A JSON merge patch (RFC 7396): absent fields are unchanged, ``null`` clears a field."""

    title: ShortText | None = Field(None, json_schema_extra=absent_or_not_null)
    subtitle: ShortText | None = None
    authors: Authors | None = Field(None, json_schema_extra=absent_or_not_null)
    isbn: Isbn | None = None
    publisher: Name | None = None
    published_date: PublishedDate | None = None
    page_count: PageCount | None = None
    language: Language | None = None
    subjects: Subjects | None = None
    description: LongText | None = None

    @model_validator(mode="after")
    def _required_fields_are_not_cleared(self) -> BookUpdate:
        for name in _REQUIRED_FIELDS:
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} is required and cannot be cleared with null")
        return self

    def changes(self) -> dict[str, Any]:
        """The fields the patch sets, with ``subjects: null`` meaning an empty list."""
        changes = self.model_dump(exclude_unset=True)
        if "subjects" in changes and changes["subjects"] is None:
            changes["subjects"] = []
        return changes


class Book(BaseModel):
    """A book in the catalog."""

    id: UUID
    isbn: str | None = Field(description="ISBN-13.")
    title: str
    subtitle: str | None
    authors: list[str]
    publisher: str | None
    published_date: str | None
    page_count: int | None
    language: str | None
    subjects: list[str]
    description: str | None
    version: int = Field(
        description="Increases on every change (reviews included); the ETag is this, quoted."
    )
    created_at: datetime
    updated_at: datetime
    created_by: UUID | None = Field(description="The editor who added the book.")
    updated_by: UUID | None = Field(description="The editor who last changed the book.")
    rating_count: int = Field(description="Number of reviews.")
    rating_average: float | None = Field(description="Mean review rating (1-5), 2 decimals.")


class BookPage(BaseModel):
    """One page of books, and the cursor of the next page (null on the last page)."""

    items: list[Book]
    next_cursor: str | None


class BookSort(StrEnum):
    TITLE = "title"
    TITLE_DESC = "-title"
    PUBLISHED_DATE = "published_date"
    PUBLISHED_DATE_DESC = "-published_date"
    CREATED_AT = "created_at"
    CREATED_AT_DESC = "-created_at"
    RELEVANCE = "relevance"


def _check_partial_date(text: str) -> str:
    parse_partial_date(text)
    return text


DateBound = Annotated[
    str,
    Field(
        max_length=10,
        description="YYYY, YYYY-MM or YYYY-MM-DD.",
        json_schema_extra={"pattern": PARTIAL_DATE_PATTERN},
    ),
    AfterValidator(_check_partial_date),
]
SearchText = Annotated[
    str,
    Field(
        max_length=200,
        # At least one letter or digit ([^\W_]: a word character other than "_"; Unicode-aware
        # in Python and most engines, ASCII-only in plain ECMA-262), and no NUL.
        json_schema_extra={"pattern": r"^[^\x00]*[^\W_][^\x00]*$"},
    ),
    AfterValidator(check_search_text),
]


class BookFilters(BaseModel):
    """The filters of the book list, shared by ``GET /books`` and ``GET /books/export``.
    Unknown parameters are rejected, like unknown fields."""

    model_config = ConfigDict(extra="forbid")

    q: SearchText | None = Field(
        None,
        description="Full-text search over title, subtitle and authors (case-insensitive).",
    )
    author: Name | None = Field(None, description="Books by this author (case-insensitive).")
    subject: Tag | None = Field(None, description="Books with this subject (case-insensitive).")
    language: Language | None = None
    isbn: Isbn | None = Field(None, description="ISBN-10 or ISBN-13 of the book.")
    published_from: DateBound | None = Field(
        None, description="Published on or after the start of this date."
    )
    published_to: DateBound | None = Field(
        None, description="Published on or before the end of this date."
    )


class BookListQuery(BookFilters):
    """Query parameters of ``GET /books``: the filters, and the page wanted."""

    limit: int = Field(20, ge=1, le=100, description="Page size.")
    cursor: str | None = Field(
        None, max_length=1000, description="The `next_cursor` of the previous page."
    )
    sort: BookSort | None = Field(
        None,
        description="Sort order; `-` means descending. Default: `relevance` when `q` is given "
        "(only allowed then), otherwise `-created_at`.",
    )

    @model_validator(mode="after")
    def _relevance_needs_a_search(self) -> BookListQuery:
        if self.sort is BookSort.RELEVANCE and self.q is None:
            raise ValueError("sort=relevance needs a search text in q")
        return self

    @property
    def effective_sort(self) -> BookSort:
        if self.sort is not None:
            return self.sort
        return BookSort.RELEVANCE if self.q is not None else BookSort.CREATED_AT_DESC


class ImportMode(StrEnum):
    PARTIAL = "partial"
    ALL_OR_NOTHING = "all-or-nothing"


class ImportLineResult(BaseModel):
    """What became of one line of an import: ``created`` (with the new book's ``id``) or
    ``error`` (with a ``problem``: ``validation-error``, listing at most five field errors,
    ``malformed-json``, ``isbn-conflict``, or ``line-too-long`` past 256 KiB)."""

    line: int = Field(description="The line's number in the body, from 1 (blank lines count).")
    status: Literal["created", "error"]
    id: UUID | None = Field(None, description="The new book's id (`created`).")
    problem: Problem | None = Field(None, description="Why the line was not imported (`error`).")


class ImportReport(BaseModel):
    """One result per non-blank line of the import, in line order."""

    created: int = Field(description="How many books were added.")
    failed: int = Field(description="How many lines were not imported.")
    results: list[ImportLineResult]
