"""Domain exceptions: raised by services, rendered as RFC 9457 problems in one place
(``bookshelf.problems``). This module imports nothing from the web layer so services can use it."""

from __future__ import annotations

from typing import ClassVar


class DomainError(Exception):
    """Base of every error a client may see. Subclasses set the HTTP status, title and type."""

    status: ClassVar[int] = 400
    title: ClassVar[str] = "Bad request"
    # The last part of the problem ``type`` URI (see bookshelf.problems.problem_type_uri).
    slug: ClassVar[str] = "bad-request"

    def __init__(self, detail: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers = headers or {}


class NotFound(DomainError):
    status = 404
    title = "Not found"
    slug = "not-found"


class Conflict(DomainError):
    status = 409
    title = "Conflict"
    slug = "conflict"


class PreconditionFailed(DomainError):
    status = 412
    title = "Precondition failed"
    slug = "precondition-failed"


class InvalidRequest(DomainError):
    """A request that is well-formed but cannot be processed (422)."""

    status = 422
    title = "Unprocessable request"
    slug = "invalid-request"


class FieldValidationError(InvalidRequest):
    """A field failed a rule only a service can check; rendered like request validation
    errors, with an ``errors`` entry naming the field."""

    title = "Invalid request"
    slug = "validation-error"

    def __init__(self, location: tuple[str, ...], message: str) -> None:
        super().__init__("1 field(s) failed validation; see errors.")
        self.errors = [{"loc": list(location), "msg": message, "type": "value_error"}]


class UnsupportedMediaType(DomainError):
    status = 415
    title = "Unsupported media type"
    slug = "unsupported-media-type"


class InvalidCursor(InvalidRequest):
    title = "Invalid cursor"
    slug = "invalid-cursor"

    def __init__(self) -> None:
        super().__init__(
            "The cursor is not one this list issued for this sort order; "
            "start again without a cursor."
        )


class Busy(DomainError):
    """Every slot of some work stayed taken (``slots.Slots``): a fast 503 that the client may
    retry after ``retry_after_seconds``."""

    status = 503
    title = "Busy"
    slug = "busy"

    def __init__(self, detail: str, *, retry_after_seconds: int) -> None:
        super().__init__(detail, headers={"Retry-After": str(retry_after_seconds)})


class HeadAnswered(Exception):
    """Raised into a streaming ``GET`` served for a ``HEAD`` once its headers went out, so the
    rest of the body is never produced (``ops.pipeline.RequestPipeline``)."""
