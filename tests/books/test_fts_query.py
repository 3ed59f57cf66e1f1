"""The full-text query built from a client's search text, on both databases: every word of the
text must match, and nothing the client types is read as query syntax."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from sqlalchemy import select

from bookshelf.books.fields import check_search_text
from bookshelf.books.models import books
from bookshelf.books.search import add_text_search, fts5_query, ranked_candidates, text_values
from bookshelf.fastpath.statements import StatementCache

# One quoted FTS5 string: any characters, with a double quote written twice.
QUOTED_WORD = re.compile(r'"((?:[^"]|"")*)"')
SYNTAX = st.sampled_from([*"\"*:^()-+{}.,'\\", "AND", "OR", "NOT", "NEAR", "NEAR(", "title:"])
WORDS = st.sampled_from(["left", "hand", "Darkness", "é", "ß", "0123", " ", "\t", "\n"])
SEARCH_TEXT = st.lists(SYNTAX | WORDS, max_size=12).map("".join) | st.text(
    alphabet=st.characters(blacklist_categories=["Cs"]), max_size=40
)


def quoted_words(query: str) -> list[str]:
    """The words of a built FTS5 query, asserting it holds nothing but quoted strings."""
    words = []
    for part in query.split(" ") if query else []:
        match = QUOTED_WORD.fullmatch(part)
        assert match is not None, f"{part!r} is not one quoted string"
        words.append(match.group(1).replace('""', '"'))
    return words


@pytest.fixture(scope="module")
def fts5() -> Iterator[sqlite3.Connection]:
    """An FTS5 table like the catalog's, to run built queries against."""
    connection = sqlite3.connect(":memory:")
    connection.execute("CREATE VIRTUAL TABLE books_fts USING fts5(title, authors)")
    connection.execute(
        "INSERT INTO books_fts VALUES (?, ?), (?, ?)",
        ("The Left Hand of Darkness", "Ursula K. Le Guin", 'Title: "OR" NEAR(x)', "Anon"),
    )
    yield connection
    connection.close()


# --- SQLite (FTS5) -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "query"),
    [
        ("left hand", '"left" "hand"'),
        ("  left \t hand\n", '"left" "hand"'),
        ('say "hi"', '"say" """hi"""'),
        ('title:"x" OR NEAR(', '"title:""x""" "OR" "NEAR("'),
        ("le-guin *", '"le-guin"'),  # a word of punctuation alone is dropped
        ("^ - ( )", ""),
        ("", ""),
    ],
)
def test_each_word_becomes_one_quoted_string(text: str, query: str) -> None:
    assert fts5_query(text) == query


@pytest.mark.parametrize(
    ("text", "rows"),
    [
        ("left darkness", 1),
        ("LEFT", 1),
        ("left light", 0),  # every word must match
        ("OR", 1),  # an operator is a word like any other
        ('title: "or" near(x)', 1),
        ("left OR nothing", 0),
        ("NEAR(left hand)", 0),
        ("dark*", 0),  # no prefix queries
    ],
)
def test_a_built_query_matches_books_with_every_word(
    fts5: sqlite3.Connection, text: str, rows: int
) -> None:
    (count,) = fts5.execute(
        "SELECT count(*) FROM books_fts WHERE books_fts MATCH ?", (fts5_query(text),)
    ).fetchone()

    assert count == rows


@given(SEARCH_TEXT)
def test_a_built_query_holds_only_the_clients_words(text: str) -> None:
    words = quoted_words(fts5_query(text))

    assert words == [word for word in text.split() if any(c.isalnum() for c in word)]


def accepted(text: str) -> str:
    """``text`` as the API validates a search (``q``) before it reaches the query builder."""
    try:
        return check_search_text(text)
    except ValueError:
        assume(False)
        raise


@given(SEARCH_TEXT.map(accepted))
def test_fts5_accepts_the_query_built_from_any_accepted_search(text: str) -> None:
    # Not the module fixture: hypothesis runs this many times in one test.
    connection = sqlite3.connect(":memory:")
    try:
        connection.execute("CREATE VIRTUAL TABLE books_fts USING fts5(title)")
        connection.execute("INSERT INTO books_fts VALUES ('a title')")
        query = fts5_query(text)
        if query:
            connection.execute("SELECT rowid FROM books_fts WHERE books_fts MATCH ?", (query,))
    finally:
        connection.close()


def test_the_sqlite_search_binds_the_built_query() -> None:
    values = text_values('x" OR "y', dialect="sqlite", cap=5)
    statements = StatementCache("sqlite")
    bound = statements.bind(add_text_search(select(books.c.id), dialect="sqlite"), values)
    ranked = statements.bind(select(ranked_candidates([], dialect="sqlite")), values)

    assert "books_fts MATCH ?" in bound.sql
    assert bound.arguments == ('"x""" "OR" """y"',)
    # The candidates are ranked by bm25 on the same bound query.
    assert "bm25(books_fts)" in ranked.sql
    assert "books_fts MATCH ?" in ranked.sql
    assert ranked.arguments[:2] == ('"x""" "OR" """y"', 5)  # then SQLite's OFFSET 0


# --- PostgreSQL ----------------------------------------------------------------------------------


@given(SEARCH_TEXT)
def test_the_postgresql_search_passes_the_text_as_a_parameter_of_plainto_tsquery(
    text: str,
) -> None:
    """plainto_tsquery reads no operators, and the text is bound, never part of the SQL."""
    values = text_values(text, dialect="postgresql", cap=5)
    statements = StatementCache("postgresql")
    bound = statements.bind(add_text_search(select(books.c.id), dialect="postgresql"), values)
    ranked = statements.bind(select(ranked_candidates([], dialect="postgresql")), values)

    call = "plainto_tsquery('simple'::regconfig, $1::VARCHAR)"
    assert bound.sql.count(call) == 1
    assert "WHERE books.search_vector @@ plainto_tsquery(" in bound.sql
    assert re.findall(r"\$(\d+)", bound.sql) == ["1"]
    assert bound.arguments == (text,)
    # The match and the rank of the candidates read the same bound parameter.
    assert ranked.sql.count(call) == 2
    assert ranked.arguments == (text, 5)
