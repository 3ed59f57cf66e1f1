"""Accounts for visitors: sign in and out, register, and the pages the mails link to.

Sign-in, registration and a password reset run the API's own flows (``auth.flows``): the same
checks, budgets and hashing slots, the same answer whether an address has an account or not.
The pages a mail links to (``/verify-email``, ``/reset-password``, ``/cancel-email-change``)
only show a button or a form when fetched; the token is used by the post alone, so a link
scanner or a browser's prefetch that follows the link changes nothing.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import ValidationError

from bookshelf.auth import flows, recovery, sessions
from bookshelf.auth.dependencies import AuthDep, MailLimitsDep, RateLimitsDep, RecoveryDep
from bookshelf.auth.exceptions import InvalidAccountToken, InvalidGrant, WeakPassword
from bookshelf.auth.passwords import MAX_BYTES
from bookshelf.auth.recovery import Recovery
from bookshelf.auth.schemas import EmailRequest, Registration, VerifyEmailRequest
from bookshelf.db.connections import DatabaseDep
from bookshelf.db.database import Connection, unit_of_work
from bookshelf.ops.ratelimit import client_address_key
from bookshelf.web.dependencies import PageViewer, PostedForm
from bookshelf.web.forms import FORM_WIDE, domain_field_errors, field_errors
from bookshelf.web.pages import NO_STORE, redirect
from bookshelf.web.viewer import Viewer, page

router = APIRouter(include_in_schema=False)

# Where a sign-in may send the browser back to: a path of this site, nothing else.
_LOCAL_PATH = re.compile(r"/(?![/\\])[^\s]*")
_MAX_EMAIL = 320
BAD_SIGN_IN = "The email or password is wrong."
UNVERIFIED_HINT = (
    "A new account can sign in once its address is confirmed with the link we mailed to it."
)
# Said whatever the address: nobody learns from these pages who has an account.
REGISTERED = (
    "If the address can be used, a mail is on its way to it: follow its link to confirm the "
    "account, then sign in."
)
RESET_SENT = (
    "If the address has an account, a mail with a link to choose a new password is on its way."
)
RESENT = "If the address has an account that is not confirmed yet, a new link is on its way."
# What the sign-in page says when sent there by another page (never text from the address).
SIGN_IN_NOTICES = {"everywhere": "Every session of your account was signed out."}


def local_path(value: str | None) -> str:
    """``value`` if it is a path of this site (not ``//host`` nor ``/\\host``), else ``/``."""
    return value if value and len(value) <= 2000 and _LOCAL_PATH.fullmatch(value) else "/"


@router.get("/sign-in")
async def sign_in_page(request: Request, viewer: PageViewer) -> Response:
    """The sign-in form."""
    return page(
        request,
        viewer,
        "sign_in.html",
        form={"email": ""},
        errors={},
        next=local_path(request.query_params.get("next")),
        notice=SIGN_IN_NOTICES.get(request.query_params.get("notice", "")),
    )


@router.post("/sign-in")
async def sign_in(
    request: Request,
    posted: PostedForm,
    database: DatabaseDep,
    auth: AuthDep,
    limits: RateLimitsDep,
) -> Response:
    """Sign in: the API's sign-in flow, then the session's cookie."""
    email, password = posted.text("email"), posted.text("password")
    next_path = local_path(posted.text("next"))
    settings = posted.viewer.site.settings
    try:
        if len(email) > _MAX_EMAIL or len(password.encode()) > MAX_BYTES:
            raise InvalidGrant()
        tokens = await flows.sign_in(
            database,
            auth,
            limits,
            email=email,
            password=password,
            client=client_address_key(request.scope),
            require_verified=settings.requires_verified_email,
        )
    except InvalidGrant:
        message = BAD_SIGN_IN
        if settings.requires_verified_email:
            message += " " + UNVERIFIED_HINT
        return page(
            request,
            posted.viewer,
            "sign_in.html",
            status=400,
            form={"email": email},
            errors={FORM_WIDE: message},
            next=next_path,
            notice=None,
        )
    claims = auth.signer.verify(tokens.access_token)
    posted.viewer.signed_in(claims.user_id, claims.session_id)
    return posted.viewer.finish(redirect(next_path))


@router.post("/sign-out")
async def sign_out(posted: PostedForm, database: DatabaseDep) -> Response:
    """End this browser's session (the others go on)."""
    session_id = posted.viewer.claimed_session
    if session_id is not None:
        async with unit_of_work(database, write=True) as connection:
            await sessions.revoke_session(connection, session_id)
    posted.viewer.signed_out()
    return posted.viewer.finish(redirect("/"))


@router.get("/register")
async def register_page(request: Request, viewer: PageViewer) -> Response:
    """The registration form."""
    return page(request, viewer, "register.html", form={"email": "", "display_name": ""}, errors={})


@router.post("/register")
async def register(
    request: Request,
    posted: PostedForm,
    database: DatabaseDep,
    auth: AuthDep,
    settings: RecoveryDep,
    mail_limits: MailLimitsDep,
) -> Response:
    """Register: the API's registration (a new unverified reader and its mail, or a mail to
    the owner of a taken address); the same page follows either way."""
    form = {"email": posted.text("email"), "display_name": posted.text("display_name")}
    try:
        registration = Registration.model_validate(
            {
                "email": form["email"],
                "password": posted.text("password"),
                "display_name": form["display_name"].strip() or None,
            }
        )
    except ValidationError as error:
        return page(
            request,
            posted.viewer,
            "register.html",
            status=422,
            form=form,
            errors=field_errors(error),
        )
    await flows.register(
        database,
        auth,
        settings,
        mail_limits,
        registration,
        client=client_address_key(request.scope),
    )
    return page(request, posted.viewer, "message.html", heading="Check your mail", text=REGISTERED)


# The forms that ask for a mailed link: what each mails (if the address has an account that
# may have it), and what the page then says, whatever the address.
_LINKS: dict[str, tuple[Callable[[Connection, Recovery, str], Awaitable[None]], str]] = {
    "/forgot-password": (recovery.request_password_reset, RESET_SENT),
    "/resend-verification": (recovery.resend_verification, RESENT),
}


@router.get("/forgot-password")
@router.get("/resend-verification")
async def ask_for_link_page(request: Request, viewer: PageViewer) -> Response:
    """Ask for a link to choose a new password, or for a new link to confirm one's address."""
    return page(request, viewer, "ask_link.html", action=request.url.path, email="", error=None)


@router.post("/forgot-password")
@router.post("/resend-verification")
async def ask_for_link(
    request: Request,
    posted: PostedForm,
    database: DatabaseDep,
    settings: RecoveryDep,
    mail_limits: MailLimitsDep,
) -> Response:
    """Mail the link if the address has an account that may have it (within the address's
    mail budget); the same page follows either way."""
    action = request.url.path
    mail, text = _LINKS[action]
    email = posted.text("email")
    try:
        email = EmailRequest.model_validate({"email": email}).email
    except ValidationError as invalid:
        error = field_errors(invalid).get("email", "Enter an email address.")
        return page(
            request,
            posted.viewer,
            "ask_link.html",
            status=422,
            action=action,
            email=email,
            error=error,
        )
    if mail_limits is None or await mail_limits.target_allows(email):
        async with unit_of_work(database, write=True) as connection:
            await mail(connection, settings, email)
    return page(request, posted.viewer, "message.html", heading="Check your mail", text=text)


def _link_token(value: str | None) -> str:
    """A mailed link's token, as the API takes it (anything else is an invalid link)."""
    try:
        return VerifyEmailRequest.model_validate({"token": value or ""}).token
    except ValidationError:
        raise InvalidAccountToken() from None


def _link_page(request: Request, viewer: Viewer, template: str, **context: Any) -> Response:
    """A mailed link's page: its token goes into the form, and the page is never stored."""
    return page(
        request,
        viewer,
        template,
        cache=NO_STORE,
        token=request.query_params.get("token", ""),
        **context,
    )


@router.get("/verify-email")
async def verify_email_page(request: Request, viewer: PageViewer) -> Response:
    """The verification link's page: a button that confirms the address (the GET does not)."""
    return _link_page(request, viewer, "verify_email.html")


@router.post("/verify-email")
async def verify_email(posted: PostedForm, database: DatabaseDep, request: Request) -> Response:
    """Confirm the address with the link's token (once)."""
    token = _link_token(posted.text("token"))
    async with unit_of_work(database, write=True) as connection:
        await recovery.verify_email(connection, token)
    return page(
        request,
        posted.viewer,
        "message.html",
        heading="Address confirmed",
        text="Your address is confirmed.",
        sign_in_link=posted.viewer.principal is None,
    )


@router.get("/reset-password")
async def reset_password_page(request: Request, viewer: PageViewer) -> Response:
    """The reset link's page: a form for the new password. Without a token (the "someone
    tried to register" mail links here), the form that asks for a link."""
    if not request.query_params.get("token"):
        return page(
            request, viewer, "ask_link.html", action="/forgot-password", email="", error=None
        )
    return _link_page(request, viewer, "reset_password.html", error=None)


@router.post("/reset-password")
async def reset_password(
    request: Request, posted: PostedForm, database: DatabaseDep, auth: AuthDep
) -> Response:
    """Set the new password with the link's token: every session of the account ends."""
    token = _link_token(posted.text("token"))
    try:
        await flows.reset_password(
            database,
            auth,
            token=token,
            new_password=posted.text("new_password"),
            client=client_address_key(request.scope),
        )
    except WeakPassword as error:
        return page(
            request,
            posted.viewer,
            "reset_password.html",
            status=422,
            cache=NO_STORE,
            token=token,
            error=domain_field_errors(error).get("new_password", error.detail),
        )
    if posted.viewer.claims is not None:
        posted.viewer.signed_out()  # whichever account it was, its sessions may have ended
    return page(
        request,
        posted.viewer,
        "message.html",
        heading="Password changed",
        text="Your new password is set and every session of the account was signed out.",
        sign_in_link=True,
    )


@router.get("/cancel-email-change")
async def cancel_email_change_page(request: Request, viewer: PageViewer) -> Response:
    """The link mailed to an address being replaced: a button that cancels the change."""
    return _link_page(request, viewer, "cancel_email_change.html")


@router.post("/cancel-email-change")
async def cancel_email_change(
    request: Request, posted: PostedForm, database: DatabaseDep, settings: RecoveryDep
) -> Response:
    """Cancel (or undo) the change of address: the account is signed out everywhere and this
    address is mailed a link to choose a new password."""
    token = _link_token(posted.text("token"))
    async with unit_of_work(database, write=True) as connection:
        await recovery.cancel_email_change(connection, settings, token)
    if posted.viewer.claims is not None:
        posted.viewer.signed_out()
    return page(
        request,
        posted.viewer,
        "message.html",
        heading="Change cancelled",
        text="The change of address is cancelled and every session of the account was "
        "signed out. A mail with a link to choose a new password is on its way to this "
        "address.",
        sign_in_link=False,
    )
