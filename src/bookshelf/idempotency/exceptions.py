"""Errors of the idempotency feature."""

from __future__ import annotations

from bookshelf.exceptions import Conflict, InvalidRequest


class IdempotencyKeyInFlight(Conflict):
    title = "Request with this Idempotency-Key in progress"
    slug = "idempotency-key-in-flight"

    def __init__(self) -> None:
        super().__init__(
            "A request with this Idempotency-Key is still being processed; retry later."
        )


class IdempotencyKeyReused(InvalidRequest):
    title = "Idempotency-Key reused with another request"
    slug = "idempotency-key-reused"

    def __init__(self) -> None:
        super().__init__(
            "This Idempotency-Key was used with a different request body; use a new key."
        )
