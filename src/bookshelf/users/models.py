"""The table of accounts.

Credentials live here too (``password_hash``), but only ``auth`` reads or writes them; sessions
and refresh tokens are ``auth.models``.
"""

from sqlalchemy import Boolean, CheckConstraint, Column, String, Table, Uuid, false

from bookshelf.db.metadata import metadata
from bookshelf.db.types import UtcDateTime

ROLES = ("reader", "editor", "admin")

users = Table(
    "users",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("email", String(320), nullable=False, unique=True),
    Column("display_name", String(100)),
    Column("password_hash", String(255), nullable=False),
    Column("role", String(16), nullable=False),
    Column("is_active", Boolean, nullable=False),
    # Set when the owner follows a link mailed to this address (or by an admin).
    Column("email_verified", Boolean, nullable=False, server_default=false()),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    CheckConstraint("role IN ('reader', 'editor', 'admin')", name="role_known"),
)
