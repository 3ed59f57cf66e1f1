"""The table of idempotency records; a record with no ``status_code`` is still in flight."""

from sqlalchemy import JSON, Column, Index, Integer, LargeBinary, String, Table

from bookshelf.db.metadata import metadata
from bookshelf.db.types import UtcDateTime

idempotency_records = Table(
    "idempotency_records",
    metadata,
    # What the key is for (method and route); later also whose it is.
    Column("scope", String(200), primary_key=True),
    Column("key", String(255), primary_key=True),
    Column("fingerprint", String(64), nullable=False),
    Column("status_code", Integer),
    Column("response_body", LargeBinary),
    Column("response_headers", JSON),
    Column("locked_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),
    Index("ix_idempotency_records_expires_at", "expires_at"),
)
