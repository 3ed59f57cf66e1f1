"""Editors' pages: add a book, change one (with the version it was shown at: a book changed
meanwhile gets a page with both versions, never a silent overwrite), delete one (admins, as
in the API), and import an NDJSON file with each line's result."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import APIRouter, Depends, Request, Response
from pydantic import ValidationError

from bookshelf.books import bulk
from bookshelf.books import service as books
from bookshelf.books.dependencies import import_slot
from bookshelf.books.exceptions import BookVersionMismatch, ImportRejected, IsbnAlreadyExists
from bookshelf.books.schemas import Book, BookCreate, BookUpdate
from bookshelf.db.connections import ConnectionDep, DatabaseDep
from bookshelf.db.database import Connection, Database, unit_of_work
from bookshelf.dependencies import SettingsDep
from bookshelf.users.schemas import Role
from bookshelf.web.catalog import parse_book_id
from bookshelf.web.dependencies import PageViewer, Posted, PostedForm
from bookshelf.web.forms import (
    BOOK_FIELDS,
    FORM_WIDE,
    book_form,
    book_values,
    field_errors,
)
from bookshelf.web.pages import redirect
from bookshelf.web.viewer import Viewer, page

router = APIRouter(include_in_schema=False)

NEW_BOOK = "/books/new"
IMPORT = "/books/import"
_CHUNK = 64 * 1024
# The created lines an import's page links to (every failed line is listed).
CREATED_SHOWN = 100


def _version(posted: Posted) -> int | None:
    text = posted.text("version")
    return int(text) if text.isdigit() and len(text) < 19 else None


def _form_page(
    request: Request,
    viewer: Viewer,
    *,
    book_id: UUID | None,
    form: dict[str, str],
    errors: dict[str, str],
    version: int | None = None,
    status: int = 200,
) -> Response:
    return page(
        request,
        viewer,
        "book_form.html",
        status=status,
        book_id=book_id,
        form=form,
        errors=errors,
        version=version,
    )


@router.get(NEW_BOOK)
async def new_book_page(request: Request, viewer: PageViewer) -> Response:
    """The form of a new book (editors)."""
    viewer.require(Role.EDITOR, next_path=NEW_BOOK)
    empty = dict.fromkeys(BOOK_FIELDS, "")
    return _form_page(request, viewer, book_id=None, form=empty, errors={})


@router.post(NEW_BOOK)
async def create_book(request: Request, posted: PostedForm, database: DatabaseDep) -> Response:
    """Add the book (editors), then show it."""
    editor = posted.viewer.require(Role.EDITOR, writes=True, next_path=NEW_BOOK)
    form = posted.texts(BOOK_FIELDS)
    # A new book has no field to clear: a blank one is absent ("required", where it is).
    values = {name: value for name, value in book_values(form).items() if value not in (None, [])}
    try:
        book = BookCreate.model_validate(values)
        async with unit_of_work(database, write=True) as connection:
            created = await books.create_book(connection, book, actor=editor.id)
    except ValidationError as error:
        errors = field_errors(error)
    except IsbnAlreadyExists as error:
        errors = {"isbn": error.detail}
    else:
        return posted.viewer.finish(redirect(f"/books/{created.id}"))
    return _form_page(request, posted.viewer, book_id=None, form=form, errors=errors, status=422)


async def _book_for(
    viewer: Viewer, connection: Connection, raw_id: str, role: Role, action: str
) -> Book:
    """The book a page of ``role``'s acts on (``/books/{id}/{action}``)."""
    target = parse_book_id(raw_id)
    viewer.require(role, next_path=f"/books/{target}/{action}")
    return await books.get_book(connection, target)


@router.get("/books/{book_id}/edit")
async def edit_book_page(
    book_id: str, request: Request, viewer: PageViewer, connection: ConnectionDep
) -> Response:
    """A book's form, at its current version (editors)."""
    book = await _book_for(viewer, connection, book_id, Role.EDITOR, "edit")
    return _form_page(
        request, viewer, book_id=book.id, form=book_form(book), errors={}, version=book.version
    )


async def _current(database: Database, book_id: UUID) -> Book:
    async with unit_of_work(database, write=False) as connection:
        return await books.get_book(connection, book_id)


def _differences(form: dict[str, str], current: Book) -> list[dict[str, str]]:
    shown = book_form(current)
    return [
        {"name": name, "yours": form[name], "current": shown[name]}
        for name in BOOK_FIELDS
        if form[name].strip() != shown[name].strip()
    ]


