"""How a connection to the database is set up, in one place for both ways in: the data layer's
drivers (``db.postgres``, ``db.sqlite``), which serve requests, and SQLAlchemy's engine
(``db.engine``), on which Alembic migrates and the tests read. A connection made either way
behaves the same, and JSON is written the same way.
"""

from __future__ import annotations

import json
from typing import Any

from bookshelf.config import Settings

# How long a SQLite connection waits for another's write lock before it gives up (SQLITE_BUSY).
SQLITE_BUSY_TIMEOUT_SECONDS = 30

# WAL, so readers never wait for the writer; NORMAL sync, safe with WAL; foreign keys on (SQLite
# leaves them off per connection); the busy timeout for the write lock.
SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA foreign_keys=ON",
    f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_SECONDS * 1000}",
)


def postgres_server_settings(settings: Settings) -> dict[str, str]:
    """The session settings a PostgreSQL connection starts with: a runaway query is cancelled
    by the server (``statement_timeout``) instead of holding a connection.

    They are sent as startup parameters, which PgBouncer refuses: behind it (statement cache
    off), set statement_timeout on the database role instead (see docs/deploying.md)."""
    if settings.database_statement_timeout_ms and settings.database_statement_cache:
        return {"statement_timeout": str(settings.database_statement_timeout_ms)}
    return {}


def json_text(value: Any) -> str:
    """JSON as stored in a text column (SQLite): unescaped UTF-8, so full-text search sees
    "Molière", not "Moli\\u00e8re"."""
    return json.dumps(value, ensure_ascii=False)
