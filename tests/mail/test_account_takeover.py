"""The flows that change who holds an account, together: a password reset or change, "sign out
everywhere", a deactivation and an address change each void every other way back in (the
links mailed for the account's holder, and sessions), while the link that cancels an address
change stays in the previous address's hands. Through a real SMTP server, on both databases."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from bookshelf.auth import account_tokens
from bookshelf.auth.account_tokens import HOLDER_PURPOSES, Purpose
from bookshelf.auth.exceptions import InvalidAccountToken
from bookshelf.auth.models import account_tokens as account_tokens_table
from bookshelf.db.database import unit_of_work
from bookshelf.db.types import utc_now
from bookshelf.users.models import users
from bookshelf.users.schemas import Role
from tests.conftest import Account, AccountFactory
from tests.factories import ME, assert_problem, login
from tests.mail.conftest import PUBLIC_URL
from tests.mail.support import SmtpServer, drain, token_in, worker_for

VERIFY = "/api/v1/auth/verify-email"
RESEND = "/api/v1/auth/verify-email/resend"
RESET = "/api/v1/auth/password-reset"
CONFIRM = "/api/v1/auth/password-reset/confirm"
CANCEL = "/api/v1/auth/email-change/cancel"
EVERYWHERE = "/api/v1/auth/logout-everywhere"
ATTACKER = "attacker@evil.example"
OWNERS_NEW_PASSWORD = "the owner's brand new passphrase"
ATTACKERS_PASSWORD = "the attacker's chosen passphrase"


class Mailbox:
    """What the SMTP server received, delivered by a worker on demand."""

    def __init__(self, app: FastAPI, smtp: SmtpServer) -> None:
        self.worker = worker_for(app, smtp.url)
        self.smtp = smtp

    async def token(self, recipient: str, page: str) -> str:
        """The token of the newest mail to ``recipient`` linking to ``page``."""
        await drain(self.worker)
        for message in reversed(self.smtp.recorder.to(recipient)):
            if f"/{page}?token=" in message.get_content():
                return token_in(message, page)
        raise AssertionError(f"no {page} mail to {recipient}")


@pytest.fixture
def mailbox(app: FastAPI, smtp: SmtpServer) -> Mailbox:
    return Mailbox(app, smtp)


async def ask_email_change(
    client: httpx.AsyncClient, account: Account, new_email: str, headers: dict[str, str]
) -> None:
    asked = await client.patch(
        ME, json={"email": new_email, "current_password": account.password}, headers=headers
    )
    assert asked.status_code == 202, asked.text


async def reset_password(
    client: httpx.AsyncClient, mailbox: Mailbox, email: str, new_password: str
) -> httpx.Response:
    assert (await client.post(RESET, json={"email": email})).status_code == 202
    token = await mailbox.token(email, "reset-password")
    return await client.post(CONFIRM, json={"token": token, "new_password": new_password})


async def stored_email(engine: AsyncEngine, account: Account) -> tuple[str, bool]:
    async with engine.connect() as connection:
        row = (
            await connection.execute(
                select(users.c.email, users.c.email_verified).where(users.c.id == account.id)
            )
        ).one()
    return row.email, row.email_verified


async def test_a_password_reset_voids_a_pending_email_change(
    anonymous_client: httpx.AsyncClient,
    make_account: AccountFactory,
    mailbox: Mailbox,
    engine: AsyncEngine,
) -> None:
    """The takeover the issue reproduced: someone who knows the password asks to move the
    account to their own address; the owner resets the password; the attacker's confirmation
    link must not work afterwards (else a reset through the new address takes the account)."""
    owner = await make_account()
    await ask_email_change(anonymous_client, owner, ATTACKER, owner.headers)
    attackers_link = await mailbox.token(ATTACKER, "verify-email")

    reset = await reset_password(anonymous_client, mailbox, owner.email, OWNERS_NEW_PASSWORD)
    confirmed = await anonymous_client.post(VERIFY, json={"token": attackers_link})
    attackers_reset = await anonymous_client.post(RESET, json={"email": ATTACKER})

    assert reset.status_code == 204, reset.text
    assert_problem(confirmed, 400, "invalid-account-token")
    assert attackers_reset.status_code == 202  # same answer, but the address has no account
    assert await stored_email(engine, owner) == (owner.email, True)
    assert (await login(anonymous_client, owner.email, OWNERS_NEW_PASSWORD)).status_code == 200


async def set_verified(engine: AsyncEngine, account: Account, verified: bool) -> None:
    async with engine.begin() as connection:
        await connection.execute(
            update(users).where(users.c.id == account.id).values(email_verified=verified)
        )


async def outstanding_links(
    client: httpx.AsyncClient, mailbox: Mailbox, engine: AsyncEngine, account: Account
) -> dict[str, str]:
    """One live link of every holder's purpose for ``account``: an email change, a reset and
    a verification (asked for while the address was briefly marked unverified)."""
    await ask_email_change(client, account, "moving@example.org", account.headers)
    assert (await client.post(RESET, json={"email": account.email})).status_code == 202
    await set_verified(engine, account, False)
    assert (await client.post(RESEND, json={"email": account.email})).status_code == 202
    await set_verified(engine, account, True)
    return {
        "change": await mailbox.token("moving@example.org", "verify-email"),
        "reset": await mailbox.token(account.email, "reset-password"),
        "verification": await mailbox.token(account.email, "verify-email"),
    }


Flow = Callable[[httpx.AsyncClient, FastAPI, Account, AccountFactory], Awaitable[None]]


async def _change_password(
    client: httpx.AsyncClient, _app: FastAPI, account: Account, _make: AccountFactory
) -> None:
    changed = await client.patch(
        ME,
        json={"password": OWNERS_NEW_PASSWORD, "current_password": account.password},
        headers=account.headers,
    )
    assert changed.status_code == 200, changed.text


async def _sign_out_everywhere(
    client: httpx.AsyncClient, _app: FastAPI, account: Account, _make: AccountFactory
) -> None:
    signed_out = await client.post(EVERYWHERE, headers=account.headers)
    assert signed_out.status_code == 204, signed_out.text
    assert (await client.get(ME, headers=account.headers)).status_code == 401


async def _deactivate(
    client: httpx.AsyncClient, _app: FastAPI, account: Account, make: AccountFactory
) -> None:
    admin = await make(Role.ADMIN)
    deactivated = await client.patch(
        f"/api/v1/users/{account.id}", json={"is_active": False}, headers=admin.headers
    )
    assert deactivated.status_code == 200, deactivated.text
    reactivated = await client.patch(
        f"/api/v1/users/{account.id}", json={"is_active": True}, headers=admin.headers
    )
    assert reactivated.status_code == 200, reactivated.text


@pytest.mark.parametrize(
    "flow",
    [_change_password, _sign_out_everywhere, _deactivate],
    ids=["password-change", "sign-out-everywhere", "deactivation"],
)
async def test_each_flow_that_takes_an_account_back_voids_every_mailed_link(
    app: FastAPI,
    anonymous_client: httpx.AsyncClient,
    make_account: AccountFactory,
    mailbox: Mailbox,
    engine: AsyncEngine,
    flow: Flow,
) -> None:
    account = await make_account()
    links = await outstanding_links(anonymous_client, mailbox, engine, account)

    await flow(anonymous_client, app, account, make_account)

    for used in (
        await anonymous_client.post(VERIFY, json={"token": links["change"]}),
        await anonymous_client.post(VERIFY, json={"token": links["verification"]}),
        await anonymous_client.post(
            CONFIRM, json={"token": links["reset"], "new_password": ATTACKERS_PASSWORD}
        ),
    ):
        assert_problem(used, 400, "invalid-account-token")
    assert (await stored_email(engine, account))[0] == account.email


async def test_a_reset_link_dies_when_the_address_changes(
    anonymous_client: httpx.AsyncClient,
    make_account: AccountFactory,
    mailbox: Mailbox,
    engine: AsyncEngine,
) -> None:
    account = await make_account()
    assert (await anonymous_client.post(RESET, json={"email": account.email})).status_code == 202
    old_reset = await mailbox.token(account.email, "reset-password")
    await ask_email_change(anonymous_client, account, "next@example.org", account.headers)
    confirmed = await anonymous_client.post(
        VERIFY, json={"token": await mailbox.token("next@example.org", "verify-email")}
    )

    used = await anonymous_client.post(
        CONFIRM, json={"token": old_reset, "new_password": ATTACKERS_PASSWORD}
    )

    assert confirmed.status_code == 204, confirmed.text
    assert_problem(used, 400, "invalid-account-token")
    assert (await login(anonymous_client, "next@example.org", account.password)).status_code == 200


async def test_the_notice_cancels_a_pending_change(
    anonymous_client: httpx.AsyncClient,
    make_account: AccountFactory,
    mailbox: Mailbox,
    engine: AsyncEngine,
    smtp: SmtpServer,
) -> None:
    owner = await make_account()
    await ask_email_change(anonymous_client, owner, ATTACKER, owner.headers)
    attackers_link = await mailbox.token(ATTACKER, "verify-email")
    cancel = await mailbox.token(owner.email, "cancel-email-change")
    [notice] = [m for m in smtp.recorder.to(owner.email) if "cancel-email-change" in str(m)]

    cancelled = await anonymous_client.post(CANCEL, json={"token": cancel})
    again = await anonymous_client.post(CANCEL, json={"token": cancel})
    confirmed = await anonymous_client.post(VERIFY, json={"token": attackers_link})

    assert f"{PUBLIC_URL}/cancel-email-change?token=" in notice.get_content()
    assert ATTACKER in notice.get_content()
    assert cancelled.status_code == 204, cancelled.text
    assert_problem(again, 400, "invalid-account-token")
    assert_problem(confirmed, 400, "invalid-account-token")
    assert (await anonymous_client.get(ME, headers=owner.headers)).status_code == 401
    assert await stored_email(engine, owner) == (owner.email, True)
    # The owner is sent a link to choose a new password: the requester knew the current one.
    reset = await mailbox.token(owner.email, "reset-password")
    chosen = await anonymous_client.post(
        CONFIRM, json={"token": reset, "new_password": OWNERS_NEW_PASSWORD}
    )
    assert chosen.status_code == 204, chosen.text


async def test_the_notice_undoes_a_confirmed_change_even_after_the_new_holder_acted(
    anonymous_client: httpx.AsyncClient,
    make_account: AccountFactory,
    mailbox: Mailbox,
    engine: AsyncEngine,
) -> None:
    """The attacker confirms at once, signs in with the new address, changes the password
    and asks for a reset there: the cancel link, in the owner's mailbox, still brings the
    address back, ends the attacker's sessions and kills the attacker's reset link."""
    owner = await make_account()
    await ask_email_change(anonymous_client, owner, ATTACKER, owner.headers)
    cancel = await mailbox.token(owner.email, "cancel-email-change")
    confirmed = await anonymous_client.post(
        VERIFY, json={"token": await mailbox.token(ATTACKER, "verify-email")}
    )
    assert confirmed.status_code == 204, confirmed.text
    attacker = await login(anonymous_client, ATTACKER, owner.password)
    assert attacker.status_code == 200, attacker.text
    attackers_headers = {"Authorization": f"Bearer {attacker.json()['access_token']}"}
    changed = await anonymous_client.patch(
        ME,
        json={"password": ATTACKERS_PASSWORD, "current_password": owner.password},
        headers=attackers_headers,
    )
    assert changed.status_code == 200, changed.text
    assert (await anonymous_client.post(RESET, json={"email": ATTACKER})).status_code == 202
    attackers_reset = await mailbox.token(ATTACKER, "reset-password")

    cancelled = await anonymous_client.post(CANCEL, json={"token": cancel})

    assert cancelled.status_code == 204, cancelled.text
    assert await stored_email(engine, owner) == (owner.email, True)
    assert (await anonymous_client.get(ME, headers=attackers_headers)).status_code == 401
    assert_problem(
        await anonymous_client.post(
            CONFIRM, json={"token": attackers_reset, "new_password": "yet another passphrase"}
        ),
        400,
        "invalid-account-token",
    )
    assert (await login(anonymous_client, ATTACKER, ATTACKERS_PASSWORD)).status_code == 400
    reset = await mailbox.token(owner.email, "reset-password")
    chosen = await anonymous_client.post(
        CONFIRM, json={"token": reset, "new_password": OWNERS_NEW_PASSWORD}
    )
    assert chosen.status_code == 204, chosen.text
    assert (await login(anonymous_client, owner.email, OWNERS_NEW_PASSWORD)).status_code == 200


async def test_the_cancel_link_expires_with_the_change_it_could_cancel(
    anonymous_client: httpx.AsyncClient,
    make_account: AccountFactory,
    mailbox: Mailbox,
    engine: AsyncEngine,
) -> None:
    owner = await make_account()
    await ask_email_change(anonymous_client, owner, ATTACKER, owner.headers)
    cancel = await mailbox.token(owner.email, "cancel-email-change")
    async with engine.connect() as connection:
        lifetimes = {
            row.purpose: row.expires_at - row.created_at
            for row in await connection.execute(select(account_tokens_table))
        }
    async with engine.begin() as connection:
        await connection.execute(
            update(account_tokens_table).values(expires_at=account_tokens_table.c.created_at)
        )

    late = await anonymous_client.post(CANCEL, json={"token": cancel})

    assert lifetimes["cancel-email-change"] == lifetimes["change-email"]
    assert_problem(late, 400, "invalid-account-token")


@pytest.mark.parametrize("purpose", HOLDER_PURPOSES, ids=lambda purpose: purpose.value)
async def test_tokens_issued_at_once_leave_exactly_one_alive(
    app: FastAPI, make_account: AccountFactory, engine: AsyncEngine, purpose: Purpose
) -> None:
    """Five issued concurrently, each on its own connection and transaction."""
    account = await make_account()

    async def issue() -> str:
        async with unit_of_work(app.state.database, write=True) as connection:
            return await account_tokens.issue(
                connection,
                user_id=account.id,
                purpose=purpose,
                email=account.email,
                ttl=timedelta(hours=1),
            )

    issued = await asyncio.gather(*(issue() for _ in range(5)))
    alive = []
    for token in issued:
        async with unit_of_work(app.state.database, write=False) as connection:
            try:
                await account_tokens.peek(connection, token, purpose)
            except InvalidAccountToken:  # superseded
                pass
            else:
                alive.append(token)

    assert len(alive) == 1
    async with engine.connect() as connection:
        live_rows = (
            await connection.execute(
                select(account_tokens_table).where(
                    account_tokens_table.c.user_id == account.id,
                    account_tokens_table.c.used_at.is_(None),
                    account_tokens_table.c.expires_at > utc_now(),
                )
            )
        ).all()
    assert len(live_rows) == 1
