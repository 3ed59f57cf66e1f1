"""The generated Python client (clients/python/) against a live server, on each database: what a
user of the client does, through the client's own functions and models only. That the client is
up to date with openapi.json is tested in tests/test_contract.py."""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from bookshelf_client import AuthenticatedClient, Client
from bookshelf_client.api.auth import issue_token, refresh
from bookshelf_client.api.books import (
    create_book,
    export_books,
    get_book,
    import_books,
    list_books,
    update_book,
)
from bookshelf_client.api.users import read_me
from bookshelf_client.errors import UnexpectedStatus
from bookshelf_client.models import (
    BodyIssueToken,
    Book,
    BookCreate,
    BookPage,
    BookSort,
    BookUpdate,
    ImportReport,
    Problem,
    RefreshRequest,
    TokenPair,
    User,
)
from bookshelf_client.types import File

from bookshelf.main import create_app
from bookshelf.users.schemas import Role
from tests.conftest import database_account, make_settings
from tests.factories import Account, unique_isbn
from tests.servers import running_server

PROBLEM = "urn:bookshelf:problem:"
README = Path(__file__).resolve().parents[1] / "clients" / "python" / "README.md"


@pytest.fixture
def server_url(database_url: str) -> Iterator[str]:
    with running_server(create_app(make_settings(database_url))) as url:
        yield url


@pytest.fixture
async def editor(database_url: str) -> Account:
    return await database_account(database_url, Role.EDITOR)


def sign_in(base_url: str, account: Account) -> TokenPair:
    """The OAuth2 password flow, through the client (a form, not JSON)."""
    with Client(base_url=base_url) as anonymous:
        tokens = issue_token.sync(
            client=anonymous, body=BodyIssueToken(username=account.email, password=account.password)
        )
    assert isinstance(tokens, TokenPair), tokens
    return tokens


def new_book(title: str = "The Left Hand of Darkness") -> BookCreate:
    return BookCreate(title=title, authors=["Ursula K. Le Guin"], isbn=unique_isbn())


def created(client: AuthenticatedClient, title: str = "The Left Hand of Darkness") -> Book:
    book = create_book.sync(client=client, body=new_book(title))
    assert isinstance(book, Book), book
    return book


def test_signs_in_with_the_password_form_and_refreshes_the_tokens(
    server_url: str, editor: Account
) -> None:
    tokens = sign_in(server_url, editor)
    with AuthenticatedClient(base_url=server_url, token=tokens.access_token) as signed_in:
        me = read_me.sync(client=signed_in)
        assert isinstance(me, User)
        assert (me.email, me.role.value) == (editor.email, "editor")

        renewed = refresh.sync(
            client=signed_in, body=RefreshRequest(refresh_token=tokens.refresh_token)
        )
        assert isinstance(renewed, TokenPair), renewed
        assert renewed.refresh_token != tokens.refresh_token
        # A refresh token works once: presenting it again is a typed problem.
        reused = refresh.sync(
            client=signed_in, body=RefreshRequest(refresh_token=tokens.refresh_token)
        )
        assert isinstance(reused, Problem)
        assert (reused.status, reused.type_) == (400, PROBLEM + "invalid-grant")

    # Reusing it signed the whole session out, the renewed access token with it.
    with AuthenticatedClient(base_url=server_url, token=renewed.access_token) as after_reuse:
        signed_out = read_me.sync_detailed(client=after_reuse)
        assert signed_out.status_code == 401
        assert isinstance(signed_out.parsed, Problem)
        assert signed_out.headers["www-authenticate"].startswith("Bearer")

    with Client(base_url=server_url) as anonymous:
        wrong = issue_token.sync(
            client=anonymous, body=BodyIssueToken(username=editor.email, password="not it")
        )
    assert isinstance(wrong, Problem)
    assert (wrong.status, wrong.type_) == (400, PROBLEM + "invalid-grant")


async def test_creates_books_and_lists_every_page_by_following_the_cursor(
    server_url: str, editor: Account
) -> None:
    token = sign_in(server_url, editor).access_token
    async with AuthenticatedClient(base_url=server_url, token=token) as client:
        ids = []
        for number in range(7):
            response = await create_book.asyncio_detailed(
                client=client, body=new_book(f"Book {number}"), idempotency_key=f"key-{number}"
            )
            assert response.status_code == 201
            assert isinstance(response.parsed, Book), response.content
            assert response.headers["location"].endswith(f"/books/{response.parsed.id}")
            assert response.headers["etag"] == f'"{response.parsed.version}"'
            ids.append(response.parsed.id)

        pages: list[BookPage] = []
        cursor: str | None = None
        for _ in range(10):  # bounded: a list whose cursor never ends fails, it does not hang
            page = await list_books.asyncio(
                client=client, limit=3, sort=BookSort.TITLE, cursor=cursor
            )
            assert isinstance(page, BookPage), page
            pages.append(page)
            cursor = page.next_cursor
            if cursor is None:
                break

    assert [len(page.items) for page in pages] == [3, 3, 1]
    assert [book.id for page in pages for book in page.items] == ids


