"""Annotated string types for request input: trimmed, length-checked, and storable everywhere.

PostgreSQL rejects NUL characters and UTF-8 cannot encode lone surrogates, so both are refused at
the boundary as a 422 instead of failing later as a database error. Control characters have no
place in short, single-line fields.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, StringConstraints

# C0 and C1 control characters (Unicode category Cc) and surrogates (Cs).
_UNSTORABLE_OR_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
# The same, but tab, line feed and carriage return are fine in multi-line text.
_UNSTORABLE_IN_MULTILINE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")


def _check_single_line(value: str) -> str:
    if _UNSTORABLE_OR_CONTROL.search(value):
        raise ValueError("must not contain control characters or unpaired surrogates")
    return value


def _check_multiline(value: str) -> str:
    if _UNSTORABLE_IN_MULTILINE.search(value):
        raise ValueError("must not contain control characters other than tab and newlines")
    return value


ShortText = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=300),
    AfterValidator(_check_single_line),
]
Name = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=200),
    AfterValidator(_check_single_line),
]
DisplayName = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=100),
    AfterValidator(_check_single_line),
]
Tag = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=100),
    AfterValidator(_check_single_line),
]
LongText = Annotated[
    str,
    StringConstraints(max_length=10_000),
    AfterValidator(_check_multiline),
]
