"""Pydantic models of accounts: as they are read, and the changes admins make (one's own
changes, which need the current password, are ``auth.schemas.ProfileUpdate``)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field


class Role(StrEnum):
    READER = "reader"
    EDITOR = "editor"
    ADMIN = "admin"


class UserAdminUpdate(BaseModel):
    """What an admin may change about an account."""

    model_config = ConfigDict(extra="forbid")

    role: Role | None = None
    # Strict: 0 and "false" are not booleans (the schema says boolean).
    is_active: Annotated[bool, Field(strict=True)] | None = None
    # An admin may vouch for an address (or withdraw that).
    email_verified: Annotated[bool, Field(strict=True)] | None = None


class User(BaseModel):
    """An account, as its owner and admins see it (never the password hash)."""

    id: UUID
    email: str
    display_name: str | None
    role: Role
    is_active: bool
    email_verified: bool = Field(
        description="Whether the owner has followed a link mailed to this address (read-only)."
    )
    created_at: datetime
    updated_at: datetime


class UserPage(BaseModel):
    items: list[User]
    next_cursor: str | None
