"""Accounts in the browser: register, the mailed links (whose pages change nothing until their
form is posted), sign in and out, forgotten passwords, and my account."""

from __future__ import annotations

import uuid
from datetime import timedelta

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from bookshelf.auth import account_tokens as tokens
from bookshelf.auth import service
from bookshelf.auth.account_tokens import Purpose
from bookshelf.auth.models import account_tokens, auth_sessions
from bookshelf.db.database import unit_of_work
from bookshelf.users.models import users
from bookshelf.users.schemas import Role
from tests.conftest import AccountFactory
from tests.factories import Account, count_rows
from tests.mail.support import outbox
from tests.web.support import Browser, heading, mailed_token

PASSWORD = "correct horse battery staple"


def _email() -> str:
    return f"web-{uuid.uuid4().hex[:10]}@example.org"


async def _user(engine: AsyncEngine, email: str) -> dict[str, object]:
    async with engine.connect() as connection:
        row = (await connection.execute(select(users).where(users.c.email == email))).one()
    return dict(row._mapping)


async def _live_sessions(engine: AsyncEngine, user_id: object) -> int:
    return await count_rows(
        engine,
        auth_sessions,
        auth_sessions.c.user_id == user_id,
        auth_sessions.c.revoked_at.is_(None),
    )


async def _register(browser: Browser, email: str) -> httpx.Response:
    return await browser.submit(
        "/register",
        "/register",
        {"email": email, "password": PASSWORD, "display_name": "Ada"},
    )


async def test_register_follow_the_mailed_link_then_sign_in_and_out(
    browser: Browser, engine: AsyncEngine
) -> None:
    email = _email()
    registered = await _register(browser, email)
    token = await mailed_token(engine, email, "verify-email")

    refused_before = await browser.submit(
        "/sign-in", "/sign-in", {"email": email, "password": PASSWORD}
    )
    link_page = await browser.get(f"/verify-email?token={token}")
    confirmed = await browser.post("/verify-email", {"token": token})
    signed_in = await browser.submit("/sign-in", "/sign-in", {"email": email, "password": PASSWORD})
    home = await browser.get("/")
    signed_out = await browser.post("/sign-out")
    after = await browser.get("/account")

    assert registered.status_code == 200
    assert heading(registered) == "Check your mail"
    assert refused_before.status_code == 400  # unverified: refused as a wrong password
    assert "The email or password is wrong." in refused_before.text
    assert link_page.status_code == 200
    assert link_page.headers["cache-control"] == "no-store"
    assert heading(confirmed) == "Address confirmed"
    assert signed_in.status_code == 303
    assert signed_in.headers["location"] == "/"
    assert "Sign out" in home.text
    assert "My account" in home.text
    assert signed_out.status_code == 303
    assert after.status_code == 303  # signed out: the account page sends to sign in
    user = await _user(engine, email)
    assert user["email_verified"] is True
    assert await _live_sessions(engine, user["id"]) == 0


async def test_registering_a_taken_address_shows_the_same_page(
    browser: Browser, make_account: AccountFactory, engine: AsyncEngine
) -> None:
    taken = await make_account(Role.READER)
    fresh = await _register(browser, _email())
    again = await _register(browser, taken.email)
    assert (again.status_code, heading(again)) == (fresh.status_code, heading(fresh))
    mails = [row.kind for row in await outbox(engine) if row.recipient == taken.email]
    assert mails == ["already-registered"]


async def test_a_weak_password_is_shown_beside_its_field(browser: Browser) -> None:
    response = await browser.submit(
        "/register", "/register", {"email": _email(), "password": "password"}
    )
    assert response.status_code == 422
    assert 'id="error-password"' in response.text
    assert 'aria-invalid="true"' in response.text


