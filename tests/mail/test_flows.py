"""The flows end to end, through a real SMTP server: register, verify, review; forgotten
password; email change. Each on SQLite and PostgreSQL."""

from __future__ import annotations

import httpx
from fastapi import FastAPI
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from bookshelf.auth.models import account_tokens
from bookshelf.users.models import users
from tests.conftest import Account, AccountFactory
from tests.factories import (
    ME,
    PASSPHRASE,
    assert_problem,
    bearer,
    create_book,
    login,
    register,
    reviews_path,
)
from tests.mail.conftest import PUBLIC_URL
from tests.mail.support import SmtpServer, drain, token_in, worker_for

VERIFY = "/api/v1/auth/verify-email"
RESEND = "/api/v1/auth/verify-email/resend"
RESET = "/api/v1/auth/password-reset"
CONFIRM = "/api/v1/auth/password-reset/confirm"
NEW_PASSPHRASE = "a brand new and long passphrase"


async def signed_in(client: httpx.AsyncClient, email: str, password: str) -> dict[str, str]:
    response = await login(client, email, password)
    assert response.status_code == 200, response.text
    return bearer(response.json()["access_token"])


async def test_register_mail_verify_then_sign_in_and_write_a_review(
    app: FastAPI, client: httpx.AsyncClient, anonymous_client: httpx.AsyncClient, smtp: SmtpServer
) -> None:
    book = await create_book(client)
    assert (await register(anonymous_client, email="ada@example.org")).status_code == 202
    # Verification is required: until the link is followed, the right password is refused
    # exactly as a wrong one (else registering a taken address would tell it is taken).
    early = await login(anonymous_client, "ada@example.org", PASSPHRASE)
    assert_problem(early, 400, "invalid-grant")
    assert smtp.recorder.messages == []  # nothing is sent from the request

    assert await drain(worker_for(app, smtp.url)) == 1
    [mail] = smtp.recorder.to("ada@example.org")
    assert mail["Subject"] == "Confirm your email address for Bookshelf"
    assert f"{PUBLIC_URL}/verify-email?token=" in mail.get_content()
    assert "Signing in works once the address is confirmed" in mail.get_content()
    token = token_in(mail, "verify-email")
    assert len(token) >= 22  # >= 128 bits in URL-safe base64

    verified = await anonymous_client.post(VERIFY, json={"token": token})
    again = await anonymous_client.post(VERIFY, json={"token": token})
    headers = await signed_in(anonymous_client, "ada@example.org", PASSPHRASE)
    review = await anonymous_client.post(
        reviews_path(book["id"]), json={"rating": 5}, headers=headers
    )

    assert verified.status_code == 204, verified.text
    assert_problem(again, 400, "invalid-account-token")  # single use
    assert review.status_code == 201, review.text
    assert (await anonymous_client.get(ME, headers=headers)).json()["email_verified"] is True


async def test_only_a_hash_of_the_token_is_stored(
    app: FastAPI, anonymous_client: httpx.AsyncClient, smtp: SmtpServer, engine: AsyncEngine
) -> None:
    await register(anonymous_client, email="hash@example.org")
    await drain(worker_for(app, smtp.url))
    token = token_in(smtp.recorder.to("hash@example.org")[0], "verify-email")

    async with engine.connect() as connection:
        stored = list((await connection.execute(select(account_tokens))).mappings())
    assert len(stored) == 1
    assert token not in str(stored)
    assert stored[0]["purpose"] == "verify-email"


async def test_a_resent_link_supersedes_the_first(
    app: FastAPI, anonymous_client: httpx.AsyncClient, smtp: SmtpServer
) -> None:
    await register(anonymous_client, email="twice@example.org")
    resent = await anonymous_client.post(RESEND, json={"email": "twice@example.org"})
    await drain(worker_for(app, smtp.url))
    first, second = (token_in(m, "verify-email") for m in smtp.recorder.to("twice@example.org"))

    assert resent.status_code == 202
    assert_problem(
        await anonymous_client.post(VERIFY, json={"token": first}), 400, "invalid-account-token"
    )
    assert (await anonymous_client.post(VERIFY, json={"token": second})).status_code == 204


