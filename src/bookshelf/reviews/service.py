"""Reviews and the book rating totals they drive.

Every review write changes the book's rating totals in the same transaction, through
``books.service.change_rating_totals`` (the books feature owns the ``books`` table). Every review
write locks the book's row before the review's: an update or delete starts with
``books.service.lock_book_for_review``, a new review with the totals' UPDATE. One lock order
means no deadlocks, and concurrent reviews of one book serialise, so the totals always equal
the reviews.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, bindparam, delete, insert, select, update

from bookshelf.auth.sessions import Principal
from bookshelf.books import service as books
from bookshelf.books.exceptions import BookNotFound
from bookshelf.db.database import Connection
from bookshelf.db.exceptions import IntegrityViolation
from bookshelf.db.types import utc_now
from bookshelf.pagination import CursorId, CursorSchema, CursorTimestamp
from bookshelf.reviews.exceptions import ReviewAlreadyExists, ReviewNotFound
from bookshelf.reviews.models import reviews
from bookshelf.reviews.schemas import Review, ReviewCreate, ReviewUpdate
from bookshelf.users.models import users
from bookshelf.users.schemas import Role

# Newest first: (created_at, id) descending.
_CURSOR: CursorSchema[tuple[datetime, uuid.UUID]] = CursorSchema(
    "-created_at", CursorTimestamp, CursorId
)


def _select_reviews() -> Select[Any]:
    return select(
        reviews.c.id,
        reviews.c.book_id,
        reviews.c.user_id,
        users.c.display_name.label("author_name"),
        reviews.c.rating,
        reviews.c.body,
        reviews.c.created_at,
        reviews.c.updated_at,
    ).join(users, users.c.id == reviews.c.user_id)


async def create_review(
    connection: Connection, book_id: uuid.UUID, author: Principal, data: ReviewCreate
) -> Review:
    """Add the signed-in user's review of a book; a second one is ``ReviewAlreadyExists``."""
    # The totals' UPDATE locks the book's row before the review is inserted (book, then review).
    await books.change_rating_totals(connection, book_id, count=1, rating=data.rating)
    now = utc_now()
    review_id = uuid.uuid4()
    try:
        await connection.execute(
            insert(reviews).values(
                id=review_id,
                book_id=book_id,
                user_id=author.id,
                rating=data.rating,
                body=data.body,
                created_at=now,
                updated_at=now,
            )
        )
    except IntegrityViolation:
        raise ReviewAlreadyExists() from None
    return Review(
        id=review_id,
        book_id=book_id,
        user_id=author.id,
        author_name=author.user.display_name,
        rating=data.rating,
        body=data.body,
        created_at=now,
        updated_at=now,
    )


async def get_review(connection: Connection, book_id: uuid.UUID, review_id: uuid.UUID) -> Review:
    row = (
        await connection.execute(
            _select_reviews().where(reviews.c.id == review_id, reviews.c.book_id == book_id)
        )
    ).first()
    if row is None:
        raise ReviewNotFound(review_id)
    return Review.model_validate(row, from_attributes=True)


async def find_review_by(
    connection: Connection, book_id: uuid.UUID, user_id: uuid.UUID
) -> Review | None:
    """The review ``user_id`` wrote of a book, if any (one per user and book: a unique index
    serves it)."""
    row = (
        await connection.execute(
            _select_reviews().where(reviews.c.book_id == book_id, reviews.c.user_id == user_id)
        )
    ).first()
    return None if row is None else Review.model_validate(row, from_attributes=True)


async def update_review(
    connection: Connection,
    book_id: uuid.UUID,
    review_id: uuid.UUID,
    author: Principal,
    changes: ReviewUpdate,
) -> Review:
    """Change one's own review; anyone else's is ``ReviewNotFound``."""
    mine = (reviews.c.id == review_id, reviews.c.book_id == book_id, reviews.c.user_id == author.id)
    await books.lock_book_for_review(connection, book_id)
    old_rating = await connection.scalar(select(reviews.c.rating).where(*mine).with_for_update())
    if old_rating is None:
        raise ReviewNotFound(review_id)
    values = changes.model_dump(exclude_unset=True)
    if values:
        await connection.execute(
            update(reviews).where(*mine).values(**values, updated_at=utc_now())
        )
    new_rating = values.get("rating", old_rating)
    if new_rating != old_rating:
        await books.change_rating_totals(
            connection, book_id, count=0, rating=new_rating - old_rating
        )
    return await get_review(connection, book_id, review_id)


async def delete_review(
    connection: Connection, book_id: uuid.UUID, review_id: uuid.UUID, actor: Principal
) -> None:
    """Delete a review: its author may, and so may admins (moderation)."""
    await books.lock_book_for_review(connection, book_id)
    statement = delete(reviews).where(reviews.c.id == review_id, reviews.c.book_id == book_id)
    if actor.role is not Role.ADMIN:
        statement = statement.where(reviews.c.user_id == actor.id)
    rating = await connection.scalar(statement.returning(reviews.c.rating))
    if rating is None:
        raise ReviewNotFound(review_id)
    await books.change_rating_totals(connection, book_id, count=-1, rating=-rating)


# A book's page of reviews, built once for each of its two shapes (first page, or resumed after
# a cursor) and run with each request's values: building it, and its cache key, per request
# was most of the list's CPU (bench/RESULTS.md, the book's page).
_PAGE_OF_REVIEWS = {
    resumed: _CURSOR.page_template(
        _select_reviews().where(reviews.c.book_id == bindparam("book_id")),
        (reviews.c.created_at, reviews.c.id),
        descending=True,
        resumed=resumed,
    )
    for resumed in (False, True)
}


async def list_reviews(
    connection: Connection,
    book_id: uuid.UUID,
    *,
    limit: int,
    cursor: str | None,
    book_known: bool = False,
) -> tuple[Sequence[Review], str | None]:
    """A book's reviews, newest first, keyset-paginated on (created_at, id). An empty first
    page is checked against the book's existence (``BookNotFound``), unless the caller has
    just read the book (``book_known``): a round trip saved."""
    values = {"book_id": book_id, **_CURSOR.page_values(cursor, limit)}
    rows = (await connection.execute(_PAGE_OF_REVIEWS[cursor is not None], values)).all()
    # An empty first page: tell "no reviews yet" from "no such book".
    if (
        not rows
        and cursor is None
        and not book_known
        and not await books.book_exists(connection, book_id)
    ):
        raise BookNotFound(book_id)
    items = [Review.model_validate(row, from_attributes=True) for row in rows[:limit]]
    return items, _CURSOR.next_cursor(rows, limit, lambda row: (row.created_at, row.id))
