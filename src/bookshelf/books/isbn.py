"""ISBN-10 / ISBN-13 parsing: checksum verification and conversion to the ISBN-13 we store."""

from __future__ import annotations

from bookshelf.books.exceptions import InvalidIsbn

_SEPARATORS = str.maketrans("", "", " -")


def _isbn10_is_valid(digits: str) -> bool:
    if len(digits) != 10 or not digits[:9].isdigit():
        return False
    if not (digits[9].isdigit() or digits[9] == "X"):
        return False
    values = [int(c) for c in digits[:9]] + [10 if digits[9] == "X" else int(digits[9])]
    return sum((10 - index) * value for index, value in enumerate(values)) % 11 == 0


def isbn13_check_digit(first_twelve: str) -> str:
    total = sum(int(c) * (3 if index % 2 else 1) for index, c in enumerate(first_twelve))
    return str((10 - total % 10) % 10)


def _isbn13_is_valid(digits: str) -> bool:
    return (
        len(digits) == 13
        and digits.isdigit()
        and digits.isascii()
        and digits[:3] in ("978", "979")
        and isbn13_check_digit(digits[:12]) == digits[12]
    )


def normalize_isbn(text: str) -> str:
    """Return the ISBN-13 for an ISBN-10 or ISBN-13 written with or without hyphens or spaces.

    Raises ``InvalidIsbn`` if the text is neither, or its check digit is wrong.
    """
    compact = text.strip().translate(_SEPARATORS).upper()
    if not compact.isascii():
        raise InvalidIsbn("an ISBN has only digits, hyphens and spaces (and X as an ISBN-10 check)")
    if len(compact) == 10:
        if not _isbn10_is_valid(compact):
            raise InvalidIsbn("not a valid ISBN-10 (wrong check digit or characters)")
        core = "978" + compact[:9]
        return core + isbn13_check_digit(core)
    if len(compact) == 13:
        if not _isbn13_is_valid(compact):
            raise InvalidIsbn("not a valid ISBN-13 (wrong prefix, check digit or characters)")
        return compact
    raise InvalidIsbn("an ISBN has 10 or 13 digits")
