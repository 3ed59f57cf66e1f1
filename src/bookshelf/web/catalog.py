"""The catalog for everyone: the home page (search, filters, sort, keyset pages), a book's
page with its reviews, and the signed-in reader's own review of it."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Header, Request, Response
from pydantic import ValidationError

from bookshelf.api import uuid_or_not_found
from bookshelf.books import listing
from bookshelf.books import service as books
from bookshelf.books.dependencies import book_id_from_path, search_slot
from bookshelf.books.schemas import BookListQuery, BookSort
from bookshelf.db.connections import ConnectionDep, DatabaseDep
from bookshelf.db.database import Connection, Database, unit_of_work
from bookshelf.reviews import service as reviews
from bookshelf.reviews.exceptions import ReviewAlreadyExists, ReviewNotFound
from bookshelf.reviews.schemas import ReviewCreate, ReviewUpdate
from bookshelf.users.schemas import Role
from bookshelf.web.dependencies import PageViewer, Posted, PostedForm, SiteDep
from bookshelf.web.forms import FORM_WIDE, field_errors
from bookshelf.web.pages import redirect
from bookshelf.web.paging import pager, read_trail
from bookshelf.web.viewer import Viewer, page

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 20
REVIEWS_PER_PAGE = 10
_FILTERS = ("q", "author", "subject", "language", "sort")
_REVIEW_FIELDS = ("rating", "body")
SORTS = [
    (BookSort.CREATED_AT_DESC.value, "Newest first"),
    (BookSort.CREATED_AT.value, "Oldest first"),
    (BookSort.TITLE.value, "Title, A to Z"),
    (BookSort.TITLE_DESC.value, "Title, Z to A"),
    (BookSort.PUBLISHED_DATE_DESC.value, "Published, latest first"),
    (BookSort.PUBLISHED_DATE.value, "Published, earliest first"),
    (BookSort.RELEVANCE.value, "Best match (with a search)"),
]


@router.get("/static/{name}")
async def asset(
    name: str, site: SiteDep, if_none_match: Annotated[str | None, Header()] = None
) -> Response:
    """A static file under its hashed name (``web.assets``)."""
    return site.assets.response(name, if_none_match)


@router.get("/", dependencies=[Depends(search_slot, scope="function")])
async def home(request: Request, viewer: PageViewer, connection: ConnectionDep) -> Response:
    """The catalog: a search box, filters and sort, one page of books at a time."""
    params = request.query_params
    filters = {name: params.get(name, "").strip() for name in _FILTERS}
    chosen = {name: value for name, value in filters.items() if value}
    cursor = params.get("cursor") or None
    try:
        query = BookListQuery.model_validate({**chosen, "cursor": cursor, "limit": PAGE_SIZE})
    except ValidationError as error:
        return page(
            request,
            viewer,
            "home.html",
            status=422,
            books=[],
            filters=filters,
            errors=field_errors(error),
            sorts=SORTS,
            pages=None,
        )
    settings = viewer.site.settings
    bounds = listing.SearchBounds(
        rank_candidates=settings.search_rank_candidates,
        statement_timeout_ms=settings.search_statement_timeout_ms,
    )
    items, next_cursor = await listing.list_books(connection, query, search_bounds=bounds)
    pages = pager(
        "/",
        list(chosen.items()),
        cursor=cursor,
        trail=read_trail(params.get("trail")),
        next_cursor=next_cursor,
    )
    return page(
        request,
        viewer,
        "home.html",
        books=items,
        filters=filters,
        errors={},
        sorts=SORTS,
        pages=pages,
    )


async def book_page(
    request: Request,
    viewer: Viewer,
    connection: Connection,
    book_id: UUID,
    *,
    status: int = 200,
    review_form: dict[str, str] | None = None,
    review_errors: dict[str, str] | None = None,
) -> Response:
    """A book's page: every field, its rating, a page of reviews, and the viewer's own review
    (a form to write it, or to change it)."""
    book = await books.get_book(connection, book_id)
    params = request.query_params
    cursor = params.get("reviews") or None
    # The book's row counts its reviews (in the same transactions as they are written): a
    # book nobody reviewed needs no query for them.
    reviewed = book.rating_count > 0 or cursor is not None
    items, next_cursor = (
        await reviews.list_reviews(
            connection, book_id, limit=REVIEWS_PER_PAGE, cursor=cursor, book_known=True
        )
        if reviewed
        else ([], None)
    )
    own = (
        await reviews.find_review_by(connection, book_id, viewer.principal.id)
        if viewer.principal is not None and reviewed
        else None
    )
    if review_form is None:
        review_form = (
            {"rating": str(own.rating), "body": own.body or ""}
            if own is not None
            else {"rating": "", "body": ""}
        )
    pages = pager(
        f"/books/{book_id}",
        [],
        cursor=cursor,
        trail=read_trail(params.get("reviews_trail")),
        next_cursor=next_cursor,
        cursor_key="reviews",
        trail_key="reviews_trail",
    )
    return page(
        request,
        viewer,
        "book.html",
        status=status,
        book=book,
        reviews=items,
        pages=pages,
        own=own,
        review_form=review_form,
        review_errors=review_errors or {},
        may_edit=viewer.is_at_least(Role.EDITOR),
        may_delete=viewer.is_at_least(Role.ADMIN),
    )


def parse_book_id(raw: str) -> UUID:
    return book_id_from_path(raw)


@router.get("/books/{book_id}")
async def show_book(
    book_id: str, request: Request, viewer: PageViewer, connection: ConnectionDep
) -> Response:
    """A book, with its reviews."""
    return await book_page(request, viewer, connection, parse_book_id(book_id))


def _review_values(form: dict[str, str]) -> dict[str, Any]:
    rating = form["rating"].strip()
    return {
        "rating": int(rating) if rating.isdigit() else (rating or None),
        "body": form["body"].strip() or None,
    }


async def _book_page_again(
    request: Request, posted: Posted, database: Database, book_id: UUID, **context: Any
) -> Response:
    """The book's page once more, after a review form that could not be taken."""
    async with unit_of_work(database, write=False) as connection:
        return await book_page(request, posted.viewer, connection, book_id, **context)


