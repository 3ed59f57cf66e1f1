from http import HTTPStatus
from typing import Any
from urllib.parse import quote

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.problem import Problem
from ...models.review import Review
from ...models.review_create import ReviewCreate
from ...types import UNSET, Response, Unset


def _get_kwargs(
    book_id: str,
    *,
    body: ReviewCreate,
    idempotency_key: None | str | Unset = UNSET,
) -> dict[str, Any]:
    headers: dict[str, Any] = {}
    if not isinstance(idempotency_key, Unset):
        headers["Idempotency-Key"] = idempotency_key

    _kwargs: dict[str, Any] = {
        "method": "post",
        "url": "/api/v1/books/{book_id}/reviews".format(
            book_id=quote(str(book_id), safe=""),
        ),
    }

    _kwargs["json"] = body.to_dict()

    headers["Content-Type"] = "application/json"

    _kwargs["headers"] = headers
    return _kwargs


def _parse_response(*, client: AuthenticatedClient | Client, response: httpx.Response) -> Problem | Review | None:
    if response.status_code == 201:
        response_201 = Review.from_dict(response.json())

        return response_201

    if response.status_code == 400:
        response_400 = Problem.from_dict(response.json())

        return response_400

    if response.status_code == 401:
        response_401 = Problem.from_dict(response.json())

        return response_401

    if response.status_code == 404:
        response_404 = Problem.from_dict(response.json())

        return response_404

    if response.status_code == 409:
        response_409 = Problem.from_dict(response.json())

        return response_409

    if response.status_code == 413:
        response_413 = Problem.from_dict(response.json())

        return response_413

    if response.status_code == 415:
        response_415 = Problem.from_dict(response.json())

        return response_415

    if response.status_code == 422:
        response_422 = Problem.from_dict(response.json())

        return response_422

    if response.status_code == 429:
        response_429 = Problem.from_dict(response.json())

        return response_429

    if response.status_code == 500:
        response_500 = Problem.from_dict(response.json())

        return response_500

    if response.status_code == 503:
        response_503 = Problem.from_dict(response.json())

        return response_503

    if client.raise_on_unexpected_status:
        raise errors.UnexpectedStatus(response.status_code, response.content)
    else:
        return None


def _build_response(*, client: AuthenticatedClient | Client, response: httpx.Response) -> Response[Problem | Review]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    book_id: str,
    *,
    client: AuthenticatedClient,
    body: ReviewCreate,
    idempotency_key: None | str | Unset = UNSET,
) -> Response[Problem | Review]:
    """Create Review

     Review a book (one per user and book). Send an `Idempotency-Key` to make retries safe.

    Args:
        book_id (str):
        idempotency_key (None | str | Unset): Makes a retry safe: the same key and body replay the
            first response.
        body (ReviewCreate):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Problem | Review]
    """

    kwargs = _get_kwargs(
        book_id=book_id,
        body=body,
        idempotency_key=idempotency_key,
    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    book_id: str,
    *,
    client: AuthenticatedClient,
    body: ReviewCreate,
    idempotency_key: None | str | Unset = UNSET,
) -> Problem | Review | None:
    """Create Review

     Review a book (one per user and book). Send an `Idempotency-Key` to make retries safe.

    Args:
        book_id (str):
        idempotency_key (None | str | Unset): Makes a retry safe: the same key and body replay the
            first response.
        body (ReviewCreate):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Problem | Review
    """

    return sync_detailed(
        book_id=book_id,
        client=client,
        body=body,
        idempotency_key=idempotency_key,
    ).parsed


async def asyncio_detailed(
    book_id: str,
    *,
    client: AuthenticatedClient,
    body: ReviewCreate,
    idempotency_key: None | str | Unset = UNSET,
) -> Response[Problem | Review]:
    """Create Review

     Review a book (one per user and book). Send an `Idempotency-Key` to make retries safe.

    Args:
        book_id (str):
        idempotency_key (None | str | Unset): Makes a retry safe: the same key and body replay the
            first response.
        body (ReviewCreate):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Problem | Review]
    """

    kwargs = _get_kwargs(
        book_id=book_id,
        body=body,
        idempotency_key=idempotency_key,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    book_id: str,
    *,
    client: AuthenticatedClient,
    body: ReviewCreate,
    idempotency_key: None | str | Unset = UNSET,
) -> Problem | Review | None:
    """Create Review

     Review a book (one per user and book). Send an `Idempotency-Key` to make retries safe.

    Args:
        book_id (str):
        idempotency_key (None | str | Unset): Makes a retry safe: the same key and body replay the
            first response.
        body (ReviewCreate):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Problem | Review
    """

    return (
        await asyncio_detailed(
            book_id=book_id,
            client=client,
            body=body,
            idempotency_key=idempotency_key,
        )
    ).parsed
