"""Accounts that recover themselves: registration that does not tell whether an address is
taken, email verification, password reset and email change (no web framework here).

Every mail is written to the outbox in the caller's transaction (``mail.service.enqueue``), so
it goes out if and only if the change that causes it commits; nothing is sent from a request.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select, update

from bookshelf.auth import account_tokens, mails
from bookshelf.auth import service as auth_service
from bookshelf.auth.account_tokens import Purpose
from bookshelf.auth.exceptions import AddressTakenMeanwhile, InvalidAccountToken
from bookshelf.auth.schemas import Registration
from bookshelf.auth.sessions import sign_out_everywhere
from bookshelf.config import Settings
from bookshelf.db.database import Connection
from bookshelf.db.exceptions import IntegrityViolation
from bookshelf.db.types import utc_now
from bookshelf.mail import service as mail
from bookshelf.users.models import users


@dataclass(frozen=True)
class Recovery:
    """What the recovery flows need from settings."""

    public_url: str
    verification_ttl: timedelta
    reset_ttl: timedelta
    # Whether an unverified account may sign in (the verification mail says which).
    requires_verified_email: bool

    @classmethod
    def from_settings(cls, settings: Settings) -> Recovery:
        return cls(
            public_url=settings.public_url,
            verification_ttl=timedelta(seconds=settings.verification_token_ttl_seconds),
            reset_ttl=timedelta(seconds=settings.password_reset_token_ttl_seconds),
            requires_verified_email=settings.requires_verified_email,
        )

    @property
    def verification_hours(self) -> int:
        return max(1, round(self.verification_ttl.total_seconds() / 3600))

    @property
    def reset_minutes(self) -> int:
        return max(1, round(self.reset_ttl.total_seconds() / 60))


async def _send(connection: Connection, recipient: str, message: mails.Mail) -> None:
    await mail.enqueue(
        connection,
        kind=message.kind,
        recipient=recipient,
        subject=message.subject,
        body=message.body,
    )


@dataclass(frozen=True)
class _Account:
    id: uuid.UUID
    email: str
    is_active: bool
    email_verified: bool


async def _account_by_email(connection: Connection, email: str) -> _Account | None:
    row = (
        await connection.execute(
            select(users.c.id, users.c.email, users.c.is_active, users.c.email_verified).where(
                users.c.email == email
            )
        )
    ).first()
    return None if row is None else _Account(row.id, row.email, row.is_active, row.email_verified)


async def _send_verification(
    connection: Connection, recovery: Recovery, user_id: uuid.UUID, email: str
) -> None:
    token = await account_tokens.issue(
        connection,
        user_id=user_id,
        purpose=Purpose.VERIFY_EMAIL,
        email=email,
        ttl=recovery.verification_ttl,
    )
    await _send(
        connection,
        email,
        mails.verify_address(
            recovery.public_url,
            token,
            recovery.verification_hours,
            required=recovery.requires_verified_email,
        ),
    )


async def register(
    connection: Connection,
    recovery: Recovery,
    data: Registration,
    password_hash: str,
    *,
    send_mail: bool = True,
) -> None:
    """A new unverified reader and its verification mail; for an address that has an account,
    a mail telling its owner instead. The caller answers the same either way.

    Raises ``EmailAlreadyRegistered`` when a concurrent registration took the address between
    the check and the insert: roll back and call ``notify_already_registered``.
    ``send_mail`` False: the target address's mail budget is spent (the account is still made;
    ``resend_verification`` sends its mail later).
    """
    if await _account_by_email(connection, data.email) is not None:
        if send_mail:
            await notify_already_registered(connection, recovery, data.email)
        return
    user = await auth_service.create_user(
        connection, email=data.email, password_hash=password_hash, display_name=data.display_name
    )
    if send_mail:
        await _send_verification(connection, recovery, user.id, user.email)


async def notify_already_registered(connection: Connection, recovery: Recovery, email: str) -> None:
    await _send(connection, email, mails.already_registered(recovery.public_url))


# The answer to a resend or a reset is the same whether the address has an account or not, and
# so must its time be: a commit that waits for the disk (the writes of a known address) took
# ~10 ms longer than one with nothing to write, enough to tell the two apart. These commits do
# not wait for the disk (PostgreSQL's synchronous_commit, for this transaction only): a crash in
# the next fraction of a second can lose the mail, which the user then simply asks for again.
_SAME_TIME_COMMIT = {"synchronous_commit": "off"}


async def resend_verification(connection: Connection, recovery: Recovery, email: str) -> None:
    """A new verification mail if ``email`` has an active, unverified account (else nothing)."""
    async with connection.transaction(_SAME_TIME_COMMIT):
        account = await _account_by_email(connection, email)
        if account is not None and account.is_active and not account.email_verified:
            await _send_verification(connection, recovery, account.id, account.email)


async def verify_email(connection: Connection, token: str) -> None:
    """Follow a verification link: mark the address verified, or, for an email change,
    switch the account to the new (so verified) address."""
    use = await account_tokens.consume(
        connection, token, Purpose.VERIFY_EMAIL, Purpose.CHANGE_EMAIL
    )
    statement = update(users).where(users.c.id == use.user_id, users.c.is_active.is_(True))
    if use.purpose is Purpose.VERIFY_EMAIL:
        # Bound to the address it was sent to: useless once the account's address changed.
        statement = statement.where(users.c.email == use.email)
    values = {"email": use.email, "email_verified": True, "updated_at": utc_now()}
    try:
        result = await connection.execute(statement.values(**values))
    except IntegrityViolation:  # the new address was taken meanwhile
        raise InvalidAccountToken() from None
    if not result.rowcount:
        raise InvalidAccountToken()
    if use.purpose is Purpose.CHANGE_EMAIL:
        # Links mailed to the previous address (a reset, a verification) die with it.
        await account_tokens.revoke_holder_tokens(connection, use.user_id)


async def request_password_reset(connection: Connection, recovery: Recovery, email: str) -> None:
    """A reset mail if ``email`` has an active account (else nothing)."""
    async with connection.transaction(_SAME_TIME_COMMIT):
        account = await _account_by_email(connection, email)
        if account is None or not account.is_active:
            return
        await _send_reset_link(
            connection, recovery, account.id, account.email, mails.reset_password
        )


async def _send_reset_link(
    connection: Connection,
    recovery: Recovery,
    user_id: uuid.UUID,
    email: str,
    mail_for: Callable[[str, str, int], mails.Mail],
) -> None:
    """Issue a reset token bound to ``email`` and mail it there (``mail_for(public_url,
    token, minutes)``)."""
    token = await account_tokens.issue(
        connection,
        user_id=user_id,
        purpose=Purpose.RESET_PASSWORD,
        email=email,
        ttl=recovery.reset_ttl,
    )
    await _send(connection, email, mail_for(recovery.public_url, token, recovery.reset_minutes))


async def check_reset_token(connection: Connection, token: str) -> str:
    """The address of the account a usable reset token belongs to (for the password policy),
    or ``InvalidAccountToken``."""
    use = await account_tokens.peek(connection, token, Purpose.RESET_PASSWORD)
    return use.email


async def reset_password(connection: Connection, token: str, password_hash: str) -> None:
    """Use a reset token: set the password and sign the account out everywhere (every other
    mailed link of the account dies too). The token is bound to the address it was sent to:
    once the account's address changed, it sets nothing. The mail reached that address, so
    the address is verified too."""
    use = await account_tokens.consume(connection, token, Purpose.RESET_PASSWORD)
    result = await connection.execute(
        update(users)
        .where(
            users.c.id == use.user_id,
            users.c.is_active.is_(True),
            users.c.email == use.email,
        )
        .values(password_hash=password_hash, email_verified=True, updated_at=utc_now())
    )
    if not result.rowcount:
        raise InvalidAccountToken()
    await sign_out_everywhere(connection, use.user_id)


async def request_email_change(
    connection: Connection,
    recovery: Recovery,
    *,
    user_id: uuid.UUID,
    current_email: str,
    new_email: str,
    send_confirmation: bool = True,
) -> None:
    """Mail a confirmation link to ``new_email``, and tell ``current_email`` with a link that
    cancels the change. The change itself happens when the first link is followed
    (``verify_email``). A new address that already has an account gets no link (the requester
    is not told, so addresses cannot be probed); nor does one whose mail budget is spent
    (``send_confirmation`` False). The notice always goes: it is the owner's way back if the
    request was not theirs."""
    if send_confirmation and await _account_by_email(connection, new_email) is None:
        token = await account_tokens.issue(
            connection,
            user_id=user_id,
            purpose=Purpose.CHANGE_EMAIL,
            email=new_email,
            ttl=recovery.verification_ttl,
        )
        await _send(
            connection,
            new_email,
            mails.confirm_new_address(recovery.public_url, token, recovery.verification_hours),
        )
    # As long as the change could be confirmed, the address it replaces can undo it.
    cancel = await account_tokens.issue(
        connection,
        user_id=user_id,
        purpose=Purpose.CANCEL_EMAIL_CHANGE,
        email=current_email,
        ttl=recovery.verification_ttl,
    )
    await _send(
        connection,
        current_email,
        mails.address_change_requested(
            recovery.public_url, new_email, cancel, recovery.verification_hours
        ),
    )


async def cancel_email_change(connection: Connection, recovery: Recovery, token: str) -> None:
    """Follow the link mailed to the address being replaced: no pending change can be
    confirmed any more, a change already confirmed is undone (the address the link reached
    comes back, verified, unless another account took it meanwhile), the account is signed
    out everywhere, and, its address restored, it is mailed a link to choose a new password
    (whoever asked for the change knew the current one)."""
    use = await account_tokens.consume(connection, token, Purpose.CANCEL_EMAIL_CHANGE)
    email = await connection.scalar(
        select(users.c.email).where(users.c.id == use.user_id).with_for_update()
    )
    if email is None:
        raise InvalidAccountToken()
    if email != use.email and await _account_by_email(connection, use.email) is None:
        try:
            await connection.execute(
                update(users)
                .where(users.c.id == use.user_id)
                .values(email=use.email, email_verified=True, updated_at=utc_now())
            )
        except IntegrityViolation:  # registered between the check and the update
            raise AddressTakenMeanwhile() from None
        email = use.email
    await sign_out_everywhere(connection, use.user_id)
    if email == use.email:
        await _send_reset_link(
            connection, recovery, use.user_id, use.email, mails.email_change_cancelled
        )
