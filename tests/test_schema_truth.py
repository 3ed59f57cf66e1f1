"""The OpenAPI schema tells the truth: for each input below, the published schema allows it
exactly when the API accepts it (the slow contract test fuzzes the same promise at random).

Each case is judged twice: by a JSON Schema validator against the app's own OpenAPI document,
and by sending it.
"""

from __future__ import annotations

from typing import Any

import httpx
import jsonschema_rs
import pytest
from fastapi import FastAPI

from bookshelf.users.schemas import Role
from tests.conftest import AccountFactory
from tests.factories import BOOKS, ME, REGISTER, USERS, create_book, reviews_path

GOOD_PASSWORD = "a long new passphrase"


def schema_allows(app: FastAPI, component: str, value: Any) -> bool:
    document = app.openapi()
    schema = {"$ref": f"#/components/schemas/{component}", "components": document["components"]}
    return bool(jsonschema_rs.validator_for(schema).is_valid(value))


def parameter_allows(app: FastAPI, path: str, name: str, value: str) -> bool:
    parameters = app.openapi()["paths"][path]["get"]["parameters"]
    (schema,) = [parameter["schema"] for parameter in parameters if parameter["name"] == name]
    return bool(jsonschema_rs.validator_for(schema).is_valid(value))


def accepted(response: httpx.Response) -> bool:
    assert response.status_code in (200, 201, 202, 422), response.text
    return response.status_code != 422


@pytest.mark.parametrize(
    ("patch", "valid"),
    [
        ({"title": None}, False),
        ({"authors": None}, False),
        ({"subtitle": None}, True),
        ({"page_count": 3.0}, True),
        ({"page_count": 3.5}, False),
        ({"page_count": "3"}, False),
        ({"isbn": ""}, False),
        ({"isbn": "0-261-10221-4"}, True),
        ({"language": ""}, False),
        ({"language": "xx"}, False),
        ({"language": "de"}, True),
        ({"published_date": ""}, False),
        ({"published_date": "0000"}, False),
        ({"published_date": "1937-09"}, True),
        ({"title": "   "}, False),
        ({"title": "tab\tinside"}, False),
        ({"description": "two\nlines"}, True),
    ],
)
async def test_book_patch_schema_allows_what_the_api_accepts(
    app: FastAPI, client: httpx.AsyncClient, patch: dict[str, Any], valid: bool
) -> None:
    book = await create_book(client)

    response = await client.patch(f"{BOOKS}/{book['id']}", json=patch)

    assert (schema_allows(app, "BookUpdate", patch), accepted(response)) == (valid, valid)


@pytest.mark.parametrize(
    ("name", "value", "valid"),
    [
        ("published_from", "", False),
        ("published_from", "2020-1", False),
        ("published_to", "2020-13", False),
        ("published_from", "2020-02", True),
        ("q", "!!", False),
        ("q", "Zürich", True),
    ],
)
async def test_list_query_schema_allows_what_the_api_accepts(
    app: FastAPI, client: httpx.AsyncClient, name: str, value: str, valid: bool
) -> None:
    response = await client.get(BOOKS, params={name: value})

    assert (parameter_allows(app, "/api/v1/books", name, value), accepted(response)) == (
        valid,
        valid,
    )


@pytest.mark.parametrize(
    ("component", "body", "valid"),
    [
        ("ReviewCreate", {"rating": 4.0}, True),
        ("ReviewCreate", {"rating": True}, False),
        ("ReviewUpdate", {"rating": None}, False),
        ("ReviewUpdate", {"rating": 2.0}, True),
    ],
)
async def test_review_schemas_allow_what_the_api_accepts(
    app: FastAPI, client: httpx.AsyncClient, component: str, body: dict[str, Any], valid: bool
) -> None:
    book = await create_book(client)
    path = reviews_path(book["id"])
    if component == "ReviewCreate":
        response = await client.post(path, json=body)
    else:
        review = (await client.post(path, json={"rating": 5})).json()
        response = await client.patch(f"{path}/{review['id']}", json=body)

    assert (schema_allows(app, component, body), accepted(response)) == (valid, valid)


@pytest.mark.parametrize(("password", "valid"), [("elevenchars", False), ("twelve chars", True)])
async def test_registration_schema_states_the_password_length(
    app: FastAPI, anonymous_client: httpx.AsyncClient, password: str, valid: bool
) -> None:
    body = {"email": "new.reader@example.org", "password": password}

    response = await anonymous_client.post(REGISTER, json=body)

    assert (schema_allows(app, "Registration", body), accepted(response)) == (valid, valid)


@pytest.mark.parametrize(
    ("body", "valid"),
    [
        ({"password": GOOD_PASSWORD}, False),
        ({"password": None}, False),
        ({"current_password": None}, False),
        ({"password": "short", "current_password": "x"}, False),
        ({"display_name": "Ada"}, True),
        ({"password": GOOD_PASSWORD, "current_password": "the account's password"}, True),
    ],
)
async def test_profile_schema_allows_what_the_api_accepts(
    app: FastAPI,
    anonymous_client: httpx.AsyncClient,
    make_account: AccountFactory,
    body: dict[str, Any],
    valid: bool,
) -> None:
    account = await make_account()
    sent = {
        key: account.password if value == "the account's password" else value
        for key, value in body.items()
    }

    response = await anonymous_client.patch(ME, json=sent, headers=account.headers)

    assert (schema_allows(app, "ProfileUpdate", sent), accepted(response)) == (valid, valid)


@pytest.mark.parametrize(
    ("body", "valid"),
    [({"is_active": 0}, False), ({"is_active": "false"}, False), ({"is_active": False}, True)],
)
async def test_admin_update_schema_allows_what_the_api_accepts(
    app: FastAPI,
    client: httpx.AsyncClient,
    make_account: AccountFactory,
    body: dict[str, Any],
    valid: bool,
) -> None:
    account = await make_account(Role.READER)

    response = await client.patch(f"{USERS}/{account.id}", json=body)

    assert (schema_allows(app, "UserAdminUpdate", body), accepted(response)) == (valid, valid)