async def test_an_expired_or_unknown_token_is_refused(
    app: FastAPI, anonymous_client: httpx.AsyncClient, smtp: SmtpServer, engine: AsyncEngine
) -> None:
    await register(anonymous_client, email="late@example.org")
    await drain(worker_for(app, smtp.url))
    token = token_in(smtp.recorder.to("late@example.org")[0], "verify-email")
    async with engine.begin() as connection:
        await connection.execute(
            update(account_tokens).values(expires_at=account_tokens.c.created_at)
        )

    for sent in (token, "not-a-token", token + "x"):
        assert_problem(
            await anonymous_client.post(VERIFY, json={"token": sent}), 400, "invalid-account-token"
        )


async def test_forgotten_password_mail_confirm_signs_out_everywhere(
    app: FastAPI,
    anonymous_client: httpx.AsyncClient,
    make_account: AccountFactory,
    smtp: SmtpServer,
) -> None:
    account: Account = await make_account()
    old_session = account.headers

    asked = await anonymous_client.post(RESET, json={"email": account.email})
    await drain(worker_for(app, smtp.url))
    [mail] = smtp.recorder.to(account.email)
    token = token_in(mail, "reset-password")
    weak = await anonymous_client.post(
        CONFIRM, json={"token": token, "new_password": "password1234"}
    )
    confirmed = await anonymous_client.post(
        CONFIRM, json={"token": token, "new_password": NEW_PASSPHRASE}
    )
    reused = await anonymous_client.post(
        CONFIRM, json={"token": token, "new_password": NEW_PASSPHRASE + "!"}
    )

    assert asked.status_code == 202
    assert f"{PUBLIC_URL}/reset-password?token=" in mail.get_content()
    assert_problem(weak, 422, "validation-error")  # and the token still works after it
    assert confirmed.status_code == 204, confirmed.text
    assert_problem(reused, 400, "invalid-account-token")
    assert (await anonymous_client.get(ME, headers=old_session)).status_code == 401
    assert (await login(anonymous_client, account.email, account.password)).status_code == 400
    assert (await login(anonymous_client, account.email, NEW_PASSPHRASE)).status_code == 200


async def test_email_change_is_confirmed_from_the_new_address(
    app: FastAPI,
    anonymous_client: httpx.AsyncClient,
    make_account: AccountFactory,
    smtp: SmtpServer,
    engine: AsyncEngine,
) -> None:
    account: Account = await make_account()

    wrong = await anonymous_client.patch(
        ME,
        json={"email": "new@example.org", "current_password": "not it at all"},
        headers=account.headers,
    )
    asked = await anonymous_client.patch(
        ME,
        json={"email": "New@Example.org", "current_password": account.password},
        headers=account.headers,
    )
    await drain(worker_for(app, smtp.url))
    [confirmation] = smtp.recorder.to("new@example.org")
    [notice] = smtp.recorder.to(account.email)
    unchanged = (await anonymous_client.get(ME, headers=account.headers)).json()["email"]
    confirmed = await anonymous_client.post(
        VERIFY, json={"token": token_in(confirmation, "verify-email")}
    )

    assert_problem(wrong, 422, "wrong-current-password")
    assert asked.status_code == 202, asked.text
    assert "new@example.org" in notice.get_content()
    assert unchanged == account.email
    assert confirmed.status_code == 204, confirmed.text
    assert (await login(anonymous_client, "new@example.org", account.password)).status_code == 200
    assert (await login(anonymous_client, account.email, account.password)).status_code == 400
    async with engine.connect() as connection:
        row = (await connection.execute(select(users).where(users.c.id == account.id))).one()
    assert (row.email, row.email_verified) == ("new@example.org", True)


async def test_an_admin_marks_an_address_verified(
    anonymous_client: httpx.AsyncClient, client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    await register(anonymous_client, email="vouched@example.org")
    async with engine.connect() as connection:
        user_id = await connection.scalar(
            select(users.c.id).where(users.c.email == "vouched@example.org")
        )

    response = await client.patch(f"/api/v1/users/{user_id}", json={"email_verified": True})

    assert response.status_code == 200, response.text
    assert response.json()["email_verified"] is True