@router.post("/books/{book_id}/edit")
async def edit_book(
    book_id: str, request: Request, posted: PostedForm, database: DatabaseDep
) -> Response:
    """Save the book (editors), if it is still at the version the form was shown at."""
    target = parse_book_id(book_id)
    editor = posted.viewer.require(Role.EDITOR, writes=True, next_path=f"/books/{target}/edit")
    form = posted.texts(BOOK_FIELDS)
    version = _version(posted)
    try:
        patch = BookUpdate.model_validate(book_values(form))
        async with unit_of_work(database, write=True) as connection:
            await books.update_book(
                connection,
                target,
                patch,
                actor=editor.id,
                if_versions=None if version is None else {version},
            )
    except ValidationError as error:
        errors = field_errors(error)
    except IsbnAlreadyExists as error:
        errors = {"isbn": error.detail}
    except BookVersionMismatch:
        current = await _current(database, target)
        return page(
            request,
            posted.viewer,
            "book_conflict.html",
            status=409,
            book=current,
            form=form,
            differences=_differences(form, current),
        )
    else:
        return posted.viewer.finish(redirect(f"/books/{target}"))
    return _form_page(
        request,
        posted.viewer,
        book_id=target,
        form=form,
        errors=errors,
        version=version,
        status=422,
    )


@router.get("/books/{book_id}/delete")
async def delete_book_page(
    book_id: str, request: Request, viewer: PageViewer, connection: ConnectionDep
) -> Response:
    """Ask to confirm a deletion (admins)."""
    book = await _book_for(viewer, connection, book_id, Role.ADMIN, "delete")
    return page(request, viewer, "book_delete.html", book=book, changed=False)


@router.post("/books/{book_id}/delete")
async def delete_book(
    book_id: str, request: Request, posted: PostedForm, database: DatabaseDep
) -> Response:
    """Delete the book (admins), if it is still the version that was confirmed."""
    target = parse_book_id(book_id)
    posted.viewer.require(Role.ADMIN, writes=True, next_path=f"/books/{target}/delete")
    version = _version(posted)
    try:
        async with unit_of_work(database, write=True) as connection:
            book = await books.get_book(connection, target)
            await books.delete_book(
                connection, target, if_versions=None if version is None else {version}
            )
    except BookVersionMismatch:
        current = await _current(database, target)
        return page(
            request, posted.viewer, "book_delete.html", status=409, book=current, changed=True
        )
    return page(
        request,
        posted.viewer,
        "message.html",
        heading="Book deleted",
        text=f"“{book.title}” is no longer in the catalog.",
    )


@router.get(IMPORT)
async def import_page(request: Request, viewer: PageViewer) -> Response:
    """The form that uploads an NDJSON file of books (editors)."""
    viewer.require(Role.EDITOR, next_path=IMPORT)
    return page(request, viewer, "import.html", report=None, errors={})


async def _read_lines(posted: Posted, max_lines: int) -> bulk.ParsedLines | None:
    """The uploaded file's lines, split and validated as they are read (the API's reader:
    one line too many is a 413 at once); None without a file."""
    upload = posted.file("file")
    if upload is None:
        return None
    reader = bulk.LineReader(max_lines=max_lines)
    parsed = bulk.ParsedLines()
    while chunk := await upload.read(_CHUNK):
        await bulk.parse_lines(reader.feed(chunk), into=parsed)
    await bulk.parse_lines(reader.end(), into=parsed)
    return parsed


def _report(outcomes: list[bulk.LineOutcome]) -> dict[str, Any]:
    created = [outcome for outcome in outcomes if outcome.error is None]
    return {
        "created": len(created),
        "failed": [outcome for outcome in outcomes if outcome.error is not None],
        "created_shown": created[:CREATED_SHOWN],
    }


@router.post(IMPORT, dependencies=[Depends(import_slot, scope="function")])
async def import_books(
    request: Request, posted: PostedForm, database: DatabaseDep, settings: SettingsDep
) -> Response:
    """Import the file's books (editors): each line's result. The import's turn is taken
    before its body is read, as the API's is."""
    editor = posted.viewer.require(Role.EDITOR, writes=True, next_path=IMPORT)
    all_or_nothing = posted.text("mode") == "all-or-nothing"
    parsed = await _read_lines(posted, settings.import_max_lines)
    if parsed is None:
        refused: dict[str, Any] = {"errors": {"file": "Choose a file to import."}}
    else:
        try:
            async with unit_of_work(database, write=True) as connection:
                outcomes = await bulk.import_parsed(
                    connection, parsed, actor=editor.id, all_or_nothing=all_or_nothing
                )
        except ImportRejected as rejected:
            refused = {"errors": {FORM_WIDE: rejected.detail}, "rejected": rejected.errors}
        else:
            return page(request, posted.viewer, "import.html", report=_report(outcomes), errors={})
    return page(request, posted.viewer, "import.html", status=422, report=None, **refused)
