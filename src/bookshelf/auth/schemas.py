"""Pydantic models of accounts and tokens."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal
from uuid import UUID

from email_validator import EmailNotValidError, validate_email
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from bookshelf.auth.passwords import MAX_BYTES, password_problems
from bookshelf.text import DisplayName


class Role(StrEnum):
    READER = "reader"
    EDITOR = "editor"
    ADMIN = "admin"


def normalise_email(text: str) -> str:
    """Syntax-checked, normalised (IDNA, Unicode NFC) and lower-cased, so one person has one
    address however they type it. Deliverability is not checked (no DNS at request time)."""
    try:
        result = validate_email(text.strip(), check_deliverability=False)
    except EmailNotValidError as error:
        raise ValueError(str(error)) from None
    return result.normalized.lower()


Email = Annotated[
    str, Field(max_length=320, examples=["ada@example.org"]), AfterValidator(normalise_email)
]
# The policy (length, common passwords) is checked in a model validator, which also knows the
# email; max_length here only bounds the work before that.
Password = Annotated[
    str, Field(min_length=1, max_length=MAX_BYTES, examples=["correct horse battery staple"])
]


def _check_password(password: str, email: str | None) -> None:
    problems = password_problems(password, email=email)
    if problems:
        raise ValueError("password " + "; ".join(problems))


class Registration(BaseModel):
    """A new account. Every account starts as a reader."""

    model_config = ConfigDict(extra="forbid")

    email: Email
    password: Password
    display_name: DisplayName | None = None

    @model_validator(mode="after")
    def _password_policy(self) -> Registration:
        _check_password(self.password, self.email)
        return self


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


class TokenPair(BaseModel):
    """OAuth2 token response (RFC 6749 5.1), plus the refresh token."""

    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - the OAuth2 token type
    expires_in: int = Field(description="Seconds until the access token expires.")
    refresh_token: str


class RefreshRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    refresh_token: Annotated[str, Field(min_length=1, max_length=200)]
