"""Errors of authentication and authorisation."""

from __future__ import annotations

from bookshelf.exceptions import Conflict, DomainError, FieldValidationError


class NotAuthenticated(DomainError):
    """401: no usable credentials. ``WWW-Authenticate`` tells the client what to send."""

    status = 401
    title = "Not authenticated"
    slug = "not-authenticated"

    def __init__(
        self, detail: str = "Sign in and send the access token as a Bearer token."
    ) -> None:
        super().__init__(detail, headers={"WWW-Authenticate": 'Bearer realm="bookshelf"'})


class InvalidAccessToken(DomainError):
    status = 401
    title = "Invalid access token"
    slug = "invalid-token"

    def __init__(self, reason: str) -> None:
        quoted = reason.replace('"', "'")
        super().__init__(
            reason.capitalize() + ".",
            headers={
                "WWW-Authenticate": (
                    f'Bearer realm="bookshelf", error="invalid_token", error_description="{quoted}"'
                )
            },
        )


class InsufficientRole(DomainError):
    status = 403
    title = "Forbidden"
    slug = "forbidden"

    def __init__(self, needed: str) -> None:
        super().__init__(f"This needs the {needed} role.")


class InvalidGrant(DomainError):
    """The token endpoint's refusal (RFC 6749 5.2): same answer for every cause, so a client
    cannot learn whether an email is registered or a token was ever valid."""

    status = 400
    title = "Invalid grant"
    slug = "invalid-grant"

    def __init__(self, detail: str = "The email or password is wrong.") -> None:
        super().__init__(detail)


class EmailAlreadyRegistered(Conflict):
    title = "Email already registered"
    slug = "email-taken"

    def __init__(self) -> None:
        super().__init__("This email address cannot be used to register.")


class AddressTakenMeanwhile(Conflict):
    """Undoing an email change raced with a registration of the address it would bring back;
    nothing changed, and the link still works (its retry keeps the new address)."""

    title = "Address taken meanwhile"
    slug = "address-taken"

    def __init__(self) -> None:
        super().__init__("The previous address was taken meanwhile; nothing changed. Retry.")


class WrongCurrentPassword(DomainError):
    status = 422
    title = "Wrong current password"
    slug = "wrong-current-password"

    def __init__(self) -> None:
        super().__init__("current_password does not match; the password was not changed.")


class WeakPassword(FieldValidationError):
    def __init__(self, problems: list[str], *, field: str = "password") -> None:
        super().__init__(("body", field), f"Value error, {field} " + "; ".join(problems))


class HashingBusy(DomainError):
    """Every password-hashing slot stayed busy for the whole bounded wait: try again shortly.
    Answered fast, so a burst of sign-ins cannot queue (and hold memory) without end."""

    status = 503
    title = "Busy"
    slug = "busy"

    def __init__(self, *, retry_after_seconds: int) -> None:
        super().__init__(
            "Too many password checks are in progress; retry shortly.",
            headers={"Retry-After": str(retry_after_seconds)},
        )


class TooManyPasswordAttempts(DomainError):
    """The strict per-user or per-address budget for password checks is spent."""

    status = 429
    title = "Too many requests"
    slug = "rate-limited"

    def __init__(self, *, limit: int, retry_after_seconds: int) -> None:
        super().__init__(
            f"Rate limit of {limit} password checks exceeded; retry in {retry_after_seconds} s.",
            headers={
                "Retry-After": str(max(1, retry_after_seconds)),
                "RateLimit-Limit": str(limit),
                "RateLimit-Remaining": "0",
                "RateLimit-Reset": str(retry_after_seconds),
            },
        )


class InvalidToken(Exception):
    """The access token cannot be trusted; the message says why (safe to show the client)."""


class InvalidAccountToken(DomainError):
    """A mailed link's token that is unknown, expired, used or superseded: one answer for all,
    so the token space cannot be probed."""

    status = 400
    title = "Invalid or expired link"
    slug = "invalid-account-token"

    def __init__(self) -> None:
        super().__init__(
            "This link is invalid, has expired or was already used; ask for a new one."
        )


class EmailNotVerified(DomainError):
    status = 403
    title = "Email not verified"
    slug = "email-not-verified"

    def __init__(self) -> None:
        super().__init__(
            "Verify your email address first: follow the link in the mail we sent "
            "(POST /api/v1/auth/verify-email/resend sends a new one)."
        )
