"""Dependencies of the web app's routes: the viewer of a page, and a posted form, checked
(``Origin``, CSRF token) before anything reads it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from starlette.datastructures import FormData, UploadFile

from bookshelf.auth import service as auth_service
from bookshelf.auth.dependencies import AuthDep, MailLimitsDep, RateLimitsDep, RecoveryDep
from bookshelf.auth.exceptions import InvalidAccessToken
from bookshelf.auth.mail_limits import MailLimits
from bookshelf.auth.recovery import Recovery
from bookshelf.auth.service import Auth
from bookshelf.db.connections import ConnectionDep, DatabaseDep
from bookshelf.db.database import Connection, Database, unit_of_work
from bookshelf.ops.ratelimit import RateLimits
from bookshelf.web.exceptions import FormRefused
from bookshelf.web.security import CSRF_FIELD
from bookshelf.web.site import Site
from bookshelf.web.viewer import Viewer

# A form has a dozen fields at most; a text field is at most a review or a description.
MAX_FIELDS = 40
MAX_FIELD_BYTES = 64 * 1024


async def get_site(request: Request) -> Site:
    site: Site = request.app.state.site
    return site


SiteDep = Annotated[Site, Depends(get_site)]


async def _load_session(viewer: Viewer, request: Request, connection: Connection) -> None:
    """The cookie's session, checked live as an access token's is: a session signed out
    (here, through the API or everywhere), expired or of a deactivated account is no session,
    and its cookie is cleared."""
    if viewer.claims is None:
        return
    try:
        viewer.principal = await auth_service.load_principal(connection, viewer.claims)
    except InvalidAccessToken:
        viewer.forget_session()
        return
    request.state.user_id = viewer.principal.id  # for the access log


async def page_viewer(request: Request, connection: ConnectionDep) -> Viewer:
    """Who looks at the page (on the page's own connection). One dependency, not a chain:
    FastAPI solves each anew on every request (the catalog's pages are the most requested)."""
    viewer = Viewer.from_cookies(request.app.state.site, request)
    request.state.viewer = viewer  # its cookies go out with a redirect to sign in too
    await _load_session(viewer, request, connection)
    return viewer


PageViewer = Annotated[Viewer, Depends(page_viewer)]


@dataclass
class Posted:
    """A form post that passed the checks, and who sent it."""

    viewer: Viewer
    form: FormData

    def text(self, name: str) -> str:
        value = self.form.get(name)
        return value if isinstance(value, str) else ""

    def texts(self, names: tuple[str, ...]) -> dict[str, str]:
        return {name: self.text(name) for name in names}

    def file(self, name: str) -> UploadFile | None:
        value = self.form.get(name)
        return value if isinstance(value, UploadFile) else None


def _own_origin(request: Request) -> str:
    return f"{request.url.scheme}://{request.headers.get('host', '')}"


async def posted_form(
    request: Request, site: SiteDep, database: DatabaseDep
) -> AsyncIterator[Posted]:
    """The form of a post, refused (``FormRefused``, a 403 page, nothing changed) when another
    site's page sent it (``Origin``, ``Sec-Fetch-Site``) or its CSRF token is missing, wrong or
    not this visit's and session's. The session is then loaded on a connection of its own,
    given back at once: the route takes units of work of its own (some hash passwords)."""
    headers = request.headers
    if not site.origins.allows(
        headers.get("origin"), headers.get("sec-fetch-site"), _own_origin(request)
    ):
        raise FormRefused()
    form = await request.form(max_files=1, max_fields=MAX_FIELDS, max_part_size=MAX_FIELD_BYTES)
    try:
        viewer = Viewer.from_cookies(site, request)
        request.state.viewer = viewer
        sent = form.get(CSRF_FIELD)
        if not isinstance(sent, str) or not site.forms.check(
            sent, viewer.nonce, viewer.claimed_session
        ):
            raise FormRefused()
        if viewer.claims is not None:
            async with unit_of_work(database, write=False) as connection:
                await _load_session(viewer, request, connection)
        yield Posted(viewer, form)
    finally:
        await form.close()


PostedForm = Annotated[Posted, Depends(posted_form)]


@dataclass(frozen=True)
class AccountServices:
    """What a change of one's account goes through (``auth.flows.change_profile``)."""

    database: Database
    auth: Auth
    limits: RateLimits | None
    mail_limits: MailLimits | None
    recovery: Recovery


async def account_services(
    database: DatabaseDep,
    auth: AuthDep,
    limits: RateLimitsDep,
    mail_limits: MailLimitsDep,
    recovery: RecoveryDep,
) -> AccountServices:
    return AccountServices(database, auth, limits, mail_limits, recovery)


AccountServicesDep = Annotated[AccountServices, Depends(account_services)]
