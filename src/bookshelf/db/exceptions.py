"""What can go wrong in the database, in the service's terms rather than a driver's.

Each driver's exceptions are translated where they are raised (``db.postgres``, ``db.sqlite``),
so services and error handlers know three cases and no driver:

- ``IntegrityViolation``: a constraint refused the write (a taken ISBN or address): the service
  that wrote turns it into a 409 or a per-line outcome.
- ``DatabaseUnavailable``: the connection is gone, the server is starting or stopping, or the
  pool had no connection in time: 503 with ``Retry-After``, and the pool replaces its
  connections.
- ``StatementCancelled``: the server stopped a statement at its time limit: 503 (a search says
  so in its own terms).

Anything else from a driver is a ``DatabaseError``: a bug, answered with a plain 500 whose body
names no SQL.
"""

from __future__ import annotations


class DatabaseError(Exception):
    """A statement failed. ``str()`` is the driver's message: for logs, never for clients."""


class IntegrityViolation(DatabaseError):
    """A unique, foreign-key, not-null or check constraint refused the write."""

    def concerns(self, column: str) -> bool:
        """Whether the refused constraint is the one on ``column`` (by its name or message)."""
        return column.lower() in str(self).lower()


class DatabaseUnavailable(DatabaseError):
    """The database cannot be reached or cannot take the statement now: worth a retry."""


class StatementCancelled(DatabaseUnavailable):
    """The server cancelled the statement at its statement timeout."""