async def _invalid_review(
    request: Request,
    posted: Posted,
    database: Database,
    book_id: UUID,
    form: dict[str, str],
    error: ValidationError,
) -> Response:
    return await _book_page_again(
        request,
        posted,
        database,
        book_id,
        status=422,
        review_form=form,
        review_errors=field_errors(error),
    )


@router.post("/books/{book_id}/reviews")
async def write_review(
    book_id: str, request: Request, posted: PostedForm, database: DatabaseDep
) -> Response:
    """Write one's review of a book (one per reader and book)."""
    target = parse_book_id(book_id)
    author = posted.viewer.require(writes=True, next_path=f"/books/{target}")
    form = posted.texts(_REVIEW_FIELDS)
    try:
        review = ReviewCreate.model_validate(_review_values(form))
        async with unit_of_work(database, write=True) as connection:
            await reviews.create_review(connection, target, author, review)
    except ValidationError as error:
        return await _invalid_review(request, posted, database, target, form, error)
    except ReviewAlreadyExists as error:
        return await _book_page_again(
            request, posted, database, target, status=409, review_errors={FORM_WIDE: error.detail}
        )
    return posted.viewer.finish(redirect(f"/books/{target}#your-review"))


@router.post("/books/{book_id}/reviews/{review_id}")
async def change_review(
    book_id: str, review_id: str, request: Request, posted: PostedForm, database: DatabaseDep
) -> Response:
    """Change one's own review (anyone else's is not found)."""
    target = parse_book_id(book_id)
    author = posted.viewer.require(writes=True, next_path=f"/books/{target}")
    form = posted.texts(_REVIEW_FIELDS)
    try:
        changes = ReviewUpdate.model_validate(_review_values(form))
    except ValidationError as error:
        return await _invalid_review(request, posted, database, target, form, error)
    async with unit_of_work(database, write=True) as connection:
        await reviews.update_review(
            connection, target, uuid_or_not_found(review_id, ReviewNotFound), author, changes
        )
    return posted.viewer.finish(redirect(f"/books/{target}#your-review"))


@router.post("/books/{book_id}/reviews/{review_id}/delete")
async def delete_review(
    book_id: str, review_id: str, posted: PostedForm, database: DatabaseDep
) -> Response:
    """Delete one's own review; admins may delete any (moderation)."""
    target = parse_book_id(book_id)
    actor = posted.viewer.require(writes=True, next_path=f"/books/{target}")
    async with unit_of_work(database, write=True) as connection:
        await reviews.delete_review(
            connection, target, uuid_or_not_found(review_id, ReviewNotFound), actor
        )
    return posted.viewer.finish(redirect(f"/books/{target}#reviews"))