@pytest.mark.parametrize("page", ["verify-email", "reset-password", "cancel-email-change"])
async def test_opening_a_mailed_link_changes_nothing(
    app: FastAPI, browser: Browser, make_account: AccountFactory, engine: AsyncEngine, page: str
) -> None:
    """A link scanner or a prefetch that follows the link (GET, HEAD) leaves the token usable
    and the account as it was; only the page's form uses it."""
    account = await make_account(Role.READER)
    token = await _issue(app, account, page)
    before = await _tokens_and_account(engine, account)

    shown = await browser.get(f"/{page}?token={token}")
    await browser.client.head(f"/{page}?token={token}")
    await browser.get(f"/{page}?token={token}")

    assert shown.status_code == 200
    assert f'name="token" value="{token}"' in shown.text
    assert shown.headers["cache-control"] == "no-store"
    assert await _tokens_and_account(engine, account) == before
    used = await browser.post(f"/{page}", {"token": token, "new_password": f"{PASSWORD} two"})
    assert used.status_code == 200, used.text
    assert await _tokens_and_account(engine, account) != before


async def _issue(app: FastAPI, account: Account, page: str) -> str:
    purpose = {
        "verify-email": Purpose.VERIFY_EMAIL,
        "reset-password": Purpose.RESET_PASSWORD,
        "cancel-email-change": Purpose.CANCEL_EMAIL_CHANGE,
    }[page]
    async with unit_of_work(app.state.database, write=True) as connection:
        return await tokens.issue(
            connection,
            user_id=account.id,
            purpose=purpose,
            email=account.email,
            ttl=timedelta(hours=1),
        )


async def _tokens_and_account(engine: AsyncEngine, account: Account) -> tuple[object, ...]:
    async with engine.connect() as connection:
        used = (
            await connection.execute(
                select(account_tokens.c.used_at).where(account_tokens.c.user_id == account.id)
            )
        ).all()
    user = await _user(engine, account.email)
    return (
        tuple(used),
        user["password_hash"],
        user["email"],
        user["email_verified"],
        await _live_sessions(engine, account.id),
    )


@pytest.mark.parametrize("page", ["verify-email", "reset-password", "cancel-email-change"])
async def test_a_used_or_made_up_link_is_a_readable_400_page(browser: Browser, page: str) -> None:
    await browser.get(f"/{page}?token=made-up")
    response = await browser.post(
        f"/{page}", {"token": "made-up", "new_password": f"{PASSWORD} two"}
    )
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("text/html")
    assert "This link is invalid, has expired or was already used" in response.text


async def test_forgot_password_then_the_link_signs_every_session_out(
    browser: Browser, make_account: AccountFactory, engine: AsyncEngine, app: FastAPI
) -> None:
    account = await make_account(Role.READER)
    async with Browser(app) as elsewhere:
        elsewhere.sign_in_as(account)
        assert (await elsewhere.get("/account")).status_code == 200

        asked = await browser.submit(
            "/forgot-password", "/forgot-password", {"email": account.email}
        )
        unknown = await browser.submit("/forgot-password", "/forgot-password", {"email": _email()})
        token = await mailed_token(engine, account.email, "reset-password")
        weak = await browser.submit(
            f"/reset-password?token={token}",
            "/reset-password",
            {"token": token, "new_password": "short"},
        )
        done = await browser.post(
            "/reset-password", {"token": token, "new_password": f"{PASSWORD} anew"}
        )
        signed_out_elsewhere = await elsewhere.get("/account")
    signed_in = await browser.submit(
        "/sign-in", "/sign-in", {"email": account.email, "password": f"{PASSWORD} anew"}
    )

    assert heading(asked) == heading(unknown) == "Check your mail"
    assert weak.status_code == 422
    assert heading(done) == "Password changed"
    assert signed_out_elsewhere.status_code == 303
    assert signed_in.status_code == 303


async def test_the_reset_page_without_a_token_asks_for_a_link(browser: Browser) -> None:
    response = await browser.get("/reset-password")
    assert response.status_code == 200
    assert 'action="/forgot-password"' in response.text


