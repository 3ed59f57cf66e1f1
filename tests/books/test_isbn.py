"""normalize_isbn: checksums, ISBN-10 to ISBN-13 conversion, separators, and what is refused."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bookshelf.books.exceptions import InvalidIsbn
from bookshelf.books.isbn import isbn13_check_digit, normalize_isbn

DIGITS = "0123456789"
# Other scripts' decimal digits: str.isdigit() is True for them, but an ISBN is ASCII.
ARABIC_INDIC_ZERO = 0x0660
EXTENDED_ARABIC_INDIC_ZERO = 0x06F0
DEVANAGARI_ZERO = 0x0966
BENGALI_ZERO = 0x09E6
FULLWIDTH_ZERO = 0xFF10
NON_ASCII_ZEROS = (
    ARABIC_INDIC_ZERO,
    EXTENDED_ARABIC_INDIC_ZERO,
    DEVANAGARI_ZERO,
    BENGALI_ZERO,
    FULLWIDTH_ZERO,
)


def in_script(text: str, zero: int) -> str:
    """``text`` with its ASCII digits written in the script whose zero is ``zero``."""
    return "".join(chr(zero + int(c)) if c in DIGITS else c for c in text)


def isbn10_check(first_nine: str) -> str:
    """The ISBN-10 check character, computed here independently of the code under test."""
    total = sum((10 - index) * int(digit) for index, digit in enumerate(first_nine))
    value = (11 - total % 11) % 11
    return "X" if value == 10 else str(value)


def isbn13_check(first_twelve: str) -> str:
    weights = (1, 3) * 6
    total = sum(int(digit) * weight for digit, weight in zip(first_twelve, weights, strict=True))
    return str((10 - total % 10) % 10)


nine_digits = st.text(alphabet=DIGITS, min_size=9, max_size=9)
valid_isbn10 = nine_digits.map(lambda body: body + isbn10_check(body))
valid_isbn13 = st.tuples(st.sampled_from(["978", "979"]), nine_digits).map(
    lambda parts: parts[0] + parts[1] + isbn13_check(parts[0] + parts[1])
)


@st.composite
def with_separators(draw: st.DrawFn, compact: str) -> str:
    """``compact`` with hyphens or spaces (or nothing) inserted before/after each character."""
    pieces = []
    for character in compact:
        pieces.append(draw(st.sampled_from(["", "", "-", " ", "--", " - "])))
        pieces.append(character)
    pieces.append(draw(st.sampled_from(["", "-", " "])))
    return "".join(pieces)


@st.composite
def one_character_changed(draw: st.DrawFn, isbn: st.SearchStrategy[str]) -> tuple[str, str]:
    original = draw(isbn)
    position = draw(st.integers(min_value=0, max_value=len(original) - 1))
    allowed = DIGITS + ("X" if len(original) == 10 and position == 9 else "")
    replacement = draw(st.sampled_from([c for c in allowed if c != original[position]]))
    return original, original[:position] + replacement + original[position + 1 :]


# Known real books.


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0-306-40615-2", "9780306406157"),
        ("0306406152", "9780306406157"),
        ("978-0-306-40615-7", "9780306406157"),
        ("9780306406157", "9780306406157"),
        ("080442957X", "9780804429573"),
        ("080442957x", "9780804429573"),
        ("0 8044 2957 X", "9780804429573"),
        ("  978 0 306 40615 7  ", "9780306406157"),
        ("979-10-90636-07-1", "9791090636071"),
    ],
)
def test_known_isbns_normalise_to_their_isbn13(text: str, expected: str) -> None:
    assert normalize_isbn(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "---",
        "030640615",  # 9 digits
        "03064061522",  # 11 digits
        "978030640615",  # 12 digits
        "97803064061570",  # 14 digits
        "0-306-40615-3",  # wrong ISBN-10 check digit
        "978-0-306-40615-8",  # wrong ISBN-13 check digit
        "X306406152",  # X only as the last character of an ISBN-10
        "03064X6152",
        "978030640615X",  # no X in an ISBN-13
        "97803064A6157",  # letters
        "ISBN9780306406157",
        "978.0.306.40615.7",  # only hyphens and spaces are separators
        "978_0306406157",
        "٩٧٨٠٣٠٦٤٠٦١٥٧",  # Arabic-Indic digits of 9780306406157
        "٠٣٠٦٤٠٦١٥٢",  # Arabic-Indic digits of 0306406152
        in_script("9780306406157", FULLWIDTH_ZERO),
        in_script("0-306-40615-2", DEVANAGARI_ZERO),
        in_script("978030640615", ARABIC_INDIC_ZERO) + "7",  # one non-ASCII digit is enough
        "⁰³⁰⁶⁴⁰⁶¹⁵²",  # superscript digits (str.isdigit() says True)
        "9770306406158",  # 977 prefix (ISSN range) with a correct EAN check digit
        "9800306406152",  # 980 prefix with a correct EAN check digit
    ],
)
def test_invalid_text_is_refused(text: str) -> None:
    with pytest.raises(InvalidIsbn):
        normalize_isbn(text)


def test_invalid_isbn_is_a_value_error() -> None:
    assert issubclass(InvalidIsbn, ValueError)


def test_isbn13_check_digit_of_known_book() -> None:
    assert isbn13_check_digit("978030640615") == "7"
    assert isbn13_check_digit("978080442957") == "3"


def test_977_prefix_check_digit_is_correct_so_only_the_prefix_is_wrong() -> None:
    # Guards the parametrized case above: the 977 example is refused for its prefix alone.
    assert isbn13_check("977030640615") == "8"
    assert isbn13_check("980030640615") == "2"


# Properties.


@given(valid_isbn13)
def test_valid_isbn13_normalises_to_itself(isbn: str) -> None:
    assert normalize_isbn(isbn) == isbn


@given(valid_isbn13.flatmap(lambda isbn: st.tuples(st.just(isbn), with_separators(isbn))))
def test_valid_isbn13_with_separators_normalises_to_itself(pair: tuple[str, str]) -> None:
    isbn, written = pair
    assert normalize_isbn(written) == isbn


@given(valid_isbn10)
def test_valid_isbn10_converts_to_978_isbn13(isbn10: str) -> None:
    core = "978" + isbn10[:9]
    assert normalize_isbn(isbn10) == core + isbn13_check(core)


@given(valid_isbn10.flatmap(lambda isbn: st.tuples(st.just(isbn), with_separators(isbn))))
def test_valid_isbn10_with_separators_converts_like_compact(pair: tuple[str, str]) -> None:
    isbn10, written = pair
    assert normalize_isbn(written) == normalize_isbn(isbn10)


def _with_x_check(first_eight: str) -> str:
    """Append the ninth digit that makes the ISBN-10 check character X (if one exists)."""
    partial = sum((10 - index) * int(digit) for index, digit in enumerate(first_eight))
    # Need (partial + 2 * d) % 11 == 1; 6 is the inverse of 2 modulo 11.
    return first_eight + str((1 - partial) * 6 % 11)


@given(
    st.text(alphabet=DIGITS, min_size=8, max_size=8)
    .map(_with_x_check)
    .filter(lambda body: len(body) == 9)
)
def test_isbn10_check_x_accepted_in_either_case(body: str) -> None:
    assert isbn10_check(body) == "X"
    expected = "978" + body + isbn13_check("978" + body)
    assert normalize_isbn(body + "X") == expected
    assert normalize_isbn(body + "x") == expected


@given(valid_isbn10)
def test_isbn10_result_is_a_valid_isbn13(isbn10: str) -> None:
    isbn13 = normalize_isbn(isbn10)
    assert normalize_isbn(isbn13) == isbn13


@given(one_character_changed(valid_isbn13))
def test_changing_one_digit_of_isbn13_makes_it_invalid(pair: tuple[str, str]) -> None:
    original, changed = pair
    assert original != changed
    with pytest.raises(InvalidIsbn):
        normalize_isbn(changed)


@given(one_character_changed(valid_isbn10))
def test_changing_one_character_of_isbn10_makes_it_invalid(pair: tuple[str, str]) -> None:
    original, changed = pair
    assert original != changed
    with pytest.raises(InvalidIsbn):
        normalize_isbn(changed)


@given(st.text(alphabet=DIGITS, min_size=0, max_size=20).filter(lambda s: len(s) not in (10, 13)))
def test_digit_strings_of_other_lengths_are_invalid(digits: str) -> None:
    with pytest.raises(InvalidIsbn):
        normalize_isbn(digits)


@given(
    valid_isbn13,
    st.integers(min_value=0, max_value=12),
    st.characters(exclude_characters=DIGITS + " -", codec="utf-8"),
)
def test_a_foreign_character_in_place_of_a_digit_makes_it_invalid(
    isbn: str, position: int, character: str
) -> None:
    changed = isbn[:position] + character + isbn[position + 1 :]
    with pytest.raises(InvalidIsbn):
        normalize_isbn(changed)


@given(st.one_of(valid_isbn10, valid_isbn13), st.sampled_from(NON_ASCII_ZEROS))
def test_isbn_in_non_ascii_digits_is_invalid(isbn: str, zero: int) -> None:
    written = in_script(isbn, zero)
    assert written.replace("X", "").isdigit()
    with pytest.raises(InvalidIsbn):
        normalize_isbn(written)
