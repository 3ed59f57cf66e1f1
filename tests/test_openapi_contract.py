"""Contract test: every operation, driven by Schemathesis from the app's own OpenAPI document,
against a real uvicorn server on each database.

Every check Schemathesis has runs, ``positive_data_acceptance`` and ``negative_data_rejection``
included: no 5xx, every status code, Content-Type, header and body is the documented one, a
request the schema forbids is refused, and a request the schema allows is accepted. The schema
is kept that exact (patterns, enums, non-null merge-patch fields, dependentRequired…); what no
JSON Schema can say is listed below as a documented false positive, with its reason, and only
that is forgiven. Schemathesis generates valid and invalid requests (examples, coverage and
fuzzing phases) for every operation, each sent with an admin's token so that writes are really
exercised; a quarter of the requests naming a book, review or user use one that exists, so the
success paths are covered too. Sign-out is exercised with a session of its own.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import CHECKS, load_all_checks
from schemathesis.core import NotSet
from schemathesis.specs.openapi.checks import positive_data_acceptance

from bookshelf.auth import service as auth_service
from bookshelf.db.engine import create_engine
from bookshelf.main import build_auth, create_app
from bookshelf.users.schemas import Role
from tests.conftest import (
    database_account,
    make_settings,
    migrate_database,
    throwaway_postgres_database,
)
from tests.factories import Account, book_payload
from tests.servers import running_server

pytestmark = pytest.mark.slow

load_all_checks()
# Every check Schemathesis has, positive_data_acceptance included.
ALL_CHECKS = CHECKS.get_all()
EXISTING_BOOKS = 12
# Per operation and database; keeps each database's run well under a minute.
MAX_EXAMPLES = 50
EXISTING_USERS = 4
_existing_turns = itertools.count()


@dataclass(frozen=True)
class FalsePositive:
    """A schema-valid request the API rightly refuses, for a reason no JSON Schema can state."""

    problem_type: str
    why: str
    # For validation errors: the rule's words in the error message (any field when loc is None).
    message: str = ""
    loc: tuple[str, ...] | None = None


DOCUMENTED_FALSE_POSITIVES = [
    FalsePositive(
        "invalid-cursor",
        "a cursor is an opaque token that only the list issues; no schema can tell which "
        "strings those are (a forged one is a 422, see tests/test_pagination.py)",
    ),
    FalsePositive(
        "version-mismatch",
        "If-Match names a version: whether it is the book's current one depends on the data",
    ),
    FalsePositive(
        "idempotency-key-reused",
        "Schemathesis repeats an Idempotency-Key with another body; refusing that depends on the "
        "earlier request, not on this one",
    ),
    FalsePositive(
        "import-rejected",
        "each line of an import must be a valid new book, which the schema of a text body "
        "cannot say; the default mode reports such lines one by one with a 200",
    ),
    FalsePositive(
        "invalid-grant",
        "a refresh token is a secret the server issued; any other string is refused",
    ),
    FalsePositive(
        "invalid-account-token",
        "a verification or reset token is a secret the server mailed; any other string is "
        "refused (tests/mail/test_flows.py)",
    ),
    FalsePositive(
        "wrong-current-password",
        "current_password must be the account's password, which the schema cannot know",
    ),
    FalsePositive(
        "validation-error",
        "sort=relevance needs q: OpenAPI cannot make one query parameter depend on another",
        message="sort=relevance needs a search text in q",
    ),
    FalsePositive(
        "validation-error",
        "an ISBN's last digit is a checksum of the others",
        message="check digit",
    ),
    FalsePositive(
        "validation-error",
        "a publication date may not be after today, which moves",
        message="must not be in the future",
    ),
    FalsePositive(
        "validation-error",
        "the date pattern allows day 29-31 in every month; which days exist depends on the "
        "month and the year",
        message="is not a real calendar date",
    ),
    FalsePositive(
        "validation-error",
        "a password must not be one of 30,000 breached passwords",
        message="is one of the most common passwords",
    ),
    FalsePositive(
        "validation-error",
        "a password must not equal the email address, another field's value",
        message="must not be your email address",
    ),
    FalsePositive(
        "validation-error",
        "the password limit is 1024 UTF-8 bytes; JSON Schema can only count characters",
        message="1024 bytes",
    ),
    FalsePositive(
        "validation-error",
        "email-validator is stricter than format: email (special-use and reserved domains, "
        "dot placement, a dot in the domain)",
        loc=("body", "email"),
    ),
]


@schemathesis.serializer("application/x-ndjson")
def _ndjson_body(_context: Any, value: Any) -> bytes:
    """The import's body is text (NDJSON): a generated string goes on the wire as it is (a lone
    surrogate as the invalid UTF-8 it would be; the API reports such a line as malformed)."""
    if isinstance(value, str):
        return value.encode("utf-8", "surrogatepass")
    return json.dumps(value).encode()


IMPORT_PATH = "/api/v1/books/import"


def _matches(rule: FalsePositive, error: dict[str, Any]) -> bool:
    return (rule.loc is None or tuple(error["loc"]) == rule.loc) and rule.message in error["msg"]


def documented_false_positive(response: schemathesis.Response) -> FalsePositive | None:
    """The documented reason a refusal is right, or None when it is a real contract failure."""
    content_type = response.headers.get("content-type", [""])[0]
    if response.status_code not in (400, 412, 422) or content_type != "application/problem+json":
        return None
    problem = response.json()
    slug = problem["type"].removeprefix("urn:bookshelf:problem:")
    rules = [rule for rule in DOCUMENTED_FALSE_POSITIVES if rule.problem_type == slug]
    if slug != "validation-error":
        return rules[0] if rules else None
    # Every bad field must be one of the documented rules; a single other error is a failure.
    reasons = [next((r for r in rules if _matches(r, e)), None) for e in problem["errors"]]
    return reasons[0] if reasons and all(reasons) else None


@pytest_asyncio.fixture(scope="module", loop_scope="module", params=["sqlite", "postgresql"])
async def contract_database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[str]:
    """A migrated database of its own: the server writes to it for the whole module."""
    if request.param == "sqlite":
        path: Path = tmp_path_factory.mktemp("contract") / "contract.db"
        url = f"sqlite+aiosqlite:///{path}"
        await migrate_database(url)
        yield url
        return
    async with throwaway_postgres_database("bookshelf_contract") as url:
        await migrate_database(url)
        yield url


@pytest.fixture(scope="module")
def server_url(contract_database_url: str) -> Iterator[str]:
    """A real uvicorn server on a free port of 127.0.0.1, in a background thread."""
    with running_server(create_app(make_settings(contract_database_url))) as url:
        yield url


@dataclass(frozen=True)
class Seeded:
    """What the server's database holds before Schemathesis starts."""

    admin_id: uuid.UUID
    admin_headers: dict[str, str]
    book_ids: list[str]
    # (book id, review id): books of their own, so deleting a seeded book spares them.
    reviews: list[tuple[str, str]]
    user_ids: list[str]
    # Signs itself out everywhere (no other request uses its sessions, and nothing may
    # deactivate it: it is not among user_ids).
    leaver_id: uuid.UUID


