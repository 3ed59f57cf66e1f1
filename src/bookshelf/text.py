"""Annotated string types for request input: normalised, trimmed, length-checked, storable.

PostgreSQL rejects NUL characters and UTF-8 cannot encode lone surrogates, so both are refused at
the boundary as a 422 instead of failing later as a database error. Control characters have no
place in short, single-line fields.

Text is stored and compared in Unicode Normalization Form C: "Zürich" typed with a precomposed ü
and with u + U+0308 (combining diaeresis) is the same text to a reader, so it must be the same
to a search, a filter and a sort. NFC, not NFKC: NFC only merges canonically equivalent
sequences, which look identical, so normalising never changes what a user sees; NFKC would also
rewrite compatibility characters (the "ﬁ" ligature, "²", "Ⅻ", full-width letters) that a title
or a name may carry on purpose, and it is lossy. Every string of these types is normalised on
the way in, and the query parameters that search or filter use the same types, so both sides
agree. (Emails are NFC through email-validator; passwords are hashed exactly as typed, so
existing passwords keep working.)
"""

from __future__ import annotations

import re
import unicodedata
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field, StringConstraints

# C0 and C1 control characters (Unicode category Cc) and surrogates (Cs).
_UNSTORABLE_OR_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
# The same, but tab, line feed and carriage return are fine in multi-line text.
_UNSTORABLE_IN_MULTILINE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")

# The same rules as OpenAPI patterns (ECMA-262 syntax; generated JSON never holds a lone
# surrogate, so the patterns leave those out): single-line text has a character that is not
# white space, since it is trimmed before its length is checked.
_SINGLE_LINE_PATTERN = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
_MULTILINE_PATTERN = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*$"


def normalise(text: str) -> str:
    """The NFC form of ``text`` (see the module docstring for why NFC)."""
    return unicodedata.normalize("NFC", text)


def _normalise_input(value: Any) -> Any:
    # Before the length checks: NFC can change the length (mostly shorter; a few characters
    # decompose), and the stored form is what must fit the column.
    return normalise(value) if isinstance(value, str) else value


def _check_single_line(value: str) -> str:
    if _UNSTORABLE_OR_CONTROL.search(value):
        raise ValueError("must not contain control characters or unpaired surrogates")
    return value


def _check_multiline(value: str) -> str:
    if _UNSTORABLE_IN_MULTILINE.search(value):
        raise ValueError("must not contain control characters other than tab and newlines")
    return value


# Each alias lists the same validators: normalise first (the last BeforeValidator runs first),
# then trim and check the length, then refuse what cannot be stored.
ShortText = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=300),
    Field(json_schema_extra={"pattern": _SINGLE_LINE_PATTERN}),
    AfterValidator(_check_single_line),
    BeforeValidator(_normalise_input),
]
Name = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=200),
    Field(json_schema_extra={"pattern": _SINGLE_LINE_PATTERN}),
    AfterValidator(_check_single_line),
    BeforeValidator(_normalise_input),
]
DisplayName = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=100),
    Field(json_schema_extra={"pattern": _SINGLE_LINE_PATTERN}),
    AfterValidator(_check_single_line),
    BeforeValidator(_normalise_input),
]
Tag = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=100),
    Field(json_schema_extra={"pattern": _SINGLE_LINE_PATTERN}),
    AfterValidator(_check_single_line),
    BeforeValidator(_normalise_input),
]
LongText = Annotated[
    str,
    StringConstraints(max_length=10_000),
    Field(json_schema_extra={"pattern": _MULTILINE_PATTERN}),
    AfterValidator(_check_multiline),
    BeforeValidator(_normalise_input),
]
