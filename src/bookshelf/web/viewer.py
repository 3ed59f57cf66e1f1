"""Who is looking at a page (``Viewer``): the signed-in account, if any, the visit's CSRF
nonce, and the cookies a response must set or clear; and ``page``, which renders a template
for them."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from bookshelf.auth.exceptions import EmailNotVerified, InsufficientRole, InvalidToken
from bookshelf.auth.sessions import Principal
from bookshelf.auth.tokens import AccessClaims
from bookshelf.users.schemas import Role, User
from bookshelf.web.exceptions import SignInRequired
from bookshelf.web.pages import PRIVATE, html_response
from bookshelf.web.site import Site

_RANKS = (Role.READER, Role.EDITOR, Role.ADMIN)


@dataclass
class Viewer:
    site: Site
    # What the session cookie says (its signature checked), and, once the session is found
    # live (``web.dependencies``), its account.
    claims: AccessClaims | None = None
    principal: Principal | None = None
    nonce: str | None = None
    _new_cookies: dict[str, tuple[str, int | None]] = field(default_factory=dict)
    _gone_cookies: set[str] = field(default_factory=set)
    _form_token: str | None = None

    @classmethod
    def from_cookies(cls, site: Site, request: Request) -> Viewer:
        """The viewer the cookies claim to be (the session is not loaded yet)."""
        viewer = cls(site, nonce=site.forms.usable_nonce(request.cookies.get(site.cookies.csrf)))
        token = request.cookies.get(site.cookies.session)
        if token:
            try:
                viewer.claims = site.sessions.read(token)
            except InvalidToken:
                viewer.forget_session()
        return viewer

    @property
    def claimed_session(self) -> uuid.UUID | None:
        """The session the forms' tokens are bound to: the cookie's, live or not yet known."""
        return self.claims.session_id if self.claims is not None else None

    @property
    def user(self) -> User | None:
        return self.principal.user if self.principal is not None else None

    def is_at_least(self, role: Role) -> bool:
        return self.principal is not None and _RANKS.index(self.principal.role) >= _RANKS.index(
            role
        )

    def require(
        self, role: Role = Role.READER, *, next_path: str | None = None, writes: bool = False
    ) -> Principal:
        """The signed-in account if it has ``role`` (or a higher one), else a redirect to the
        sign-in page (anonymous) or the 403 page; with ``writes``, an account whose address
        must be verified first is refused as the API refuses it (``EmailNotVerified``)."""
        if self.principal is None:
            raise SignInRequired(next_path)
        if (
            writes
            and self.site.settings.requires_verified_email
            and not self.principal.user.email_verified
        ):
            raise EmailNotVerified()
        if not self.is_at_least(role):
            raise InsufficientRole(role.value)
        return self.principal

    @property
    def form_token(self) -> str:
        """The CSRF token of this visit's forms (a nonce cookie is made for a first visit)."""
        if self._form_token is None:
            if self.nonce is None:
                self.nonce = self.site.forms.new_nonce()
                self._new_cookies[self.site.cookies.csrf] = (self.nonce, None)
            self._form_token = self.site.forms.token(self.nonce, self.claimed_session)
        return self._form_token

    def signed_in(self, user_id: uuid.UUID, session_id: uuid.UUID) -> None:
        """The response starts a session: its cookie, and a new nonce (forms shown before the
        sign-in are refused after it)."""
        sessions = self.site.sessions
        token = sessions.issue(user_id, session_id)
        self._new_cookies[self.site.cookies.session] = (
            token,
            int(sessions.lifetime.total_seconds()),
        )
        self._gone_cookies.discard(self.site.cookies.session)
        self.claims = sessions.read(token)
        self._renew_nonce()

    def signed_out(self) -> None:
        self.forget_session()
        self._renew_nonce()

    def forget_session(self) -> None:
        """Clear the session cookie (signed out, or its session is over)."""
        self.principal = self.claims = None
        self._form_token = None
        self._gone_cookies.add(self.site.cookies.session)
        self._new_cookies.pop(self.site.cookies.session, None)

    def _renew_nonce(self) -> None:
        self.nonce, self._form_token = self.site.forms.new_nonce(), None
        self._new_cookies[self.site.cookies.csrf] = (self.nonce, None)

    def finish(self, response: Response) -> Response:
        """Set and clear the cookies this request changed."""
        cookies = self.site.cookies
        for name in self._gone_cookies:
            cookies.delete(response, name)
        for name, (value, max_age) in self._new_cookies.items():
            cookies.set(response, name, value, max_age)
        return response


def page(
    request: Request,
    viewer: Viewer,
    template: str,
    *,
    status: int = 200,
    cache: str = PRIVATE,
    **context: Any,
) -> Response:
    """``template`` rendered for ``viewer`` (the layout shows who is signed in)."""
    body = viewer.site.templates.render(
        template, {"viewer": viewer, "path": request.url.path, **context}
    )
    return viewer.finish(html_response(request, body, status=status, cache=cache))
