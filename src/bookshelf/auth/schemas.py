"""Pydantic models of sign-up and tokens (accounts themselves are ``users.schemas``)."""

from __future__ import annotations

from typing import Annotated, Literal

from email_validator import EmailNotValidError, validate_email
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from bookshelf.auth.passwords import MAX_BYTES, MIN_LENGTH, password_problems
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
