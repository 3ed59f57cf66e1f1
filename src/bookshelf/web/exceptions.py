"""Errors of the web app: rendered as its error pages (``web.errors``), or, for a page that
needs a signed-in visitor, a redirect to the sign-in page."""

from __future__ import annotations

from bookshelf.exceptions import DomainError, NotFound


class SignInRequired(Exception):
    """The page needs a signed-in visitor: answered with a redirect to the sign-in page, which
    comes back to ``next_path`` afterwards."""

    def __init__(self, next_path: str | None) -> None:
        super().__init__(next_path or "")
        self.next_path = next_path


class FormRefused(DomainError):
    """A form post that did not come from one of our pages: its CSRF token is missing, wrong
    or made for another sign-in, or its ``Origin`` is another site's. Nothing was changed."""

    status = 403
    title = "Form refused"
    slug = "form-refused"

    def __init__(self) -> None:
        super().__init__(
            "This form was not accepted: it is out of date (you signed in or out since it was "
            "shown) or it did not come from this site. Nothing was changed. Go back, reload "
            "the page and send it again."
        )


class AssetNotFound(NotFound):
    title = "Not found"
    slug = "not-found"

    def __init__(self) -> None:
        super().__init__("There is no such file.")
