"""From the web app's forms to the API's schemas, and back: a form's fields become the values
the schemas validate (the same rules, the same messages), and a validation error becomes a
message beside each field."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from bookshelf.books.schemas import Book
from bookshelf.exceptions import DomainError

# A book's fields as its form shows them, in order (lists are one entry per line).
BOOK_FIELDS = (
    "title",
    "subtitle",
    "authors",
    "isbn",
    "publisher",
    "published_date",
    "page_count",
    "language",
    "subjects",
    "description",
)
_LIST_FIELDS = frozenset({"authors", "subjects"})
FORM_WIDE = "form"  # the key of an error about the form as a whole
_LINES = re.compile(r"[\r\n]+")


def _lines(text: str) -> list[str]:
    return [line.strip() for line in _LINES.split(text) if line.strip()]


def book_values(form: Mapping[str, str]) -> dict[str, Any]:
    """A book form's fields as a merge patch sets them all: a blank optional field is null (it
    clears the value), a list is one entry per line, a page count is a number when it looks
    like one (else the schema says what is wrong)."""
    values: dict[str, Any] = {}
    for name in BOOK_FIELDS:
        text = form.get(name, "")
        if name in _LIST_FIELDS:
            values[name] = _lines(text)
        elif name == "page_count":
            stripped = text.strip()
            values[name] = int(stripped) if stripped.isdigit() else (stripped or None)
        else:
            values[name] = text.strip() or None
    if not values["authors"]:
        values["authors"] = None  # "at least one author", in the schema's words
    return values


def book_form(book: Book) -> dict[str, str]:
    """A book as its form shows it."""
    shown: dict[str, str] = {}
    for name in BOOK_FIELDS:
        value = getattr(book, name)
        if name in _LIST_FIELDS:
            shown[name] = "\n".join(value)
        else:
            shown[name] = "" if value is None else str(value)
    return shown


def _message(text: str) -> str:
    return text.removeprefix("Value error, ")


def field_errors(error: ValidationError) -> dict[str, str]:
    """One message per field (the first), under the field's name; rules across fields under
    ``FORM_WIDE``."""
    errors: dict[str, str] = {}
    for item in error.errors(include_url=False, include_context=False, include_input=False):
        location = [part for part in item["loc"] if isinstance(part, str)]
        errors.setdefault(location[0] if location else FORM_WIDE, _message(item["msg"]))
    return errors


def domain_field_errors(error: DomainError, *, field: str | None = None) -> dict[str, str]:
    """The message of a service's refusal, beside ``field`` (or its own field errors', where
    it has them: a weak password)."""
    listed: list[dict[str, Any]] | None = getattr(error, "errors", None)
    if listed:
        return {
            str(item["loc"][-1]) if item.get("loc") else FORM_WIDE: _message(str(item["msg"]))
            for item in listed
        }
    return {field or FORM_WIDE: error.detail}
