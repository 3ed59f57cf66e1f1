"""POST /api/v1/auth/register: the account, email rules, password policy, mass assignment."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from bookshelf.auth.passwords import password_problems
from bookshelf.auth.routes import REGISTERED
from bookshelf.mail.models import mail_outbox
from bookshelf.users.models import users
from tests.factories import (
    ME,
    PASSPHRASE,
    REGISTER,
    USER_KEYS,
    assert_problem,
    bearer,
    count_rows,
    login,
    register,
)

COMMON_PASSWORDS = ["password1234", "qwerty123456", "Password1234"]


async def outbox_kinds(engine: AsyncEngine, recipient: str) -> list[str]:
    async with engine.connect() as connection:
        rows = await connection.execute(
            select(mail_outbox.c.kind)
            .where(mail_outbox.c.recipient == recipient)
            .order_by(mail_outbox.c.created_at)
        )
        return list(rows.scalars())


async def stored_user(engine: AsyncEngine, email: str) -> Any:
    async with engine.connect() as connection:
        return (await connection.execute(select(users).where(users.c.email == email))).first()


def assert_names_password(response: httpx.Response) -> str:
    """A 422 whose single error is about the password; returns its message."""
    problem = assert_problem(response, 422, "validation-error")
    assert len(problem["errors"]) == 1, problem["errors"]
    error = problem["errors"][0]
    assert "password" in error["loc"] or "password" in error["msg"], error
    message: str = error["msg"]
    return message


# --- success ---------------------------------------------------------------------------------


def assert_accepted(response: httpx.Response) -> None:
    """202 with the one body every registration gets, taken address or not."""
    assert response.status_code == 202, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"detail": REGISTERED.detail}
    assert "location" not in response.headers


async def test_register_returns_202_and_stores_an_unverified_reader(
    anonymous_client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    response = await register(
        anonymous_client, email="grace@example.org", password=PASSPHRASE, display_name="Grace"
    )

    assert_accepted(response)
    assert PASSPHRASE not in response.text
    row = await stored_user(engine, "grace@example.org")
    assert row.role == "reader"
    assert row.display_name == "Grace"
    assert row.is_active is True
    assert row.email_verified is False
    assert row.created_at == row.updated_at


async def test_the_password_is_stored_as_an_argon2id_hash(
    anonymous_client: httpx.AsyncClient, engine: AsyncEngine, app: FastAPI
) -> None:
    await register(anonymous_client, email="hash@example.org", password=PASSPHRASE)

    stored = (await stored_user(engine, "hash@example.org")).password_hash

    assert stored.startswith("$argon2id$")
    assert PASSPHRASE not in stored
    assert await app.state.auth.hasher.verify(PASSPHRASE, stored) is True
    assert await app.state.auth.hasher.verify(PASSPHRASE + "x", stored) is False


async def test_a_registered_account_signs_in_and_reads_itself_unverified(
    anonymous_client: httpx.AsyncClient,
) -> None:
    await register(anonymous_client, email="lin@example.org")

    tokens = await login(anonymous_client, "lin@example.org", PASSPHRASE)
    me = await anonymous_client.get(ME, headers=bearer(tokens.json()["access_token"]))

    assert tokens.status_code == 200, tokens.text
    assert me.status_code == 200
    assert set(me.json()) == USER_KEYS
    assert me.json()["email"] == "lin@example.org"
    assert me.json()["role"] == "reader"
    assert me.json()["email_verified"] is False


async def test_display_name_is_optional_and_trimmed(
    anonymous_client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    await register(anonymous_client, email="without@example.org")
    await register(anonymous_client, email="trimmed@example.org", display_name="  Ada  ")

    assert (await stored_user(engine, "without@example.org")).display_name is None
    assert (await stored_user(engine, "trimmed@example.org")).display_name == "Ada"


async def test_display_name_up_to_the_documented_length_is_accepted(
    anonymous_client: httpx.AsyncClient, app: FastAPI, engine: AsyncEngine
) -> None:
    """The OpenAPI document promises names up to maxLength; one more character is a 422."""
    schema = app.openapi()["components"]["schemas"]["Registration"]["properties"]["display_name"]
    limit = next(option["maxLength"] for option in schema["anyOf"] if "maxLength" in option)

    longest = await register(anonymous_client, email="long@example.org", display_name="n" * limit)
    too_long = await register(anonymous_client, display_name="n" * (limit + 1))

    assert_accepted(longest)
    assert (await stored_user(engine, "long@example.org")).display_name == "n" * limit
    assert_problem(too_long, 422, "validation-error")


# --- email -----------------------------------------------------------------------------------


@pytest.mark.parametrize("typed", [" Ada@Example.ORG ", "Ada@Example.ORG", "ADA@EXAMPLE.ORG"])
async def test_email_is_normalised(
    anonymous_client: httpx.AsyncClient, engine: AsyncEngine, typed: str
) -> None:
    response = await register(anonymous_client, email=typed)

    assert_accepted(response)
    assert (await stored_user(engine, "ada@example.org")) is not None
    assert (await login(anonymous_client, "Ada@EXAMPLE.org", PASSPHRASE)).status_code == 200


@pytest.mark.parametrize("again", ["ada@example.org", "ADA@example.org", "Ada@Example.Org"])
async def test_a_taken_email_in_any_case_gets_the_same_answer_and_changes_nothing(
    anonymous_client: httpx.AsyncClient, engine: AsyncEngine, again: str
) -> None:
    first = await register(anonymous_client, email="ada@example.org")

    response = await register(anonymous_client, email=again, password="another long passphrase")

    assert_accepted(response)
    assert response.json() == first.json()
    assert await count_rows(engine, users) == 1
    assert (await login(anonymous_client, "ada@example.org", PASSPHRASE)).status_code == 200
    # The owner is told instead: one verification mail, then one warning.
    kinds = await outbox_kinds(engine, "ada@example.org")
    assert kinds == ["verify-email", "already-registered"]


async def test_concurrent_registrations_of_one_email_create_one_account(
    anonymous_client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    responses = await asyncio.gather(
        *(register(anonymous_client, email=email) for email in ("twin@example.org",) * 3)
    )

    assert [response.status_code for response in responses] == [202] * 3
    assert await count_rows(engine, users) == 1
    assert sorted(await outbox_kinds(engine, "twin@example.org")) == [
        "already-registered",
        "already-registered",
        "verify-email",
    ]


@pytest.mark.parametrize(
    "email", ["not-an-email", "ada@example", "@example.org", "ada@", "ada@@example.org", ""]
)
async def test_invalid_email_returns_422(
    anonymous_client: httpx.AsyncClient, engine: AsyncEngine, email: str
) -> None:
    response = await register(anonymous_client, email=email)

    problem = assert_problem(response, 422, "validation-error")
    assert [error["loc"] for error in problem["errors"]] == [["body", "email"]]
    assert await count_rows(engine, users) == 0


# --- password policy -------------------------------------------------------------------------


@pytest.mark.parametrize("password", COMMON_PASSWORDS)
def test_the_common_passwords_used_here_are_in_the_breach_list(password: str) -> None:
    assert password_problems(password) == ["is one of the most common passwords; choose another"]


@pytest.mark.parametrize(
    "password",
    [
        "123456",  # the first entry of the shipped list
        "GeekBoy",  # the last, in another case (compared case-folded)
        "PASSWORD1234",
    ],
)
def test_any_listed_password_is_refused_whatever_its_case(password: str) -> None:
    assert "is one of the most common passwords; choose another" in password_problems(password)


@pytest.mark.parametrize(
    "password",
    [
        "123456\npassword",  # the first two entries, each on its line: not one entry
        "xpassword1234",  # a listed password within a longer one
        "password1234x",
    ],
)
def test_a_password_that_only_contains_listed_ones_is_not_common(password: str) -> None:
    assert "is one of the most common passwords; choose another" not in password_problems(password)


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        ("elevenchars", "at least 12 characters"),
        ("", "at least"),
        *[(common, "common") for common in COMMON_PASSWORDS],
        ("x" * 1025, "1024"),
        ("é" * 600, "1024 bytes"),  # 600 characters, 1200 bytes
    ],
)
async def test_weak_password_returns_422_naming_the_password(
    anonymous_client: httpx.AsyncClient, engine: AsyncEngine, password: str, reason: str
) -> None:
    response = await register(anonymous_client, password=password)

    assert reason in assert_names_password(response)
    assert await count_rows(engine, users) == 0


@pytest.mark.parametrize("password", ["carol.smith@example.org", "CAROL.SMITH@EXAMPLE.ORG"])
async def test_password_equal_to_the_email_returns_422(
    anonymous_client: httpx.AsyncClient, engine: AsyncEngine, password: str
) -> None:
    response = await register(anonymous_client, email="carol.smith@example.org", password=password)

    assert "email" in assert_names_password(response)
    assert await stored_user(engine, "carol.smith@example.org") is None


async def test_a_1024_byte_password_is_accepted(anonymous_client: httpx.AsyncClient) -> None:
    password = "pass phrase " * 85 + "abcd"  # 1024 bytes
    assert len(password.encode()) == 1024

    response = await register(anonymous_client, email="long@example.org", password=password)

    assert response.status_code == 202, response.text
    assert (await login(anonymous_client, "long@example.org", password)).status_code == 200


# --- mass assignment and malformed requests --------------------------------------------------


@pytest.mark.parametrize(
    "extra",
    [
        {"role": "admin"},
        {"role": "editor"},
        {"is_active": False},
        {"id": "00000000-0000-4000-8000-000000000000"},
        {"password_hash": "$argon2id$v=19$m=8,t=1,p=1$c2FsdA$aGFzaA"},
    ],
)
async def test_fields_the_client_may_not_set_return_422_and_create_nothing(
    anonymous_client: httpx.AsyncClient, engine: AsyncEngine, extra: dict[str, Any]
) -> None:
    response = await register(anonymous_client, email="mallory@example.org", **extra)

    problem = assert_problem(response, 422, "validation-error")
    assert [error["loc"] for error in problem["errors"]] == [["body", next(iter(extra))]]
    assert await stored_user(engine, "mallory@example.org") is None


async def test_missing_fields_return_422(
    anonymous_client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    response = await anonymous_client.post(REGISTER, json={})

    problem = assert_problem(response, 422, "validation-error")
    assert sorted(error["loc"] for error in problem["errors"]) == [
        ["body", "email"],
        ["body", "password"],
    ]
    assert await count_rows(engine, users) == 0


async def test_form_body_returns_415(anonymous_client: httpx.AsyncClient) -> None:
    response = await anonymous_client.post(
        REGISTER, data={"email": "form@example.org", "password": PASSPHRASE}
    )

    assert_problem(response, 415, "unsupported-media-type", instance=REGISTER)


async def test_registering_while_signed_in_still_creates_a_reader(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    """An admin's token on the request grants nothing to the new account."""
    response = await register(client, email="fresh@example.org")

    assert response.status_code == 202, response.text
    assert (await stored_user(engine, "fresh@example.org")).role == "reader"