async def test_resend_verification_mails_an_unverified_account_only(
    browser: Browser, make_account: AccountFactory, engine: AsyncEngine
) -> None:
    email = _email()
    await _register(browser, email)
    verified = await make_account(Role.READER)
    for address in (email, verified.email):
        response = await browser.submit(
            "/resend-verification", "/resend-verification", {"email": address}
        )
        assert heading(response) == "Check your mail"
    kinds = [(row.recipient, row.kind) for row in await outbox(engine)]
    assert kinds.count((email, "verify-email")) == 2
    assert (verified.email, "verify-email") not in kinds


async def test_sign_in_goes_back_to_a_local_page_only(
    browser: Browser, make_account: AccountFactory
) -> None:
    account = await make_account(Role.READER)
    credentials = {"email": account.email, "password": account.password}
    for wanted, landed in (
        ("/account", "/account"),
        ("//evil.example/x", "/"),
        ("https://evil.example", "/"),
    ):
        await browser.get(f"/sign-in?next={wanted}")
        response = await browser.post("/sign-in", {**credentials, "next": wanted})
        assert response.headers["location"] == landed


# --- my account -------------------------------------------------------------------------------


async def test_change_name_password_and_address(
    app: FastAPI, browser: Browser, make_account: AccountFactory, engine: AsyncEngine
) -> None:
    account = await make_account(Role.READER)
    browser.sign_in_as(account)
    async with Browser(app) as other:
        other.sign_in_as(await _second_session(app, account))

        named = await browser.submit("/account", "/account/name", {"display_name": "Grace"})
        wrong = await browser.post(
            "/account/password", {"current_password": "not it", "password": f"{PASSWORD} 2"}
        )
        changed = await browser.post(
            "/account/password",
            {"current_password": account.password, "password": f"{PASSWORD} 2"},
        )
        kept = await browser.get("/account?done=password")
        other_after = await other.get("/account")
        new_email = _email()
        moved = await browser.submit(
            "/account",
            "/account/email",
            {"email": new_email, "current_password": f"{PASSWORD} 2"},
        )

    assert named.headers["location"] == "/account?done=name"
    assert wrong.status_code == 422
    assert 'id="error-password-current_password"' in wrong.text
    assert changed.headers["location"] == "/account?done=password"
    assert kept.status_code == 200  # this session stays
    assert "Your password is changed" in kept.text
    assert other_after.status_code == 303  # the other one ends
    assert heading(moved) == "Check your new address"
    user = await _user(engine, account.email)  # unchanged until the link is followed
    assert user["display_name"] == "Grace"
    recipients = {row.recipient for row in await outbox(engine)}
    assert {new_email, account.email} <= recipients


async def _second_session(app: FastAPI, account: Account) -> Account:
    async with unit_of_work(app.state.database, write=True) as connection:
        tokens = await service.start_session(connection, app.state.auth, account.id)
    return Account(
        account.id,
        account.email,
        account.password,
        account.role,
        tokens.access_token,
        tokens.refresh_token,
    )


async def test_sign_out_everywhere_ends_every_session(
    app: FastAPI, browser: Browser, make_account: AccountFactory, engine: AsyncEngine
) -> None:
    account = await make_account(Role.READER)
    browser.sign_in_as(account)
    await browser.get("/account")
    response = await browser.post("/account/sign-out-everywhere")
    api = await browser.client.get("/api/v1/users/me", headers=account.headers)
    assert response.headers["location"] == "/sign-in?notice=everywhere"
    assert await _live_sessions(engine, account.id) == 0
    assert api.status_code == 401
    notice = await browser.get("/sign-in?notice=everywhere")
    assert "Every session of your account was signed out." in notice.text


async def test_an_unverified_session_reads_but_does_not_write(
    browser: Browser, make_account: AccountFactory, engine: AsyncEngine
) -> None:
    account = await make_account(Role.READER)
    async with engine.begin() as connection:
        await connection.execute(
            users.update().where(users.c.id == account.id).values(email_verified=False)
        )
    browser.sign_in_as(account)
    page = await browser.get("/account")
    refused = await browser.post("/account/name", {"display_name": "Changed"})
    signed_out = await browser.post("/sign-out")
    assert page.status_code == 200
    assert refused.status_code == 403
    assert "Confirm your email address first" in refused.text
    assert signed_out.status_code == 303
