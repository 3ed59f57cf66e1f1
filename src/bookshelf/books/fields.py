"""Validation of book fields that carry business rules: publication dates and languages."""

from __future__ import annotations

import calendar
import re
from datetime import UTC, date, datetime

from bookshelf.books.exceptions import InvalidIsbn
from bookshelf.books.isbn import normalize_isbn
from bookshelf.books.languages import ISO_639_1_CODES
from bookshelf.text import normalise

# The shape of a partial date, also published as the OpenAPI ``pattern`` (so ASCII digits only,
# and no year 0000); whether the day exists in that month is checked when it is parsed.
PARTIAL_DATE_PATTERN = (
    r"^(000[1-9]|00[1-9][0-9]|0[1-9][0-9]{2}|[1-9][0-9]{3})"
    r"(-(0[1-9]|1[0-2])(-(0[1-9]|[12][0-9]|3[01]))?)?$"
)
# The published pattern is the parser's: a shape it refuses (month 13, year 0000) is refused
# for its shape; only what it allows can still fail the calendar (30 February).
_PARTIAL_DATE = re.compile(PARTIAL_DATE_PATTERN)
# ISBN-10 (X may be its check digit) or ISBN-13 (978/979), with hyphens and spaces anywhere;
# the check digit is verified by normalize_isbn.
ISBN_PATTERN = r"^[- ]*((?:[0-9][- ]*){9}[0-9Xx]|97[89](?:[- ]*[0-9]){10})[- ]*$"


def parse_partial_date(text: str) -> tuple[date, date]:
    """Parse ``YYYY``, ``YYYY-MM`` or ``YYYY-MM-DD`` into the first and last day it covers."""
    match = _PARTIAL_DATE.fullmatch(text)
    if match is None:
        raise ValueError("must be YYYY, YYYY-MM or YYYY-MM-DD")
    year = int(match.group(1))
    month = int(match.group(3)) if match.group(3) else None
    day = int(match.group(5)) if match.group(5) else None
    try:
        if month is None:
            return date(year, 1, 1), date(year, 12, 31)
        if day is None:
            last_day = calendar.monthrange(year, month)[1]
            return date(year, month, 1), date(year, month, last_day)
        exact = date(year, month, day)
    except ValueError:
        raise ValueError("is not a real calendar date") from None
    return exact, exact


def check_published_date(text: str) -> str:
    """Validate a publication date as given; it may not start after today (UTC)."""
    first_day, _ = parse_partial_date(text)
    if first_day > datetime.now(UTC).date():
        raise ValueError("must not be in the future")
    return text


def check_language(text: str) -> str:
    code = text.strip().lower()
    if code not in ISO_639_1_CODES:
        raise ValueError("must be an ISO 639-1 language code, such as 'en' or 'fr'")
    return code


def check_isbn(text: str) -> str:
    try:
        return normalize_isbn(text)
    except InvalidIsbn as error:
        raise ValueError(str(error)) from None


def check_search_text(text: str) -> str:
    """A search needs at least one letter or digit; punctuation alone matches nothing useful.
    It is normalised like the stored text it is matched against (NFC, see bookshelf.text)."""
    text = normalise(text).strip()
    if not any(character.isalnum() for character in text):
        raise ValueError("must contain at least one letter or digit")
    if "\x00" in text or any("\ud800" <= character <= "\udfff" for character in text):
        raise ValueError("must not contain NUL characters or unpaired surrogates")
    return text
