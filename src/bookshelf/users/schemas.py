"""Pydantic models of accounts: as they are read, and the changes owners and admins make."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, model_validator

from bookshelf.auth.passwords import MAX_BYTES
from bookshelf.auth.schemas import Password
from bookshelf.text import DisplayName


class Role(StrEnum):
    READER = "reader"
    EDITOR = "editor"
    ADMIN = "admin"


class ProfileUpdate(BaseModel):
    """Changes to one's own account; a new password needs the current one."""

    model_config = ConfigDict(extra="forbid")

    display_name: DisplayName | None = None
    password: Password | None = None
    current_password: Annotated[str, Field(max_length=MAX_BYTES)] | None = None

    @model_validator(mode="after")
    def _password_change_rules(self) -> ProfileUpdate:
        if self.password is not None and self.current_password is None:
            raise ValueError("current_password is required to change the password")
        # The policy itself is checked by the service, which knows the account's email.
        return self


class UserAdminUpdate(BaseModel):
    """What an admin may change about an account."""

    model_config = ConfigDict(extra="forbid")

    role: Role | None = None
    is_active: bool | None = None


class User(BaseModel):
    """An account, as its owner and admins see it (never the password hash)."""

    id: UUID
    email: str
    display_name: str | None
    role: Role
    is_active: bool
    created_at: datetime
    updated_at: datetime


class UserPage(BaseModel):
    items: list[User]
    next_cursor: str | None