def test_imports_and_exports_ndjson_as_bytes(server_url: str, editor: Account) -> None:
    token = sign_in(server_url, editor).access_token
    lines = [
        json.dumps({"title": "Kindred", "authors": ["Octavia E. Butler"], "language": "en"}),
        json.dumps({"title": "", "authors": []}),  # invalid: that line's problem, not the file's
    ]
    body = File(payload=io.BytesIO(("\n".join(lines) + "\n").encode()))
    with AuthenticatedClient(base_url=server_url, token=token) as client:
        report = import_books.sync(client=client, body=body)
        assert isinstance(report, ImportReport), report
        assert (report.created, report.failed) == (1, 1)
        exported = export_books.sync(client=client, q="Kindred")
    assert isinstance(exported, File), exported
    [book] = [json.loads(line) for line in exported.payload.read().splitlines()]
    assert (book["title"], book["id"]) == ("Kindred", str(report.results[0].id))


def test_conditional_get_with_the_current_etag_is_304(server_url: str, editor: Account) -> None:
    token = sign_in(server_url, editor).access_token
    with AuthenticatedClient(base_url=server_url, token=token) as client:
        book = created(client)
        first = get_book.sync_detailed(str(book.id), client=client)
        assert first.status_code == 200
        assert isinstance(first.parsed, Book)
        etag = first.headers["etag"]

        unchanged = get_book.sync_detailed(str(book.id), client=client, if_none_match=etag)
        assert unchanged.status_code == 304
        assert (unchanged.parsed, unchanged.content) == (None, b"")
        assert unchanged.headers["etag"] == etag

        update_book.sync(str(book.id), client=client, body=BookUpdate(page_count=300))
        changed = get_book.sync_detailed(str(book.id), client=client, if_none_match=etag)
        assert changed.status_code == 200
        assert isinstance(changed.parsed, Book)
        assert changed.parsed.page_count == 300


def test_patch_with_a_stale_if_match_is_a_412_problem(server_url: str, editor: Account) -> None:
    token = sign_in(server_url, editor).access_token
    with AuthenticatedClient(base_url=server_url, token=token) as client:
        book = created(client)
        etag = f'"{book.version}"'
        patched = update_book.sync_detailed(
            str(book.id), client=client, body=BookUpdate(subtitle="A novel"), if_match=etag
        )
        assert patched.status_code == 200
        assert isinstance(patched.parsed, Book)
        assert patched.parsed.subtitle == "A novel"
        assert patched.headers["etag"] != etag

        # Someone else's change came first: the old ETag no longer matches.
        stale = update_book.sync(
            str(book.id), client=client, body=BookUpdate(subtitle=None), if_match=etag
        )
        assert isinstance(stale, Problem)
        assert (stale.status, stale.type_) == (412, PROBLEM + "version-mismatch")
        assert stale.instance == f"/api/v1/books/{book.id}"

        kept = get_book.sync(str(book.id), client=client)
        assert isinstance(kept, Book)
        assert kept.subtitle == "A novel"


def test_problems_are_parsed_into_the_typed_model(server_url: str, editor: Account) -> None:
    token = sign_in(server_url, editor).access_token
    with AuthenticatedClient(base_url=server_url, token=token) as client:
        missing = get_book.sync(str(uuid.uuid4()), client=client)
        assert isinstance(missing, Problem)
        assert (missing.status, missing.type_) == (404, PROBLEM + "book-not-found")
        assert missing.request_id

        invalid = create_book.sync(
            client=client,
            body=BookCreate(title="Bad ISBN", authors=["Nobody"], isbn="978-0-00-000000-1"),
        )
        assert isinstance(invalid, Problem)
        assert (invalid.status, invalid.type_) == (422, PROBLEM + "validation-error")
        assert isinstance(invalid.errors, list)
        assert [error.loc for error in invalid.errors] == [["body", "isbn"]]

    with AuthenticatedClient(base_url=server_url, token="not-a-token") as forged:
        refused = create_book.sync(client=forged, body=new_book())
        assert isinstance(refused, Problem)
        assert (refused.status, refused.type_) == (401, PROBLEM + "invalid-token")


def test_a_status_the_schema_does_not_declare_raises_unexpected_status(server_url: str) -> None:
    # A wrong base URL: 404 is not a status of list_books, so strict clients refuse it...
    strict = Client(base_url=f"{server_url}/nowhere", raise_on_unexpected_status=True)
    with strict, pytest.raises(UnexpectedStatus) as raised:
        list_books.sync(client=strict)
    assert raised.value.status_code == 404
    # ...and lenient ones (the default) return nothing parsed.
    with Client(base_url=f"{server_url}/nowhere") as lenient:
        assert list_books.sync(client=lenient) is None


def readme_examples() -> list[str]:
    """The Python blocks of the client's README, in order."""
    text = README.read_text(encoding="utf-8")
    return [block.split("```", 1)[0] for block in text.split("```python\n")[1:]]


def test_the_readme_examples_run_as_written(server_url: str, editor: Account) -> None:
    examples = readme_examples()
    assert len(examples) == 5
    # The README's examples, run as a reader would run them (one after the other, in one
    # namespace), against the test server and as its editor.
    namespace: dict[str, Any] = {}
    for example in examples:
        runnable = (
            example.replace("http://127.0.0.1:8000", server_url)
            .replace("ada@example.org", editor.email)
            .replace("correct horse battery staple", editor.password)
        )
        exec(runnable, namespace)  # noqa: S102
    book = namespace["book"]
    assert isinstance(book, Book), book
    assert (book.title, book.authors) == ("Dune", ["Frank Herbert"])
    assert "Dune" in namespace["titles"]
    assert namespace["changed"].page_count == 412
    assert namespace["stale"].type_ == PROBLEM + "version-mismatch"
    assert [error.loc for error in namespace["invalid"].errors] == [["body", "isbn"]]
