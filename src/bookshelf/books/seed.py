"""Realistic fake books for demos and benchmarks, generated fast enough for millions of rows.

Books are built directly as table rows (valid by construction) from word lists, skipping request
validation. On PostgreSQL rows are streamed with COPY; on SQLite they are inserted in batches.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import insert

from bookshelf.books.isbn import isbn13_check_digit
from bookshelf.books.models import book_authors, book_subjects, books
from bookshelf.books.service import fold
from bookshelf.db.database import Connection, Database, unit_of_work

_FIRST_NAMES = (
    "Ada Alan Amara Ana Anders Aylin Bao Beatriz Chen Chidi Clara Dmitri Elena Emeka Farah "
    "Francesca Grace Hana Hiroshi Ines Ivan Jamal Jorge Kai Kenji Lars Leila Lucia Mads Maria "
    "Mateo Mei Nadia Noah Olga Omar Pablo Priya Rafael Rosa Sakura Samuel Sofia Tariq Tomas Uma "
    "Victor Wei Yara Yusuf Zofia Åsa Søren Zoë Élodie José"
).split()
_LAST_NAMES = (
    "Abe Adeyemi Almeida Andersen Bauer Becker Brennan Castillo Chen Costa Dubois Eriksen "
    "Fischer Fontaine Garcia Gupta Haddad Hoffmann Ivanova Jensen Kim Kowalski Larsen Lopez "
    "Maier Martin Moreau Müller Nakamura Novak Okafor Olsen Petrov Popescu Quinn Rahman Rossi "
    "Santos Sato Schmidt Silva Smith Tanaka Torres Ueda Varga Wagner Wang Weber Yamamoto Zhang"
).split()
# Most authors of a large catalog wrote one or two of its books: beyond the common surnames
# above, surnames are built from three syllables (51,600 of them), so a million books have a
# long tail of authors and a search for one book's author finds a handful, as in a real catalog.
_SURNAME_STARTS = (
    "Al Ber Cor Dal El Far Gar Hal Is Jor Kel Lor Mar Nor Ol Per Quen Ros Sal Tor "
    "Ab Bra Cal Dor Ev Fen Gil Har Ing Jas Kir Lin Mor Nev Orr Pal Rav Sten Tal Vel"
).split()
_SURNAME_MIDDLES = (
    "a e i o u an en in on ar er ir or al el il ol am em im om as es is os ad ed id od "
    "av ev iv ov az ez iz oz ab eb ib ob ag eg"
).split()
_SURNAME_ENDS = (
    "berg dottir ez field ford ini ski sson ton vić wood ard ano ello ova stad gaard heim "
    "quist rud ley mann holm vall stein berger oglu escu ović sen"
).split()
# Share of authors drawn from the common surnames (the rest come from the long tail).
_COMMON_AUTHOR_SHARE = 0.2
_ADJECTIVES = (
    "Silent Hidden Last Broken Golden Distant Secret Forgotten Burning Quiet Endless Crimson "
    "Hollow Wandering Northern Fragile Bright Lonely Ancient Restless Invisible Shattered Wild "
    "Little Final Second Electric Sunken Winter Summer Midnight"
).split()
_NOUNS = (
    "River Garden Kingdom Library Mirror Harbor Forest Empire Lantern Island Orchard Archive "
    "Machine Voyage Letter Bridge Station Tower Lighthouse Winter Ocean Mountain Circle Storm "
    "Cartographer Alchemist Apprentice Detective Inheritance Algorithm Compass Atlas"
).split()
_PLACES = (
    "Lisbon Kyoto Lagos Prague Oslo Cairo Lima Hanoi Dublin Vienna Seoul Quito Tbilisi "
    "Marrakesh Reykjavik Valparaíso Zürich Kraków"
).split()
_TITLE_PATTERNS: tuple[Callable[[random.Random], str], ...] = (
    lambda r: f"The {r.choice(_ADJECTIVES)} {r.choice(_NOUNS)}",
    lambda r: f"{r.choice(_NOUNS)} of {r.choice(_PLACES)}",
    lambda r: f"A {r.choice(_NOUNS)} in {r.choice(_PLACES)}",
    lambda r: f"The {r.choice(_NOUNS)} and the {r.choice(_NOUNS)}",
    lambda r: f"{r.choice(_ADJECTIVES)} {r.choice(_NOUNS)}s",
)
_SUBTITLES = (
    "A Novel",
    "Stories",
    "A History",
    "A Memoir",
    "An Introduction",
    "Poems",
    "A Field Guide",
)
_SUBJECTS = (
    "fiction literary-fiction fantasy science-fiction mystery thriller romance history "
    "biography poetry philosophy science mathematics computing travel cooking art music "
    "economics politics children young-adult classics horror essays nature"
).split()
_PUBLISHERS = (
    "Penguin Random House",
    "HarperCollins",
    "Gallimard",
    "Suhrkamp",
    "Kodansha",
    "Anagrama",
    "Faber & Faber",
    "Einaudi",
    "Alfaguara",
    "Bloomsbury",
    "Shinchosha",
    "Companhia das Letras",
    "Small Beer Press",
    "O'Reilly Media",
)
# Weighted towards English, as most catalogs are.
_LANGUAGES = ("en",) * 12 + ("fr", "de", "es", "it", "ja", "pt", "nl", "sv", "pl", "zh", "ko")
_SENTENCES = (
    "A story of loss and return told across three generations.",
    "An unexpected friendship changes everything.",
    "Nothing is what it seems in this gripping debut.",
    "Part history, part adventure, entirely unforgettable.",
    "The definitive account, drawing on newly opened archives.",
    "Written with wit, warmth and a sharp eye for detail.",
)

BOOK_COLUMNS = (
    "id",
    "isbn",
    "title",
    "sort_title",
    "subtitle",
    "authors",
    "publisher",
    "published_date",
    "published_sort",
    "page_count",
    "language",
    "subjects",
    "description",
    "version",
    "created_at",
    "updated_at",
)


@dataclass
class SeedBatch:
    books: list[dict[str, Any]]
    authors: list[dict[str, Any]]
    subjects: list[dict[str, Any]]


def _published(rng: random.Random, today: date) -> tuple[str | None, date | None]:
    if rng.random() < 0.05:
        return None, None
    year = rng.randint(1850, today.year - 1)
    precision = rng.random()
    if precision < 0.3:
        return f"{year:04d}", date(year, 1, 1)
    month = rng.randint(1, 12)
    if precision < 0.5:
        return f"{year:04d}-{month:02d}", date(year, month, 1)
    day = rng.randint(1, 28)
    return f"{year:04d}-{month:02d}-{day:02d}", date(year, month, day)


class BookFactory:
    """Makes rows for ``books`` and its name-key tables, reproducibly from a random seed."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        # Consecutive ISBNs from a random start: unique within a run, unlikely to meet an
        # earlier run's.
        self.next_isbn_body = self.rng.randrange(0, 10**9 - 10**8)
        self.now = datetime.now(UTC)
        self.today = self.now.date()

    def _isbn(self) -> str:
        core = f"979{self.next_isbn_body % 10**9:09d}"
        self.next_isbn_body += 1
        return core + isbn13_check_digit(core)

    def _author(self) -> str:
        rng = self.rng
        if rng.random() < _COMMON_AUTHOR_SHARE:
            surname = rng.choice(_LAST_NAMES)
        else:
            surname = (
                rng.choice(_SURNAME_STARTS)
                + rng.choice(_SURNAME_MIDDLES)
                + rng.choice(_SURNAME_ENDS)
            )
        return f"{rng.choice(_FIRST_NAMES)} {surname}"

    def make(self, count: int) -> SeedBatch:
        rng = self.rng
        batch = SeedBatch([], [], [])
        for _ in range(count):
            book_id = UUID(int=rng.getrandbits(128), version=4)
            title = rng.choice(_TITLE_PATTERNS)(rng)
            authors = [
                self._author() for _ in range(1 if rng.random() < 0.8 else rng.randint(2, 4))
            ]
            subjects = rng.sample(_SUBJECTS, rng.randint(0, 4))
            published_date, published_sort = _published(rng, self.today)
            created_at = self.now - timedelta(seconds=rng.randint(0, 5 * 365 * 24 * 3600))
            batch.books.append(
                {
                    "id": book_id,
                    "isbn": self._isbn() if rng.random() < 0.9 else None,
                    "title": title,
                    "sort_title": fold(title),
                    "subtitle": rng.choice(_SUBTITLES) if rng.random() < 0.3 else None,
                    "authors": authors,
                    "publisher": rng.choice(_PUBLISHERS),
                    "published_date": published_date,
                    "published_sort": published_sort or date(9999, 12, 31),
                    "page_count": rng.randint(48, 1200),
                    "language": rng.choice(_LANGUAGES),
                    "subjects": subjects,
                    "description": " ".join(rng.sample(_SENTENCES, 2)),
                    "version": 1,
                    "created_at": created_at,
                    "updated_at": created_at,
                }
            )
            batch.authors.extend(
                {"book_id": book_id, "position": i, "name_key": fold(name)}
                for i, name in enumerate(authors)
            )
            batch.subjects.extend(
                {"book_id": book_id, "position": i, "name_key": fold(name)}
                for i, name in enumerate(subjects)
            )
        return batch


