"""Errors of account management."""

from __future__ import annotations

from uuid import UUID

from bookshelf.exceptions import Conflict, NotFound


class UserNotFound(NotFound):
    title = "User not found"
    slug = "user-not-found"

    def __init__(self, user_id: UUID | str) -> None:
        super().__init__(f"No user has the id {str(user_id)!r}.")


class CannotChangeOwnAccess(Conflict):
    title = "Cannot change your own access"
    slug = "own-access"

    def __init__(self) -> None:
        super().__init__(
            "Admins cannot demote or deactivate themselves; ask another admin "
            "(this keeps at least one admin able to sign in)."
        )


class LastActiveAdmin(Conflict):
    """Only the operator's command line can meet it: an admin acting through the API or the
    pages is refused first, as ``CannotChangeOwnAccess``, and is an active admin who stays. So
    it has no problem type of its own (docs/api.md lists the API's)."""

    title = "Last active admin"

    def __init__(self) -> None:
        super().__init__(
            "This account is the only active admin: make another account an admin first "
            "(nobody could administer the service otherwise)."
        )
