"""The account flows that hash passwords, as the API and the web app both run them: sign-in,
registration, a password reset, and a change of one's own password or address.

Each is a sequence of short units of work around a deliberately slow hash, which holds no
pooled connection (and, on SQLite, no write lock) while it runs: so these functions open their
own units of work (``db.database.unit_of_work``) rather than taking the request's connection.
The rules themselves are the services' (``auth.service``, ``auth.recovery``,
``auth.accounts``); what is here is their order, the budgets they count against, and the
hashing slot of the client's address (``client``, an ``ops.ratelimit.address_key``). No web
framework here: the routes and pages call these with what they parsed.
"""

from __future__ import annotations

from bookshelf.auth import accounts, recovery
from bookshelf.auth import service as auth_service
from bookshelf.auth.exceptions import EmailAlreadyRegistered, WeakPassword
from bookshelf.auth.mail_limits import MailLimits
from bookshelf.auth.passwords import password_problems
from bookshelf.auth.recovery import Recovery
from bookshelf.auth.schemas import ProfileUpdate, Registration, TokenPair
from bookshelf.auth.service import Auth
from bookshelf.auth.sessions import Principal
from bookshelf.db.database import Database, unit_of_work
from bookshelf.ops.ratelimit import RateLimits
from bookshelf.users.schemas import User


async def sign_in(
    database: Database,
    auth: Auth,
    limits: RateLimits | None,
    *,
    email: str,
    password: str,
    client: str,
    require_verified: bool,
) -> TokenPair:
    """A new session for the account at ``email`` if ``password`` is right, else
    ``InvalidGrant`` (unknown email, wrong password, deactivated or, with
    ``require_verified``, unverified account alike). Attempts on the account from an address it
    has never signed in from count against its budget (``TooManyPasswordAttempts`` once
    spent)."""
    async with unit_of_work(database, write=False) as connection:
        credentials = await auth_service.find_credentials(connection, email, client)
    if limits is not None and not credentials.known_address:
        await limits.count_sign_in_attempt(credentials.login)
    # The deliberately slow hash check holds no connection (the pool serves other requests)
    # and no transaction (on SQLite, nobody waits on the write lock for it).
    verified = await auth_service.check_password(
        auth, credentials, password, require_verified=require_verified, client=client
    )
    async with unit_of_work(database, write=True) as connection:
        if verified.upgraded_hash is not None and credentials.password_hash is not None:
            await auth_service.store_upgraded_hash(
                connection,
                verified.user_id,
                old_hash=credentials.password_hash,
                new_hash=verified.upgraded_hash,
            )
        await auth_service.remember_address(connection, verified.user_id, client)
        return await auth_service.start_session(connection, auth, verified.user_id)


async def register(
    database: Database,
    auth: Auth,
    recovery_settings: Recovery,
    mail_limits: MailLimits | None,
    registration: Registration,
    *,
    client: str,
) -> None:
    """A new unverified reader and its verification mail, or, for an address that has an
    account, a mail telling its owner: the caller answers the same either way, after the same
    work (the password is hashed in both cases, before any connection is taken)."""
    password_hash = await auth.hasher.hash(registration.password, client=client)
    send = mail_limits is None or await mail_limits.target_allows(registration.email)
    try:
        async with unit_of_work(database, write=True) as connection:
            await recovery.register(
                connection, recovery_settings, registration, password_hash, send_mail=send
            )
    except EmailAlreadyRegistered:  # a concurrent registration took the address
        if send:
            async with unit_of_work(database, write=True) as connection:
                await recovery.notify_already_registered(
                    connection, recovery_settings, registration.email
                )


async def reset_password(
    database: Database, auth: Auth, *, token: str, new_password: str, client: str
) -> None:
    """Set a new password with a reset link's token (the registration's policy, which knows
    the account's address: ``WeakPassword`` on ``new_password``), signing the account out
    everywhere. ``InvalidAccountToken`` for a token that cannot be used; it is used only once
    the new password is hashed."""
    async with unit_of_work(database, write=False) as connection:
        email = await recovery.check_reset_token(connection, token)
    problems = password_problems(new_password, email=email)
    if problems:
        raise WeakPassword(problems, field="new_password")
    password_hash = await auth.hasher.hash(new_password, client=client)
    async with unit_of_work(database, write=True) as connection:
        await recovery.reset_password(connection, token, password_hash)


async def change_profile(
    database: Database,
    auth: Auth,
    principal: Principal,
    changes: ProfileUpdate,
    *,
    limits: RateLimits | None,
    mail_limits: MailLimits | None,
    recovery_settings: Recovery,
    client: str,
) -> User:
    """Change one's display name, password or address (the last two with the current
    password, which is checked whenever it is sent, under the strict per-account and
    per-address budget). A new password signs the other sessions out; a new address is
    mailed a link that confirms it, and the current one a notice with a link that cancels
    it. Returns the account as it is now (its address unchanged until the link is
    followed)."""
    password_change = None
    # The schema makes current_password come with a new password or address.
    if changes.current_password is not None:
        # A password check is a guess: under the strict sign-in budget, per account and address.
        if limits is not None:
            await limits.count_password_check(str(principal.id), client)
        async with unit_of_work(database, write=False) as connection:
            current_hash = await accounts.current_password_hash(connection, principal.id)
        # Checked and hashed with no connection held, and before the write: on SQLite the
        # write below holds the database's write lock, which nobody should wait on for a hash.
        password_change = await accounts.check_profile_update(
            auth.hasher, principal, changes, current_hash, client=client
        )
    new_email = changes.email if changes.email != principal.user.email else None
    # Mail to the new address counts against its budget, as a registration's would.
    send_confirmation = (
        new_email is None or mail_limits is None or await mail_limits.target_allows(new_email)
    )
    async with unit_of_work(database, write=True) as connection:
        user = await accounts.update_profile(connection, principal, changes, password_change)
        if new_email is not None:
            await recovery.request_email_change(
                connection,
                recovery_settings,
                user_id=principal.id,
                current_email=principal.user.email,
                new_email=new_email,
                send_confirmation=send_confirmation,
            )
    return user
