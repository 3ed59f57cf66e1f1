"""Partial publication dates (YYYY, YYYY-MM, YYYY-MM-DD): parsing, the days each covers, and the
first day, which is the book's sort key and the bound of the published_from/_to filters."""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bookshelf.books.fields import PARTIAL_DATE_PATTERN, parse_partial_date

DAYS = st.dates(min_value=date(1, 1, 1), max_value=date(9999, 12, 31))
PRECISIONS = st.sampled_from(["year", "month", "day"])


def shown(day: date, precision: str) -> str:
    """``day`` written at a precision, as a client would send it."""
    text = f"{day.year:04d}-{day.month:02d}-{day.day:02d}"
    return {"year": text[:4], "month": text[:7], "day": text}[precision]


@pytest.mark.parametrize(
    ("text", "first", "last"),
    [
        ("1969", date(1969, 1, 1), date(1969, 12, 31)),
        ("0001", date(1, 1, 1), date(1, 12, 31)),
        ("1969-03", date(1969, 3, 1), date(1969, 3, 31)),
        ("1969-04", date(1969, 4, 1), date(1969, 4, 30)),
        ("2024-02", date(2024, 2, 1), date(2024, 2, 29)),  # leap year
        ("2023-02", date(2023, 2, 1), date(2023, 2, 28)),
        ("1900-02", date(1900, 2, 1), date(1900, 2, 28)),  # century, not a leap year
        ("2000-02-29", date(2000, 2, 29), date(2000, 2, 29)),
        ("9999-12-31", date(9999, 12, 31), date(9999, 12, 31)),
    ],
)
def test_a_partial_date_covers_its_first_to_last_day(text: str, first: date, last: date) -> None:
    assert parse_partial_date(text) == (first, last)


@pytest.mark.parametrize(
    "text",
    ["", "69", "196", "19690", "1969-3", "1969-003", "1969-03-1", "1969/03", "1969-03-01T00",
     " 1969", "1969 ", "1969-", "1969-03-", "-1969", "+1969", "\u0661\u0669\u0666\u0669",
     "1969-03-01-01", "abcd"],
)  # fmt: skip
def test_a_malformed_partial_date_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="YYYY, YYYY-MM or YYYY-MM-DD"):
        parse_partial_date(text)


@pytest.mark.parametrize(
    "text",
    ["0000", "0000-01", "0000-01-01", "1969-00", "1969-13", "1969-99", "1969-01-00",
     "1969-01-32", "1969-13-01", "\n1969", "1969\n"],
)  # fmt: skip
def test_what_the_published_pattern_refuses_is_refused_for_its_shape(text: str) -> None:
    """Year 0000, month 13 or day 32 never exist: the shape says so, as the pattern does."""
    assert re.fullmatch(PARTIAL_DATE_PATTERN, text) is None
    with pytest.raises(ValueError, match="YYYY, YYYY-MM or YYYY-MM-DD"):
        parse_partial_date(text)


@pytest.mark.parametrize("text", ["1969-04-31", "2023-02-29", "1900-02-29", "1969-02-30"])
def test_a_day_the_calendar_does_not_have_is_refused(text: str) -> None:
    assert re.fullmatch(PARTIAL_DATE_PATTERN, text) is not None
    with pytest.raises(ValueError, match="real calendar date"):
        parse_partial_date(text)


@given(DAYS, PRECISIONS)
def test_a_partial_date_covers_the_day_it_was_written_from(day: date, precision: str) -> None:
    first, last = parse_partial_date(shown(day, precision))

    assert first <= day <= last
    assert (first == last) is (precision == "day")
    assert first.day == 1 or precision == "day"
    assert first.month == 1 or precision != "year"


@given(DAYS)
def test_a_day_lies_within_its_month_which_lies_within_its_year(day: date) -> None:
    day_first, day_last = parse_partial_date(shown(day, "day"))
    month_first, month_last = parse_partial_date(shown(day, "month"))
    year_first, year_last = parse_partial_date(shown(day, "year"))

    assert year_first <= month_first <= day_first == day_last <= month_last <= year_last
    # A month's last day is the day before the next month starts.
    if day.month < 12:
        assert month_last + timedelta(days=1) == date(day.year, day.month + 1, 1)
    else:
        assert month_last == year_last == date(day.year, 12, 31)


@given(DAYS, PRECISIONS, DAYS, PRECISIONS)
def test_the_sort_key_orders_as_the_text_does(
    one: date, one_precision: str, other: date, other_precision: str
) -> None:
    """The first day sorts like the text (a partial date before any longer one it prefixes)."""
    one_text, other_text = shown(one, one_precision), shown(other, other_precision)
    one_key, other_key = parse_partial_date(one_text)[0], parse_partial_date(other_text)[0]

    if one_text < other_text:
        assert one_key <= other_key
    if one_key < other_key:
        assert one_text < other_text


@given(st.text(alphabet="0123456789-", max_size=12) | st.text(max_size=12))
def test_parsing_accepts_exactly_what_the_published_pattern_allows(text: str) -> None:
    """The OpenAPI pattern tells clients the shape; parsing adds only the calendar check."""
    shaped = re.fullmatch(PARTIAL_DATE_PATTERN, text) is not None
    try:
        parse_partial_date(text)
        refusal = None
    except ValueError as error:
        refusal = str(error)

    assert shaped is (refusal is None or "calendar" in refusal)
