"""SQLite full-text search DDL shared by migrations.

An FTS5 index over books' rowids, kept in step by triggers. Anything that rebuilds the books
table (VACUUM may renumber rowids of a table without an INTEGER PRIMARY KEY; Alembic batch
mode copies the table) must re-create the triggers and run ``BOOKS_FTS_REBUILD``.
Frozen: migrations that ran with these statements depend on them; add new ones instead.
"""

BOOKS_FTS_TABLE = """CREATE VIRTUAL TABLE books_fts USING fts5(
    title, subtitle, authors,
    content='books', content_rowid='rowid',
    tokenize='unicode61 remove_diacritics 2'
)"""

BOOKS_FTS_TRIGGERS = (
    """CREATE TRIGGER books_fts_after_insert AFTER INSERT ON books BEGIN
        INSERT INTO books_fts(rowid, title, subtitle, authors)
        VALUES (new.rowid, new.title, new.subtitle, new.authors);
    END""",
    """CREATE TRIGGER books_fts_after_delete AFTER DELETE ON books BEGIN
        INSERT INTO books_fts(books_fts, rowid, title, subtitle, authors)
        VALUES ('delete', old.rowid, old.title, old.subtitle, old.authors);
    END""",
    """CREATE TRIGGER books_fts_after_update AFTER UPDATE OF title, subtitle, authors ON books
    BEGIN
        INSERT INTO books_fts(books_fts, rowid, title, subtitle, authors)
        VALUES ('delete', old.rowid, old.title, old.subtitle, old.authors);
        INSERT INTO books_fts(rowid, title, subtitle, authors)
        VALUES (new.rowid, new.title, new.subtitle, new.authors);
    END""",
)

BOOKS_FTS_REBUILD = "INSERT INTO books_fts(books_fts) VALUES ('rebuild')"