def batches(total: int, batch_size: int) -> Iterator[int]:
    remaining = total
    while remaining > 0:
        size = min(batch_size, remaining)
        yield size
        remaining -= size


async def _copy_batch(connection: Connection, batch: SeedBatch) -> None:
    from bookshelf.db.postgres import PostgresConnection

    assert isinstance(connection, PostgresConnection)  # noqa: S101 - chosen by dialect
    await connection.copy_records(
        "books",
        BOOK_COLUMNS,
        [tuple(row[c] for c in BOOK_COLUMNS) for row in batch.books],
    )
    for table, rows in (("book_authors", batch.authors), ("book_subjects", batch.subjects)):
        if rows:
            await connection.copy_records(
                table,
                ("book_id", "position", "name_key"),
                [(r["book_id"], r["position"], r["name_key"]) for r in rows],
            )


async def _insert_batch(connection: Connection, batch: SeedBatch) -> None:
    await connection.execute_many(insert(books), batch.books)
    await connection.execute_many(insert(book_authors), batch.authors)
    await connection.execute_many(insert(book_subjects), batch.subjects)


async def seed_books(
    database: Database,
    count: int,
    *,
    seed: int,
    batch_size: int = 5000,
    on_progress: Callable[[int], None] = lambda _: None,
) -> None:
    """Insert ``count`` fake books, one transaction per batch, reporting progress per batch."""
    factory = BookFactory(seed)
    write = _copy_batch if database.dialect == "postgresql" else _insert_batch
    for size in batches(count, batch_size):
        batch = factory.make(size)
        async with unit_of_work(database, write=True) as connection:
            await write(connection, batch)
        on_progress(size)
