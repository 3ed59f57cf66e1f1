"""Pydantic models of sign-up, tokens and one's own account changes (accounts themselves are
``users.schemas``)."""

from __future__ import annotations

from typing import Annotated, Literal

from email_validator import EmailNotValidError, validate_email
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from bookshelf.auth.passwords import MAX_BYTES, MIN_LENGTH, password_problems
from bookshelf.inputs import absent_or_not_null
from bookshelf.text import DisplayName


def normalise_email(text: str) -> str:
    """Syntax-checked, normalised (IDNA, Unicode NFC) and lower-cased, so one person has one
    address however they type it. Deliverability is not checked (no DNS at request time)."""
    try:
        result = validate_email(text.strip(), check_deliverability=False)
    except EmailNotValidError as error:
        raise ValueError(str(error)) from None
    return result.normalized.lower()


Email = Annotated[
    str,
    Field(max_length=320, examples=["ada@example.org"], json_schema_extra={"format": "email"}),
    AfterValidator(normalise_email),
]
# The policy (length, common passwords) is checked in a model validator, which also knows the
# email; max_length here only bounds the work before that.
Password = Annotated[
    str, Field(min_length=1, max_length=MAX_BYTES, examples=["correct horse battery staple"])
]
# A password being set: the length rule is in the schema too, so clients (and fuzzers) see it.
NewPassword = Annotated[
    str,
    Field(min_length=MIN_LENGTH, max_length=MAX_BYTES, examples=["correct horse battery staple"]),
]


def _check_password(password: str, email: str | None) -> None:
    problems = password_problems(password, email=email)
    if problems:
        raise ValueError("password " + "; ".join(problems))


class Registration(BaseModel):
    """A new account. Every account starts as a reader."""

    model_config = ConfigDict(extra="forbid")

    email: Email
    password: NewPassword
    display_name: DisplayName | None = None

    @model_validator(mode="after")
    def _password_policy(self) -> Registration:
        _check_password(self.password, self.email)
        return self


class TokenPair(BaseModel):
    """OAuth2 token response (RFC 6749 5.1), plus the refresh token."""

    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - the OAuth2 token type
    expires_in: int = Field(description="Seconds until the access token expires.")
    refresh_token: str


class RefreshRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    refresh_token: Annotated[str, Field(min_length=1, max_length=200)]


class Accepted(BaseModel):
    """The request was taken; what follows happens by mail."""

    detail: str


class VerifyEmailRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    token: Annotated[str, Field(min_length=1, max_length=200)]


class CancelEmailChangeRequest(BaseModel):
    """The token of the link mailed to the address an email change would replace."""

    model_config = ConfigDict(extra="forbid")

    token: Annotated[str, Field(min_length=1, max_length=200)]


class EmailRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: Email


class PasswordResetConfirm(BaseModel):
    """A new password, with the token of a reset link. The policy is the registration's."""

    model_config = ConfigDict(extra="forbid")

    token: Annotated[str, Field(min_length=1, max_length=200)]
    new_password: NewPassword


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