async def new_session(url: str, user_id: uuid.UUID) -> str:
    settings = make_settings(url)
    engine = create_engine(settings)
    try:
        async with engine.begin() as connection:
            tokens = await auth_service.start_session(connection, build_auth(settings), user_id)
    finally:
        await engine.dispose()
    return tokens.access_token


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def accounts(contract_database_url: str) -> list[Account]:
    """An admin, who sends every request, the reader who signs out everywhere, then the
    readers that /users/{user_id} may name."""
    roles = [Role.ADMIN, Role.READER] + [Role.READER] * EXISTING_USERS
    return [await database_account(contract_database_url, role) for role in roles]


@pytest.fixture(scope="module")
def seeded(server_url: str, accounts: list[Account]) -> Seeded:
    admin, leaver, *readers = accounts
    admin_id, headers = admin.id, admin.headers
    user_ids = [str(reader.id) for reader in readers]
    book_ids, reviews = [], []
    with httpx.Client(base_url=server_url, headers=headers) as client:
        for number in range(EXISTING_BOOKS * 2):
            response = client.post("/api/v1/books", json=book_payload(title=f"Seed {number}"))
            assert response.status_code == 201, response.text
            book_id = response.json()["id"]
            if number % 2:
                book_ids.append(book_id)
                continue
            review = client.post(
                f"/api/v1/books/{book_id}/reviews", json={"rating": number % 5 + 1}
            )
            assert review.status_code == 201, review.text
            reviews.append((book_id, review.json()["id"]))
    return Seeded(admin_id, headers, book_ids, reviews, user_ids, leaver.id)


@pytest.fixture(scope="module")
def api_schema(server_url: str) -> Any:
    return schemathesis.openapi.from_url(f"{server_url}/openapi.json")


@pytest.fixture
def _schemathesis_node_id(request: pytest.FixtureRequest) -> None:
    """Schemathesis 4.32 reads and renames ``item._nodeid``, which pytest 9 no longer has (the id
    is ``item._id``); give it the attribute so its pytest integration runs."""
    if not hasattr(request.node, "_nodeid"):
        request.node._nodeid = request.node.nodeid


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
@pytest.mark.usefixtures("_schemathesis_node_id")
def test_api_conforms_to_its_openapi_document(
    case: schemathesis.Case, seeded: Seeded, contract_database_url: str
) -> None:
    # (@schema.given cannot be combined with the examples phase, so no Hypothesis draw here.)
    # Every request is an admin's, so writes get past authentication and authorisation; a
    # quarter of the requests name a book, review or user that exists.
    headers = dict(seeded.admin_headers)
    parameters = case.path_parameters or {}
    turn = next(_existing_turns)
    if turn % 4 == 0:
        pick = turn // 4
        if "review_id" in parameters:
            parameters["book_id"], parameters["review_id"] = seeded.reviews[
                pick % len(seeded.reviews)
            ]
        elif "book_id" in parameters:
            parameters["book_id"] = seeded.book_ids[pick % len(seeded.book_ids)]
        elif "user_id" in parameters:
            parameters["user_id"] = seeded.user_ids[pick % len(seeded.user_ids)]
    if case.operation.path == "/api/v1/auth/logout":
        # Signing out must not sign out the session every other request uses.
        token = asyncio.run(new_session(contract_database_url, seeded.admin_id))
        headers["Authorization"] = f"Bearer {token}"
    if case.operation.path == "/api/v1/auth/logout-everywhere":
        token = asyncio.run(new_session(contract_database_url, seeded.leaver_id))
        headers["Authorization"] = f"Bearer {token}"
    if case.operation.path == IMPORT_PATH and not isinstance(case.body, str | NotSet):
        # Not text: on the wire every body is bytes, and any bytes are an NDJSON text whose
        # lines the API judges one by one, so "a body of the wrong type" cannot be sent.
        return
    response = case.call(headers=headers)
    # A refusal documented above is forgiven by positive_data_acceptance, and by nothing else.
    forgiven = [positive_data_acceptance] if documented_false_positive(response) else []
    case.validate_response(response, checks=ALL_CHECKS, excluded_checks=forgiven, headers=headers)
    # The admin's token stays valid all along: a 401 means it was not sent (Schemathesis drops
    # it on purpose in some negative cases), never that writes went unexercised.
    if response.status_code == 401:
        assert "Authorization" not in response.request.headers, response.text
