"""Pydantic models of accounts: as they are read, and the changes owners and admins make."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, model_validator

from bookshelf.auth.passwords import MAX_BYTES
from bookshelf.auth.schemas import Email, NewPassword
from bookshelf.inputs import absent_or_not_null
from bookshelf.text import DisplayName


class Role(StrEnum):
    READER = "reader"
    EDITOR = "editor"
    ADMIN = "admin"


class ProfileUpdate(BaseModel):
    """Changes to one's own account; a new password or address needs the current password.
    A new address is confirmed by mail before it replaces the current one."""

    # "password" and "email" need "current_password" (JSON Schema's dependentRequired says so).
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "dependentRequired": {
                "password": ["current_password"],
                "email": ["current_password"],
            }
        },
    )

    display_name: DisplayName | None = None
    email: Email | None = Field(None, json_schema_extra=absent_or_not_null)
    password: NewPassword | None = Field(None, json_schema_extra=absent_or_not_null)
    current_password: Annotated[str, Field(max_length=MAX_BYTES)] | None = Field(
        None, json_schema_extra=absent_or_not_null
    )

    @model_validator(mode="after")
    def _password_change_rules(self) -> ProfileUpdate:
        # A password cannot be cleared, so null is not "no change" but a mistake.
        for name in ("password", "current_password", "email"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        if self.password is not None and self.current_password is None:
            raise ValueError("current_password is required to change the password")
        if self.email is not None and self.current_password is None:
            raise ValueError("current_password is required to change the email address")
        # The policy itself is checked by the service, which knows the account's email.
        return self


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
