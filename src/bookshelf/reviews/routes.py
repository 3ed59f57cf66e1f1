"""``/books/{book_id}/reviews``: public to read; written by signed-in users, each their own."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query, Request, Response, status

from bookshelf.api import (
    feature_router,
    json_response,
    next_page_headers,
    require_json_body,
)
from bookshelf.auth.dependencies import CurrentUser
from bookshelf.books.dependencies import BookId
from bookshelf.db.connections import ConnectionDep
from bookshelf.idempotency.dependencies import Idempotent
from bookshelf.problems import problem_responses
from bookshelf.reviews import service
from bookshelf.reviews.dependencies import ReviewId
from bookshelf.reviews.schemas import Review, ReviewCreate, ReviewPage, ReviewUpdate

router = feature_router("/books/{book_id}/reviews", tags=["reviews"])


@router.get("", response_model=ReviewPage, responses=problem_responses(404))
async def list_reviews(
    request: Request,
    book_id: BookId,
    connection: ConnectionDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=1000)] = None,
) -> Response:
    """A book's reviews, newest first (keyset pagination)."""
    items, next_cursor = await service.list_reviews(connection, book_id, limit=limit, cursor=cursor)
    page = ReviewPage(items=list(items), next_cursor=next_cursor)
    return json_response(page, headers=next_page_headers(request, next_cursor))


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=Review,
    responses=problem_responses(400, 401, 404, 409, 413, 415),
    dependencies=[Depends(require_json_body)],
)
async def create_review(
    request: Request,
    book_id: BookId,
    payload: ReviewCreate,
    author: CurrentUser,
    connection: ConnectionDep,
    idempotency: Idempotent,
) -> Response:
    """Review a book (one per user and book). Send an `Idempotency-Key` to make retries safe."""
    if (replay := await idempotency.claim(payload)) is not None:
        return replay
    review = await service.create_review(connection, book_id, author, payload)
    location = request.url_for("get_review", book_id=str(book_id), review_id=str(review.id))
    return await idempotency.record(
        json_response(review, status_code=201, headers={"Location": str(location.path)})
    )


@router.get("/{review_id}", response_model=Review, responses=problem_responses(404))
async def get_review(book_id: BookId, review_id: ReviewId, connection: ConnectionDep) -> Response:
    """One review."""
    return json_response(await service.get_review(connection, book_id, review_id))


@router.patch(
    "/{review_id}",
    response_model=Review,
    responses=problem_responses(400, 401, 404, 413, 415),
    dependencies=[Depends(require_json_body)],
)
async def update_review(
    book_id: BookId,
    review_id: ReviewId,
    changes: ReviewUpdate,
    author: CurrentUser,
    connection: ConnectionDep,
) -> Response:
    """Change your review (anyone else's is 404)."""
    review = await service.update_review(connection, book_id, review_id, author, changes)
    return json_response(review)


@router.delete(
    "/{review_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=problem_responses(401, 404),
)
async def delete_review(
    book_id: BookId, review_id: ReviewId, actor: CurrentUser, connection: ConnectionDep
) -> Response:
    """Delete your review; admins may delete any review."""
    await service.delete_review(connection, book_id, review_id, actor)
    return Response(status_code=204)
